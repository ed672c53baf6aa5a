"""One measurement, composed: open the station, attach the run-file writer, run, close.

The CLI (`labspin run`), the demo and scripts share this; the GUI builds the same pieces
itself because it adds its own listeners and runs off the GUI thread.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from labspin.errors import UserError


def open_station(spec: Any, *, bus_log: Any = None, preflight: bool = True):
    """`spec.open()` with the pre-flight checks (one line, UserError, on any problem) and VISA/OS
    failures turned into one line naming the station. ``bus_log``: a path or a BusLog."""
    import pyvisa
    if bus_log is not None and not hasattr(bus_log, "attach"):
        from labspin.buslog import BusLog
        bus_log = BusLog(bus_log, overwrite=True)
    try:
        return spec.open(bus_log=bus_log, preflight=preflight)
    except UserError:
        raise
    except (pyvisa.Error, OSError, ValueError) as exc:
        where = spec.path or spec.name
        raise UserError(f"{where}: cannot open the instruments: {exc}".replace("\n", " ")) from None


def attach_sim_state(station: Any, writer: Any, sim_state: dict | None, start_index: int) -> None:
    """On the simulator: restore the device state a resumed file stored, and keep storing it."""
    if station.bench is None:
        return
    hb = station.bench.hallbar
    if sim_state is not None:
        hb.set_state(sim_state)
    elif start_index > 0:
        raise UserError(f"{writer.path}: no stored simulator state; cannot resume "
                        f"a simulated run at point {start_index}")
    writer.state_provider = hb.get_state


def execute(recipe: Any, spec: Any, writer: Any, *, listeners: Sequence[Any] = (),
            progress: bool = False, start_index: int = 0, time_offset: float = 0.0,
            sim_state: dict | None = None, bus_log: Any = None):
    """Run ``recipe`` on the station of ``spec`` into ``writer``; returns (status, runner).

    Every instrument's pre-flight check runs before the first pulse; ``bus_log`` (a path or a
    `labspin.buslog.BusLog`) records every VISA message of the run."""
    from labspin.progress import ProgressBar
    from labspin.runner import Runner, check_limits

    check_limits(recipe, spec, spec.limits, start_index)    # before any instrument is opened
    station = open_station(spec, bus_log=bus_log)
    try:
        attach_sim_state(station, writer, sim_state, start_index)
        extra = [ProgressBar()] if progress else []
        runner = Runner(station, recipe, [writer, *listeners, *extra],
                        start_index=start_index, time_offset=time_offset)
        status = runner.run()
    finally:
        station.close()
    return status, runner


def invocation(recipe: Any, spec: Any, argv: Sequence[str] = ()) -> dict:
    """How a run was started (recipe, overrides, station file or simulator), stored in the run
    file so that `labspin run --resume` can rebuild it."""
    station = ({"file": os.path.abspath(spec.path)} if spec.path
               else {"sim": spec.simulator.device})
    if not spec.path and spec.hall_reader.mode != "dc_delta":   # --hall-mode, for --resume
        station["hall_mode"] = spec.hall_reader.mode
    return {"recipe": recipe.path or recipe.name, "recipe_path": recipe.path,
            "overrides": dict(recipe.overrides), "station": station, "argv": list(argv)}


def measure(recipe: Any, spec: Any, output: str | os.PathLike, *, overwrite: bool = False,
            flush_interval: float = 0.5, progress: bool = False, listeners: Sequence[Any] = (),
            argv: Sequence[str] = (), bus_log: Any = None):
    """A new run file at ``output`` (refused if it exists, unless ``overwrite``); (status, runner).

    Over-limit schedules are refused before any instrument is opened or any file written.
    """
    from labspin.store import RunWriter

    writer = RunWriter(output, overwrite=overwrite, flush_interval=flush_interval,
                       invocation=invocation(recipe, spec, argv))
    return execute(recipe, spec, writer, listeners=listeners, progress=progress, bus_log=bus_log)
