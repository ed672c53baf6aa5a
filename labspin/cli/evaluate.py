"""`labspin evaluate` (PTQ of the CIFAR-10 ResNet-18 onto device levels) and `labspin train`."""
from __future__ import annotations

import click

from labspin.errors import UserError
from labspin.outputs import check_output_dir

_DEVICE = click.Choice(["cpu", "cuda"])


def _threads() -> None:
    import os

    import torch
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))


@click.command()
@click.option("--levels", "levels_path", type=click.Path(dir_okay=False), default=None,
              help="Level table (levels.json or states,mean,std CSV).")
@click.option("--uniform", type=int, default=None, help="Ideal uniform grid of K levels instead of a table.")
@click.option("--checkpoint", envvar="LABSPIN_CHECKPOINT", type=click.Path(), default=None,
              help="ResNet-18 CIFAR-10 state_dict [env LABSPIN_CHECKPOINT].")
@click.option("--data", envvar="LABSPIN_DATA", type=click.Path(), default=None,
              help="CIFAR-10 test .npz, a folder with cifar10_test.npz, or a torchvision root [env LABSPIN_DATA].")
@click.option("--observer", default="minmax,mse", show_default=True,
              help="Comma list: minmax, mse, percentile, auto (per layer, the candidate with the lowest "
                   "output error on calibration images), or an observer registered by a plugin "
                   "(entry-point group labspin.observers).")
@click.option("--granularity", default="tensor,channel", show_default=True, help="Comma list: tensor, channel.")
@click.option("--noise/--no-noise", default=True, show_default=True,
              help="Also run with CTC programming noise (Monte Carlo over --trials).")
@click.option("--trials", default=5, show_default=True, type=int, help="Monte-Carlo trials per noisy configuration.")
@click.option("--subset", default=None, type=int, help="Evaluate on the first K test images only.")
@click.option("--batch-size", default=500, show_default=True, type=int)
@click.option("--layers", default=None, help="Comma list of layer names/globs to quantize (default: every conv and linear).")
@click.option("--act-bits", default=None, type=int, help="Fake-quantize layer inputs to this many bits (e.g. 8).")
@click.option("--bias-correction", is_flag=True,
              help="Correct layer biases for the mean shift of the quantization error (calibrated "
                   "on the first 256 evaluation images).")
@click.option("--mapping", type=click.Choice(["direct", "differential"]), default="direct", show_default=True,
              help="direct: one device per weight; differential: a device pair per weight (G+ - G-), "
                   "2K-1 signed levels.")
@click.option("--ladder", type=click.Choice(["full", "distinguishable", "fit"]), default="full", show_default=True,
              help="Part of the level ladder the observers use: all levels; the k·σ-separated subset; or "
                   "fit: per row the best contiguous run / distinguishable subset, either sign of scale.")
@click.option("--rounding", type=click.Choice(["nearest", "learned"]), default="nearest", show_default=True,
              help="learned: AdaRound-style rounding fitted to each layer's FP32 output on calibration images.")
@click.option("--rounding-noise", is_flag=True, help="Learned rounding sees a CTC-noise draw in every step.")
@click.option("--calib-data", type=click.Path(), default=None,
              help="Calibration images (default: the training split beside --data).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="Forward passes in FP32 or under bfloat16 autocast.")
@click.option("--compile", "compile_", is_flag=True,
              help="Forward passes through torch.compile (~1.25x on CPU once compiled; falls back to eager).")
@click.option("--device", type=_DEVICE, default="cpu", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int, help="Root seed of the noise trials.")
@click.option("--paper-table", is_flag=True,
              help="Run the study's grid (per-tensor/per-channel x min-max/MSE, with and without noise).")
@click.option("-o", "--output", "outdir", default="evaluate_results", show_default=True,
              type=click.Path(file_okay=False), help="Folder for results.csv/.md, accuracy.png, config.json.")
@click.option("--overwrite", is_flag=True, help="Replace existing results in the output folder.")
def evaluate(levels_path, uniform, checkpoint, data, observer, granularity, noise, trials, subset,
             batch_size, layers, act_bits, bias_correction, mapping, ladder, rounding, rounding_noise,
             calib_data, precision, compile_, device, seed, paper_table, outdir, overwrite) -> None:
    """Accuracy of the ResNet-18 with weights programmed onto device levels, vs FP32."""
    if (levels_path is None) == (uniform is None):
        raise UserError("--levels / --uniform: give exactly one of them")
    if checkpoint is None:
        raise UserError("--checkpoint: no checkpoint given (option or env LABSPIN_CHECKPOINT)")
    if data is None:
        raise UserError("--data: no data given (option or env LABSPIN_DATA)")
    if subset is not None and subset < 1:
        raise UserError(f"--subset: must be >= 1, got {subset}")
    from labspin.quant import evaluate as ev
    from labspin.quant.levels_map import uniform_levels

    ev.resolve_device(device)
    check_output_dir(outdir, overwrite=overwrite)      # refuse before spending minutes
    levels = uniform_levels(uniform) if uniform is not None else levels_path
    _threads()
    kw = dict(trials=trials, subset=subset, batch_size=batch_size, device=device, seed=seed,
              layers=[s for s in layers.split(",") if s.strip()] if layers else None,
              act_bits=act_bits, bias_correction=bias_correction, mapping=mapping, ladder=ladder,
              rounding=rounding, rounding_noise=rounding_noise, calibration=calib_data,
              bf16=(precision == "bf16"), compile=compile_, progress=lambda m: click.echo(m, err=True),
              on_row=lambda df: _partial(ev, df, outdir))
    if paper_table:
        df = ev.paper_table(checkpoint, levels, data, **kw)
    else:
        df = ev.evaluate_levels(checkpoint, levels, data, observers=observer, granularities=granularity,
                                noise=(False, True) if noise else (False,), **kw)
    paths = ev.write_report(df, outdir, overwrite=True)     # checked above; replaces the partial csv
    click.echo(ev.markdown(df))
    for n in df.attrs.get("notes", []):
        click.echo(f"note: {n}")
    click.echo(f"wrote {', '.join(str(p) for p in paths.values())}")


def _partial(ev, df, outdir) -> None:
    """results.csv after each configuration: a Ctrl-C keeps the configurations already finished."""
    from pathlib import Path
    Path(outdir).mkdir(parents=True, exist_ok=True)
    ev.write_csv(df, Path(outdir) / "results.csv")


@click.command()
@click.option("--data", envvar="LABSPIN_DATA", type=click.Path(), default=None,
              help="CIFAR-10 train .npz, a folder with cifar10_train.npz, or a torchvision root [env LABSPIN_DATA].")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint to write (state_dict, fp16 floats, like the shared baseline).")
@click.option("--epochs", default=12, show_default=True, type=int)
@click.option("--batch-size", default=256, show_default=True, type=int)
@click.option("--lr", default=0.2, show_default=True, type=float, help="Peak one-cycle learning rate.")
@click.option("--subset", default=None, type=int, help="Train on the first K images only.")
@click.option("--test-data", default=None, type=click.Path(),
              help="Report test accuracy after each epoch on this set (npz/folder).")
@click.option("--resume", default=None, type=click.Path(dir_okay=False),
              help="Continue from a checkpoint written by labspin train (its .state file).")
@click.option("--stop-after", default=None, type=int,
              help="End this call after N epochs (continue later with --resume).")
@click.option("--device", type=_DEVICE, default=None, help="Default: cuda when present, else cpu.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--overwrite", is_flag=True, help="Replace an existing output checkpoint.")
def train(data, output, epochs, batch_size, lr, subset, test_data, resume, stop_after, device, seed,
          overwrite) -> None:
    """Train the CIFAR-10 ResNet-18 (SGD Nesterov, one-cycle, label smoothing), resumable."""
    if data is None:
        raise UserError("--data: no data given (option or env LABSPIN_DATA)")
    from labspin.quant.train import train as run_train
    _threads()
    from labspin.cli.bars import StepBars
    with StepBars() as bars:
        result = run_train(data, output, epochs=epochs, batch_size=batch_size, lr=lr, subset=subset,
                           resume=resume, device=device, seed=seed, overwrite=overwrite, test_data=test_data,
                           stop_after=stop_after, progress=bars)
    for h in result["history"]:
        acc = f", test {h['test_accuracy']:.2f} %" if h.get("test_accuracy") is not None else ""
        click.echo(f"epoch {h['epoch']}: loss {h['loss']:.4f}, train {h['train_accuracy']:.2f} %{acc}")
    click.echo(f"wrote {result['checkpoint']} (+ {result['state']})")
