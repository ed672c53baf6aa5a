"""One measurement, composed: check the limits, make the run-file writer, open the station, run,
close. The CLI (`labspin run`, `labspin sim`), the GUI, the demo, the sweep and scripts all use it::

    runner = prepare(recipe, spec, "run.h5", listeners)   # checked, opened, wired; nothing sent yet
    run(runner)                                            # blocking; closes the station
    resume("run.h5")                                       # a killed, aborted or failed run, to the end

`prepare` hands back the `labspin.runner.Runner` before anything is sent, so a caller may run it
in a thread (the GUI) and pause/abort it; `run` runs it and closes its station on every path.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from labspin.errors import FieldError, UserError


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


def _attach_state(station: Any, writer: Any, state: dict | None, start_index: int) -> None:
    """With a device-state provider (the simulator): restore the state a resumed file stored,
    and have the writer store it at every flush. A real bench has none: nothing to do."""
    provider = getattr(station, "device_state", None)
    if provider is None:
        return
    if state is not None:
        provider.set_state(state)
    elif start_index > 0:
        raise UserError(f"{writer.path}: no stored simulator state; cannot resume "
                        f"a simulated run at point {start_index}")
    if writer is not None:
        writer.state_provider = provider.get_state


def invocation(recipe: Any, spec: Any, argv: Sequence[str] = ()) -> dict:
    """How a run was started (recipe, overrides, station file or simulator), stored in the run
    file so that `resume` can rebuild it."""
    station = ({"file": os.path.abspath(spec.path)} if spec.path
               else {"sim": spec.simulator.device})
    if not spec.path and spec.hall_reader.mode != "dc_delta":   # --hall-mode, for --resume
        station["hall_mode"] = spec.hall_reader.mode
    return {"recipe": recipe.path or recipe.name, "recipe_path": recipe.path,
            "overrides": dict(recipe.overrides), "station": station, "argv": list(argv)}


def station_spec(station_file: str | None, sim: str | None, hall_mode: str | None = None):
    """The station of a station file or of ``--sim DEVICE[:SEED]`` (exactly one of them)."""
    from labspin import station as st
    if (station_file is None) == (sim is None):
        raise FieldError("station_file", "give exactly one of a station file or sim (DEVICE[:SEED])")
    st.check_hall_mode_use(station_file, hall_mode)
    if station_file:
        return st.load_station_spec(station_file)
    return st.sim_station_spec(sim, hall_mode=hall_mode or "dc_delta")


def prepare(recipe: Any, spec: Any, output: Any = None, listeners: Sequence[Any] = (), *,
            overwrite: bool = False, flush_interval: float = 0.5, progress: bool = False,
            argv: Sequence[str] = (), bus_log: Any = None):
    """A `Runner` ready to run ``recipe`` on the station of ``spec``: nothing sent yet.

    ``output``: a new run file's path (refused if it exists, unless ``overwrite``), a `RunWriter`
    (one made with ``resume=True`` continues its file where it stopped), or None (no file: the
    listeners get the points). In this order, each refusing in one line before the next: the
    output, every limit check (before any instrument is opened), the station with its pre-flight
    checks (``bus_log``: a path or a BusLog recording every VISA message). The station is
    ``runner.station``; close it when done (`run` does).
    """
    from labspin.progress import ProgressBar
    from labspin.runner import Runner, check_limits
    from labspin.store import RunWriter

    writer = output
    if output is not None and not isinstance(output, RunWriter):
        writer = RunWriter(output, overwrite=overwrite, flush_interval=flush_interval,
                           invocation=invocation(recipe, spec, argv))
    resumed = writer is not None and writer.resume
    start_index = writer.start_index if resumed else 0
    check_limits(recipe, spec, spec.limits, start_index)     # before any instrument is opened
    station = open_station(spec, bus_log=bus_log)
    try:
        _attach_state(station, writer, writer.sim_state if resumed else None, start_index)
    except BaseException:
        station.close()
        raise
    extra = [ProgressBar()] if progress else []
    return Runner(station, recipe, [w for w in (writer,) if w is not None] + [*listeners, *extra],
                  start_index=start_index, time_offset=writer.time_offset if resumed else 0.0,
                  limits_checked=True)


def prepare_resume(path: str | os.PathLike, listeners: Sequence[Any] = (), *,
                   flush_interval: float = 0.5, progress: bool = False, bus_log: Any = None):
    """`prepare` for an interrupted (killed), aborted or failed run file: its recipe, overrides
    and station (or simulated device and seed, with the device state) come from the file."""
    from labspin.protocols.recipe import parse_recipe
    from labspin.store import RunWriter, read_run

    writer = RunWriter(path, resume=True, flush_interval=flush_interval)   # UserError: nothing to resume
    rf = read_run(path)
    inv = rf.invocation
    if not inv or "station" not in inv:
        raise UserError(f"{path}: /entry/invocation: missing; this file cannot be resumed")
    recipe = parse_recipe(rf.recipe, f"{path}:/entry/protocol/recipe", path=inv.get("recipe_path"),
                          overrides=inv.get("overrides") or None)
    st = inv["station"]
    spec = station_spec(st.get("file"), st.get("sim"), st.get("hall_mode"))
    writer.invocation = inv
    return prepare(recipe, spec, writer, listeners, progress=progress, bus_log=bus_log)


def run(runner: Any):
    """Run a prepared runner to its end (blocking) and close its station; the runner (its
    ``state``, ``error``, ``points_done`` say how it went)."""
    try:
        runner.run()
    finally:
        runner.station.close()
    return runner


def resume(path: str | os.PathLike, listeners: Sequence[Any] = (), **kw):
    """Continue a run file to its end (see `prepare_resume`); the runner."""
    return run(prepare_resume(path, listeners, **kw))


def measure(recipe: Any, spec: Any, output: Any, *, listeners: Sequence[Any] = (), **kw):
    """`run(prepare(...))` in one call; (status, runner)."""
    runner = run(prepare(recipe, spec, output, listeners, **kw))
    return runner.state, runner


def execute(recipe: Any, spec: Any, writer: Any, *, listeners: Sequence[Any] = (), **kw):
    """`measure` into an existing `RunWriter` (e.g. one made with ``resume=True``)."""
    return measure(recipe, spec, writer, listeners=listeners, **kw)
