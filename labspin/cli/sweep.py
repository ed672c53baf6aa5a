"""`labspin sweep SWEEP.toml -o DIR`: a grid of simulated runs, or of evaluator configurations, on Dask distributed (labspin.sweep)."""
from __future__ import annotations

import click


@click.command("sweep")
@click.argument("sweep_file", metavar="SWEEP.toml")
@click.option("-o", "--output", required=True, metavar="DIR",
              help="folder for runs/, results/, results.csv/.parquet, report.md (a re-run resumes)")
@click.option("--workers", type=int, default=2, show_default=True,
              help="processes of the embedded LocalCluster")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="use an existing Dask scheduler (tcp://host:8786) instead")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def sweep(sweep_file: str, output: str, workers: int, scheduler: str | None, no_progress: bool) -> int:
    """Run a grid of simulated devices/seeds × recipe parameters on Dask; gather a results table.

    \b
      labspin sweep d2d.toml -o d2d/ --workers 2
      labspin sweep d2d.toml -o d2d/ --scheduler tcp://10.0.0.5:8786
    A failed task is listed with its error; the others go on. Finished tasks are skipped on a re-run.
    """
    from labspin.sweep import load_sweep, run_sweep

    sw = load_sweep(sweep_file)
    table = run_sweep(sw, output, workers=workers, scheduler=scheduler, progress=not no_progress)
    failed = int((table["status"] == "failed").sum()) if "status" in table else 0
    click.echo(f"labspin: sweep {sw.name}: {len(table) - failed} of {len(sw.tasks)} tasks done, "
               f"{failed} failed -> {output}/report.md")
    return 1 if failed else 0
