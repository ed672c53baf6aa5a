"""`labspin run`, `labspin dry-run`, `labspin info`: measure a recipe into a run file, check it, summarise it.

Exit status: 0 completed, 1 the run failed (instrument error; the file says why),
130 aborted (Ctrl-C), 2 bad input (nothing was measured, nothing on disk changed).
"""
from __future__ import annotations

import math
import sys
from typing import Any

import click

from labspin.errors import UserError
from labspin.formatting import MISSING, quantity


def _overrides(sets: tuple[str, ...]) -> dict:
    out = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _station_spec(station_file: str | None, sim: str | None, hall_mode: str | None = None):
    from labspin.measure import station_spec
    return station_spec(station_file, sim, hall_mode)


_HALL_MODE = click.option(
    "--hall-mode", type=click.Choice(["dc_delta", "pulse_delta"]), default=None,
    help="with --sim: Hall reads by 6221/2182A Delta (default) or Pulse Delta list sweeps")


def _check_bus_log(path: str | None, overwrite: bool) -> None:
    """--bus-log FILE: refused before anything is opened if it exists (without --overwrite)."""
    if path is not None:
        from labspin.outputs import check_output_file
        check_output_file(path, overwrite=overwrite, label="--bus-log")


def _report(status: str, runner: Any, path: str) -> int:
    n = runner.points_done
    if status == "completed":
        click.echo(f"labspin: run completed: {n} points -> {path}", err=True)
        return 0
    if status == "aborted":
        click.echo(f"labspin: run aborted after {n} points; {path} is marked aborted", err=True)
        return 130
    click.echo(f"labspin: run failed after {n} points: {runner.error} ({path})", err=True)
    return 1


@click.command("run")
@click.argument("recipe", required=False)
@click.option("--station", "station_file", metavar="FILE", help="station TOML file")
@click.option("--sim", metavar="DEVICE[:SEED]", help="simulated bench: orange_peel | idmi | tilted")
@click.option("-o", "--output", metavar="RUN.h5", help="run file to write")
@click.option("--overwrite", is_flag=True, help="replace an existing output file")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a recipe parameter")
@click.option("--flush-interval", type=float, default=0.5, show_default=True,
              help="seconds between flushes to disk (a hard kill loses at most this)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.option("--resume", metavar="RUN.h5",
              help="continue a run file that was interrupted (killed), aborted, or failed (once the cause is fixed)")
@_HALL_MODE
@click.option("--bus-log", metavar="FILE", help="write every VISA message to FILE (a transcript)")
def run(recipe: str | None, station_file: str | None, sim: str | None, output: str | None,
        overwrite: bool, sets: tuple[str, ...], flush_interval: float, no_progress: bool,
        resume: str | None, hall_mode: str | None, bus_log: str | None) -> int:
    """Run RECIPE (a file or a shipped name) on a station or the simulator into an HDF5 run file.

    \b
      labspin run staircase --sim tilted:1 -o run.h5 --set cycles=20
      labspin run my_recipe.toml --station bench.toml -o run.h5
      labspin run --resume run.h5     # continue a killed, aborted (Ctrl-C) or failed run
      labspin run staircase --station bench.toml -o run.h5 --bus-log run.bus

    Every instrument's pre-flight check (`labspin check`) runs before the first pulse.
    Ctrl-C aborts cleanly: outputs are ramped to zero and turned off, the file is marked aborted.
    """
    from labspin import measure
    from labspin.protocols.recipe import load_recipe
    from labspin.store import read_run

    if not (math.isfinite(flush_interval) and flush_interval > 0):
        raise UserError(f"--flush-interval: must be > 0 seconds, got {flush_interval!r}")
    _check_bus_log(bus_log, overwrite or resume is not None)
    if resume is not None:
        extra = [n for n, v in (("RECIPE", recipe), ("--station", station_file), ("--sim", sim),
                                ("-o", output), ("--set", sets), ("--overwrite", overwrite),
                                ("--hall-mode", hall_mode)) if v]
        if extra:
            raise UserError(f"--resume: {', '.join(extra)} cannot be combined with --resume "
                            f"(recipe, station and seed come from the file)")
        runner = measure.prepare_resume(resume, flush_interval=flush_interval,
                                        progress=not no_progress, bus_log=bus_log)
        rf = read_run(resume)
        was = {"running": "interrupted", "aborted": "aborted", "failed": f"failed ({rf.error})"}[rf.status]
        click.echo(f"labspin: resuming {was} run {resume} at point {runner.start_index}"
                   + (f" of {rf.total_points}" if rf.total_points else ""), err=True)
        measure.run(runner)
        return _report(runner.state, runner, resume)

    missing = [m for m, absent in (
        ("RECIPE (a recipe file or shipped name; or --resume RUN.h5)", recipe is None),
        ("--sim DEVICE[:SEED] or --station FILE (where to measure)", sim is None and station_file is None),
        ("-o/--output RUN.h5 (the run file to write)", output is None)) if absent]
    if missing:      # all that is missing in one message, not one per try
        raise UserError("missing: " + "; ".join(missing))
    overrides = _overrides(sets)
    rec = load_recipe(recipe, overrides or None)
    spec = _station_spec(station_file, sim, hall_mode)
    runner = measure.run(measure.prepare(rec, spec, output, overwrite=overwrite,
                                         flush_interval=flush_interval, progress=not no_progress,
                                         argv=sys.argv[1:], bus_log=bus_log))
    return _report(runner.state, runner, output)


@click.command("dry-run")
@click.argument("recipe")
@click.option("--station", "station_file", metavar="FILE", help="station TOML file")
@click.option("--sim", metavar="DEVICE[:SEED]", help="simulated bench")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a recipe parameter")
@_HALL_MODE
def dry_run(recipe: str, station_file: str | None, sim: str | None, sets: tuple[str, ...],
            hall_mode: str | None) -> int:
    """Check RECIPE against a station's limits and print what it would do; touches no instrument."""
    from labspin.dryrun import dry_run as summarize, format_summary
    from labspin.protocols.recipe import load_recipe
    from labspin.runner import check_limits

    rec = load_recipe(recipe, _overrides(sets) or None)
    spec = _station_spec(station_file, sim, hall_mode)
    click.echo(format_summary(summarize(rec, spec)))
    check_limits(rec, spec, spec.limits)    # UserError -> one line, exit 2
    return 0


_fmt = quantity     # full precision: the values one compares between runs


def _wall_seconds(start: str | None, end: str | None) -> float | None:
    from datetime import datetime
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def _scan(path: str) -> dict:
    """Cycles, last time and the signal's range of a run file, streamed in blocks (bounded memory
    for any run length): {"cycles", "t_last", "lo", "hi"}."""
    import numpy as np

    from labspin.store import iter_data

    cycles, last, seen, t_last, lo, hi = 0, None, None, None, np.inf, -np.inf
    for block in iter_data(path, ("cycle", "time", "hall_resistance")):
        if not len(block):
            continue
        c = block["cycle"].to_numpy()
        if seen is None and (np.any(np.diff(c) < 0) or (last is not None and c[0] < last)):
            seen = np.arange(0)              # not in order (an imported file): count distinct values
        if seen is not None:
            seen = np.union1d(seen, c)
        else:
            cycles += int(np.count_nonzero(np.diff(c))) + int(last is None or c[0] != last)
        last = c[-1]
        t_last = float(block["time"].iloc[-1])
        r = block["hall_resistance"].to_numpy()
        if np.isfinite(r).any():
            lo, hi = min(lo, float(np.nanmin(r))), max(hi, float(np.nanmax(r)))
    return {"cycles": len(seen) if seen is not None else cycles, "t_last": t_last,
            "lo": lo if np.isfinite(lo) else None, "hi": hi if np.isfinite(hi) else None}


def _duration(rf: Any, t_last: float | None) -> str:
    """The `time` column's span, saying whose clock: a simulated run's is the simulator's virtual one."""
    if t_last is None:
        return MISSING
    span = _fmt(t_last, "s")
    if "seed" not in rf.sample:
        return f"{span} (measured)"
    wall = _wall_seconds(rf.start_time, rf.end_time)
    wall_text = ("" if wall is None else
                 f"; wall clock {'under 1 s' if wall < 1 else f'{wall:.0f} s'}, start to end")
    return f"{span} of virtual time (the simulator's clock{wall_text})"


@click.command("info")
@click.argument("run_file", metavar="RUN.h5")
def info(run_file: str) -> int:
    """Summarise a run file (also one being written, or interrupted); any length, in bounded memory."""
    from labspin.store import read_run

    rf = read_run(run_file, data=False)
    scan = _scan(run_file)
    if rf.status == "running":
        status = "interrupted (status running, no writer; resume with labspin run --resume)" \
            if rf.interrupted else "running (being written now)"
    elif rf.status == "failed":
        status = f"failed: {rf.error} (once fixed, continue with labspin run --resume)"
    elif rf.status == "aborted":
        status = "aborted (continue with labspin run --resume)"
    else:
        status = rf.status
    total = f" of {rf.total_points}" if rf.total_points else ""
    sample = rf.sample
    sample_text = " ".join(str(sample[k]) for k in ("id", "type") if k in sample) or MISSING
    if "seed" in sample:
        sample_text += f" (simulated, seed {sample['seed']})"
    lines = [
        ("file", rf.path),
        ("status", status),
        ("protocol", f"{rf.protocol.get('name')} ({rf.protocol.get('kind')})"),
        ("sample", sample_text),
        ("points", f"{rf.points}{total}"),
        ("cycles", str(scan["cycles"])),
        ("duration", _duration(rf, scan["t_last"])),
        ("R_H range" if rf.quantity == "hall_resistance" else f"{rf.quantity} range",
         f"{_fmt(scan['lo'], rf.unit)} .. {_fmt(scan['hi'], rf.unit)}" if scan["lo"] is not None
         else MISSING),
        ("start", rf.start_time or MISSING),
        ("end", rf.end_time or MISSING),
    ]
    for k, v in lines:
        click.echo(f"{k:<10}  {v}")
    return 0
