"""`labspin finetune`: hardware-aware fine-tuning of the ResNet-18 on a device's levels."""
from __future__ import annotations

import click

from labspin.errors import UserError


@click.command()
@click.option("--levels", "levels_path", required=True, type=click.Path(dir_okay=False),
              help="Level table (levels.json or states,mean,std CSV).")
@click.option("--checkpoint", envvar="LABSPIN_CHECKPOINT", type=click.Path(), default=None,
              help="ResNet-18 CIFAR-10 state_dict to start from [env LABSPIN_CHECKPOINT].")
@click.option("--data", envvar="LABSPIN_DATA", type=click.Path(), default=None,
              help="CIFAR-10 train .npz, a folder with cifar10_train.npz, or a torchvision root [env LABSPIN_DATA].")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Fine-tuned checkpoint (evaluate it with labspin evaluate --checkpoint).")
@click.option("--epochs", default=2, show_default=True, type=int)
@click.option("--batch-size", default=128, show_default=True, type=int)
@click.option("--lr", default=0.002, show_default=True, type=float, help="Initial learning rate (cosine decay).")
@click.option("--subset", default=None, type=int, help="Train on the first K training images only.")
@click.option("--observer", default="minmax", show_default=True,
              help="minmax, mse, percentile, or an observer registered by a plugin (labspin.observers).")
@click.option("--granularity", type=click.Choice(["tensor", "channel"]), default="channel", show_default=True)
@click.option("--ladder", type=click.Choice(["full", "distinguishable", "fit"]), default="full", show_default=True)
@click.option("--mapping", type=click.Choice(["direct", "differential"]), default="direct", show_default=True)
@click.option("--noise/--no-noise", default=True, show_default=True,
              help="Draw the levels' CTC noise in every forward pass.")
@click.option("--resume", is_flag=True, help="Continue the fine-tuning whose state is OUTPUT.state.")
@click.option("--stop-after", default=None, type=int, help="End this call after N epochs (continue with --resume).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when present.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--overwrite", is_flag=True, help="Replace an existing output checkpoint.")
def finetune(levels_path, checkpoint, data, output, epochs, batch_size, lr, subset, observer, granularity,
             ladder, mapping, noise, resume, stop_after, device, seed, overwrite) -> None:
    """Fine-tune with weights fake-quantized onto the device levels and CTC noise in every pass."""
    if checkpoint is None:
        raise UserError("--checkpoint: no checkpoint given (option or env LABSPIN_CHECKPOINT)")
    if data is None:
        raise UserError("--data: no data given (option or env LABSPIN_DATA)")
    from labspin.cli.evaluate import _threads
    from labspin.quant.evaluate import as_levels, resolve_device
    from labspin.quant.finetune import finetune as run

    if device is not None:
        resolve_device(device)
    levels = as_levels(levels_path, mapping)
    _threads()
    from labspin.cli.bars import StepBars
    with StepBars() as bars:
        result = run(checkpoint, levels, data, output, epochs=epochs, batch_size=batch_size, lr=lr,
                     subset=subset, observer=observer, granularity=granularity, ladder=ladder, noise=noise,
                     resume=resume, device=device, seed=seed, overwrite=overwrite, stop_after=stop_after,
                     progress=bars)
    for h in result["history"]:
        click.echo(f"epoch {h['epoch']}: loss {h['loss']:.4f}, train {h['train_accuracy']:.2f} % "
                   f"(quantized, noisy), {h['seconds']:.0f} s")
    click.echo(f"wrote {result['checkpoint']} (+ {result['state']}); evaluate it with "
               f"labspin evaluate --checkpoint {result['checkpoint']}")
