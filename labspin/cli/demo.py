"""`labspin demo`: the study's benchmark end to end on the simulated bench."""
from __future__ import annotations

import click


@click.command("demo")
@click.option("-o", "--output", "out_dir", default="labspin-demo", show_default=True, metavar="DIR",
              help="folder for run files, level tables and the report")
@click.option("--quick", is_flag=True, help="fewer cycles and a test subset: under 3 minutes on 2 cores")
@click.option("--checkpoint", envvar="LABSPIN_CHECKPOINT", metavar="CKPT",
              help="ResNet-18 CIFAR-10 state_dict [env LABSPIN_CHECKPOINT]")
@click.option("--data", envvar="LABSPIN_DATA", metavar="PATH",
              help="CIFAR-10 .npz or torchvision root [env LABSPIN_DATA]")
@click.option("--seed", type=int, default=1, show_default=True, help="seed of the simulated devices and trials")
@click.option("--cycles", type=int, default=200, show_default=True, help="staircase cycles per device")
@click.option("--subset", type=int, help="test images (default 300 quick, all 10,000 full)")
@click.option("--trials", type=int, help="CTC-noise trials (default 2 quick, 5 full)")
@click.option("--device", default="cpu", show_default=True, help="torch device: cpu | cuda")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="forward passes: auto = bf16 autocast where the hardware does it natively, else fp32")
@click.option("--overwrite", is_flag=True, help="write into a non-empty output folder")
@click.option("--resume", is_flag=True,
              help="continue a partial output folder (same options): finished runs and evaluations are "
                   "kept, interrupted runs continue")
def demo(out_dir: str, quick: bool, checkpoint: str | None, data: str | None, seed: int,
         cycles: int, subset: int | None, trials: int | None, device: str, precision: str, overwrite: bool,
         resume: bool) -> int:
    """Measure orange_peel, idmi and tilted on the simulator, analyse CTC and states, export level
    tables, evaluate them as ResNet-18 weights on CIFAR-10, and write one side-by-side report."""
    from labspin.demo import DemoConfig, run_demo

    cfg = DemoConfig(out_dir, quick=quick, checkpoint=checkpoint, data=data, seed=seed, cycles=cycles,
                     subset=subset, trials=trials, overwrite=overwrite, device=device, precision=precision,
                     resume=resume)
    try:
        run_demo(cfg, say=lambda m: click.echo(m, err=False))
    except KeyboardInterrupt:
        click.echo(f"labspin demo: stopped; finished runs and evaluations in {out_dir} are kept: "
                   "continue with labspin demo --resume (same options)", err=True)
        raise
    if not cfg.evaluates:
        click.echo("note: give --checkpoint CKPT --data CIFAR (or set LABSPIN_CHECKPOINT and "
                   "LABSPIN_DATA) to evaluate; `labspin train --data CIFAR -o CKPT` trains a checkpoint")
    return 0
