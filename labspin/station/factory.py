"""From a StationSpec to a live Station: the simulated bench (if any), the instruments, the
pre-flight checks, and the roles — every model-specific choice comes from the instrument registry."""
from __future__ import annotations

import copy
import logging
from typing import Any

from labspin.drivers import open_instrument, registry
from labspin.drivers.checks import CheckContext, CheckReport
from labspin.errors import UserError
from labspin.station.live import Station, _close_bench, _close_instrument
from labspin.station.spec import SIM_ADDRESS, StationSpec

log = logging.getLogger(__name__)


def linked_models(spec: StationSpec) -> tuple[str, ...]:
    """Models reached through another instrument (the 2182A behind a 6221)."""
    out: list[str] = []
    for ispec in spec.instruments.values():
        out += [m for m in registry.entry(ispec.driver).links if m not in out]
    return tuple(out)


def sim_address(spec: StationSpec, name: str) -> str:
    """Where the simulated bench serves instrument ``name``: its own address, or the entry's."""
    ispec = spec.instruments[name]
    if ispec.address != SIM_ADDRESS:
        return ispec.address
    return registry.entry(ispec.driver).sim_address or f"GPIB0::{_free_gpib(spec)}::INSTR"


def _free_gpib(spec: StationSpec) -> int:
    used = {i.address.upper() for i in spec.instruments.values()}
    return next(n for n in range(1, 31) if f"GPIB0::{n}::INSTR" not in used)


def make_bench(spec: StationSpec) -> Any:
    """The SimBench a simulated station runs on: its device, its instruments (and their linked
    models), each instrument's simulated model from the registry, the `[simulator]` settings."""
    from labspin.sim_backend import SimBench

    sim = spec.simulator
    addresses: dict[str, str] = {}
    models: dict[str, type] = {}
    for name, ispec in spec.instruments.items():
        addresses[ispec.driver] = sim_address(spec, name)
        models[ispec.driver] = registry.entry(ispec.driver).sim_class()
    for model in linked_models(spec):
        entry = registry.entry(model)
        addresses.setdefault(model, entry.sim_address)
        models.setdefault(model, entry.sim_class())
    kwargs: dict[str, Any] = {"line_frequency": sim.line_frequency, "addresses": addresses,
                              "models": models}
    series = spec.hall_reader.options.get("series_resistance")
    if series is not None:        # the simulated lock-in drives the channel through the same resistor
        kwargs["lockin_series_resistance"] = float(series)
    from labspin.device_file import resolve_device, simulator_input
    with simulator_input():
        bench = SimBench(resolve_device(sim.preset), seed=sim.seed, **kwargs)
    for fault in sim.faults:
        bench.inject_fault(addresses[spec.instruments[fault.instrument].driver], fault.kind,
                           after=fault.after, count=fault.count)
    return bench


def address_of(spec: StationSpec, name: str) -> str:
    """The VISA address instrument ``name`` is opened at."""
    return sim_address(spec, name) if spec.simulator is not None else spec.instruments[name].address


def open_instruments(spec: StationSpec, visa_library: Any = None, *, bench: Any = None,
                     bus_log: Any = None, names: tuple[str, ...] | None = None,
                     ) -> tuple[dict[str, Any], dict[str, str]]:
    """Open the instruments (all, or ``names``), ``*IDN?`` checked; on failure, close what was
    opened and raise."""
    if bench is not None:
        visa_library = bench.visa_library
    opened: dict[str, Any] = {}
    addresses: dict[str, str] = {}
    try:
        for name in names if names is not None else tuple(spec.instruments):
            ispec = spec.instruments[name]
            address = address_of(spec, name)
            addresses[name] = address
            opened[name] = open_instrument(ispec.driver, address, visa_library=visa_library,
                                           bus_log=bus_log, **ispec.options)
    except BaseException:
        for inst in opened.values():
            _close_instrument(inst)
        raise
    return opened, addresses


def check_context(spec: StationSpec, name: str, address: str) -> CheckContext:
    roles = tuple(r for r, who in (("pulse_source", spec.pulse_source),
                                   ("hall_reader", spec.hall_reader.instrument)) if who == name)
    reads = name == spec.hall_reader.instrument
    return CheckContext(name=name, driver=spec.instruments[name].driver, address=address,
                        limits=spec.limits, roles=roles,
                        mode=spec.hall_reader.mode if reads else None,
                        options=dict(spec.hall_reader.options) if reads else {})


def run_checks(spec: StationSpec, opened: dict[str, Any], addresses: dict[str, str]) -> list[CheckReport]:
    """Each instrument's registry check, in station order; never raises."""
    reports = []
    for name, inst in opened.items():
        ctx = check_context(spec, name, addresses[name])
        report = CheckReport(name, ctx.driver, ctx.address)
        idn = getattr(inst, "_labspin_idn", None)
        if idn:
            report.fact(", ".join(idn.split(",")[:2]))
        check = registry.entry(ctx.driver).check_function()
        if check is not None:
            try:
                check(inst, ctx, report)
            except Exception as exc:  # noqa: BLE001 - a check that breaks is a failed check
                report.problem(f"check failed: {type(exc).__name__}: {exc}")
        reports.append(report)
    return reports


def failed_checks_error(spec: StationSpec, reports: list[CheckReport]) -> UserError:
    where = spec.path or spec.name
    bad = [r.line() for r in reports if not r.ok]
    return UserError(f"{where}: pre-flight check failed: {' / '.join(bad)} "
                     "(labspin check shows every instrument)")


def build_roles(spec: StationSpec, opened: dict[str, Any]) -> tuple[Any, Any]:
    """The pulse source and the Hall reader, by the registry's role classes."""
    hr = spec.hall_reader
    mode = registry.entry(spec.instruments[hr.instrument].driver).modes[hr.mode]
    names = set(mode.options) | {k for k, _ in mode.settings}
    options = {k: v for k, v in hr.options.items() if k in names}
    # one 6221 playing both roles: its pulses use the reader's 2182A settings, or the two roles
    # would re-program the 2182A over the serial link at every point
    shared = {k: options[k] for k in ("nvm_range", "nvm_nplc")
              if k in options and spec.pulse_source == hr.instrument}
    ps = registry.entry(spec.instruments[spec.pulse_source].driver)
    pulse_source = registry.resolve(ps.pulse_source)(opened[spec.pulse_source], spec.limits, **shared)
    hall_reader = registry.resolve(mode.role)(opened[hr.instrument], spec.limits, **options)
    return pulse_source, hall_reader


def open_station(spec: StationSpec, visa_library: Any = None, *, bench: Any = None,
                 bus_log: Any = None, preflight: bool = False) -> Station:
    """Open the instruments and build the roles.

    A simulated spec creates its own `SimBench` (unless given one); a real spec can be pointed at
    an existing bench (``bench=``, e.g. a real station file against the simulator) or at any
    ``visa_library``. ``bus_log`` (a `labspin.buslog.BusLog`) records every message and is closed
    with the station. ``preflight`` runs every instrument's check before any role is built and
    refuses (UserError, one line) on any problem.
    """
    owns_bench = spec.simulator is not None and bench is None
    if owns_bench:
        bench = make_bench(spec)
    if bus_log is not None and bench is not None:
        bus_log.set_clock(lambda: float(bench.clock.now))
    opened: dict[str, Any] = {}
    try:
        opened, addresses = open_instruments(spec, visa_library, bench=bench, bus_log=bus_log)
        reports = run_checks(spec, opened, addresses) if preflight else []
        if any(not r.ok for r in reports):
            raise failed_checks_error(spec, reports)
        pulse_source, hall_reader = build_roles(spec, opened)
    except BaseException:
        for inst in opened.values():
            _close_instrument(inst)
        if owns_bench:
            _close_bench(bench)
        if bus_log is not None:
            bus_log.close()
        raise
    station = Station(pulse_source=pulse_source, hall_reader=hall_reader, limits=spec.limits,
                      sample=copy.deepcopy(spec.sample), bench=bench, instruments=opened,
                      addresses=addresses, spec=spec, owns_bench=owns_bench, bus_log=bus_log)
    station.checks = reports
    return station


def check_station(spec: StationSpec, visa_library: Any = None, *, bench: Any = None,
                  bus_log: Any = None) -> list[CheckReport]:
    """`labspin check`: open each instrument, run its check, close; one report per instrument.

    An instrument that cannot be opened is reported (not raised), so every line is shown.
    """
    owns_bench = spec.simulator is not None and bench is None
    if owns_bench:
        bench = make_bench(spec)
    if bus_log is not None and bench is not None:
        bus_log.set_clock(lambda: float(bench.clock.now))
    reports: list[CheckReport] = []
    try:
        for name, ispec in spec.instruments.items():
            try:
                opened, addresses = open_instruments(spec, visa_library, bench=bench,
                                                     bus_log=bus_log, names=(name,))
            except UserError as exc:
                report = CheckReport(name, ispec.driver, address_of(spec, name))
                report.problem(str(exc))
                reports.append(report)
                continue
            try:
                reports.extend(run_checks(spec, opened, addresses))
            finally:
                for inst in opened.values():
                    _close_instrument(inst)
    finally:
        if owns_bench:
            _close_bench(bench)
        if bus_log is not None:
            bus_log.close()
    return reports
