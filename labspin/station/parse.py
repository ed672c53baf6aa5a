"""Station files: TOML text -> a validated `StationSpec`, every error one line naming the key.

Touches no instrument and creates no VISA resource manager. Which drivers exist, which roles and
modes each can play, and what each can physically do come from `labspin.drivers.registry`.
"""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pyvisa.rname

from labspin.drivers import registry
from labspin.drivers.roles import Limits
from labspin.errors import FieldError, UserError
from labspin.units import station_value
from labspin.station.spec import (SIM_ADDRESS, Fault, HallReaderSpec, InstrumentSpec,
                                  SimulatorSpec, StationSpec)

TOP_LEVEL_KEYS = ("name", "description", "sample", "limits", "instruments", "roles", "simulator")
SAMPLE_TEXT_KEYS = ("id", "type", "notes")
SAMPLE_LENGTH_KEYS = ("width", "thickness", "length")
SAMPLE_KEYS = SAMPLE_TEXT_KEYS + SAMPLE_LENGTH_KEYS + ("r_xx",)
REQUIRED_SAMPLE_KEYS = ("id", "width", "thickness")
INSTRUMENT_KEYS = ("driver", "address", "options")
ROLE_KEYS = ("pulse_source", "hall_reader")
HALL_READER_BASE_KEYS = ("mode", "instrument")
SIMULATOR_KEYS = ("device", "line_frequency", "faults")
FAULT_KEYS = ("instrument", "kind", "after", "count")
FAULT_KINDS = ("timeout", "error", "disconnect", "compliance")   # SimBench.inject_fault
LINE_FREQUENCIES = (50.0, 60.0)


def driver_names() -> tuple[str, ...]:
    return tuple(registry.entries())


def _table(doc: dict, key: str, where: str, *, required: bool = True) -> dict:
    value = doc.get(key)
    if value is None:
        if required:
            raise FieldError(key, f"missing table [{key}]", where)
        return {}
    if not isinstance(value, dict):
        raise FieldError(key, f"expected a table, got {value!r}", where)
    return value


def _unknown(table: dict, allowed: tuple, where: str, prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise FieldError(f"{prefix}{key}", f"unknown key (allowed: {', '.join(allowed)})", where)


def _number(value: Any, where: str, key: str, *, positive: bool = True) -> float:
    value = station_value(value, where, key)        # "5 mA", "10 um": to SI, dimension checked
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(key, f"expected a number, got {value!r}", where)
    value = float(value)
    if not math.isfinite(value):
        raise FieldError(key, f"must be finite, got {value!r}", where)
    if positive and value <= 0:
        raise FieldError(key, f"must be > 0, got {value!r}", where)
    return value


def _setting(value: Any, kind: str, where: str, key: str) -> Any:
    """An optional Hall-reader setting: "bool" (true/false), "number" (any sign) or "positive"."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise FieldError(key, f"expected true or false, got {value!r}", where)
        return value
    return _number(value, where, key, positive=kind == "positive")


def check_address(address: Any, where: str, key: str) -> str:
    """VISA resource-name syntax (pyvisa's parser, no resource manager), plus GPIB address range."""
    if not isinstance(address, str) or not address.strip():
        raise FieldError(key, f"expected a VISA address string, got {address!r}", where)
    try:
        parsed = pyvisa.rname.parse_resource_name(address)
    except Exception as exc:  # InvalidResourceName and friends
        raise FieldError(key, f"malformed VISA address {address!r} ({exc})", where) from None
    if isinstance(parsed, pyvisa.rname.GPIBInstr):
        for part in ("primary_address", "secondary_address"):
            raw = getattr(parsed, part)
            if raw is None:
                continue
            if not raw.isdigit() or not 0 <= int(raw) <= 30:
                raise FieldError(key, f"malformed VISA address {address!r} "
                                      f"(GPIB {part.replace('_', ' ')} must be 0-30)", where)
    return address


def _sample(doc: dict, where: str) -> dict:
    table = _table(doc, "sample", where)
    _unknown(table, SAMPLE_KEYS, where, "sample.")
    for key in REQUIRED_SAMPLE_KEYS:
        if key not in table:
            raise FieldError(f"sample.{key}", "missing (required)", where)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in SAMPLE_TEXT_KEYS:
            if not isinstance(value, str) or (key == "id" and not value.strip()):
                raise FieldError(f"sample.{key}", f"expected a non-empty string, got {value!r}", where)
            out[key] = value
        else:
            out[key] = _number(value, where, f"sample.{key}")
    return out


def _limits(doc: dict, where: str) -> Limits:
    table = _table(doc, "limits", where, required=False)
    names = tuple(f.name for f in fields(Limits))
    _unknown(table, names, where, "limits.")
    values = {k: _number(v, where, f"limits.{k}") for k, v in table.items()}
    limits = Limits(**values)
    if limits.min_pulse_width > limits.max_pulse_width:
        raise FieldError("limits.min_pulse_width", f"{limits.min_pulse_width!r} is above limits."
                         f"max_pulse_width {limits.max_pulse_width!r}", where)
    return limits


def _instruments(doc: dict, where: str, simulated: bool) -> dict[str, InstrumentSpec]:
    table = _table(doc, "instruments", where)
    if not table:
        raise FieldError("instruments", "no instrument defined", where)
    out = {}
    for name, inst in table.items():
        key = f"instruments.{name}"
        if not isinstance(inst, dict):
            raise FieldError(key, f"expected a table, got {inst!r}", where)
        _unknown(inst, INSTRUMENT_KEYS, where, f"{key}.")
        driver = inst.get("driver")
        names = driver_names()
        if driver not in names:
            got = "missing" if driver is None else f"unknown driver {driver!r}"
            raise FieldError(f"{key}.driver", f"{got} (one of: {', '.join(names)})", where)
        if "address" not in inst:
            raise FieldError(f"{key}.address", "missing (required)", where)
        if inst["address"] == SIM_ADDRESS:
            if not simulated:
                raise FieldError(f"{key}.address", "\"sim\" needs a [simulator] table "
                                                   "(device = \"tilted:1\", ...)", where)
            if registry.entry(driver).sim_model is None:
                raise FieldError(f"{key}.address", f"a {driver} has no simulated model", where)
            address = SIM_ADDRESS
        else:
            address = check_address(inst["address"], where, f"{key}.address")
        options = inst.get("options", {})
        if not isinstance(options, dict):
            raise FieldError(f"{key}.options", f"expected a table, got {options!r}", where)
        out[name] = InstrumentSpec(driver=driver, address=address, options=dict(options))
    seen: dict[str, str] = {}
    for name, ispec in out.items():
        if ispec.address == SIM_ADDRESS:
            continue
        canonical = str(pyvisa.rname.parse_resource_name(ispec.address))
        if canonical in seen:
            raise FieldError(f"instruments.{name}.address", f"{ispec.address!r} is already used "
                                                            f"by instruments.{seen[canonical]}", where)
        seen[canonical] = name
    return out


def _roles(doc: dict, where: str, instruments: dict[str, InstrumentSpec]) -> tuple[str, HallReaderSpec]:
    table = _table(doc, "roles", where)
    _unknown(table, ROLE_KEYS, where, "roles.")

    def instrument(value: Any, key: str, drivers: tuple) -> str:
        if not isinstance(value, str):
            raise FieldError(key, f"expected an instrument name, got {value!r}", where)
        if value not in instruments:
            raise FieldError(key, f"no instrument {value!r} in [instruments] "
                                  f"(defined: {', '.join(instruments)})", where)
        if instruments[value].driver not in drivers:
            raise FieldError(key, f"instrument {value!r} is a {instruments[value].driver}, "
                                  f"which cannot do this (needs one of: {', '.join(drivers)})", where)
        return value

    if "pulse_source" not in table:
        raise FieldError("roles.pulse_source", "missing (required)", where)
    pulse = instrument(table["pulse_source"], "roles.pulse_source", registry.pulse_sources())
    hall = table.get("hall_reader")
    if hall is None:
        raise FieldError("roles.hall_reader", "missing (required)", where)
    if not isinstance(hall, dict):
        raise FieldError("roles.hall_reader", "expected a table "
                                              f"{{mode = ..., instrument = ...}}, got {hall!r}", where)
    modes = registry.hall_modes()
    all_options = tuple(sorted({o for m in modes for o in registry.hall_mode(m).options}
                               | {k for m in modes for k, _ in registry.hall_mode(m).settings}))
    _unknown(hall, HALL_READER_BASE_KEYS + all_options, where, "roles.hall_reader.")
    mode_name = hall.get("mode")
    if mode_name not in modes:
        got = "missing" if mode_name is None else f"unknown mode {mode_name!r}"
        raise FieldError("roles.hall_reader.mode", f"{got} (one of: {', '.join(modes)})", where)
    if "instrument" not in hall:
        raise FieldError("roles.hall_reader.instrument", "missing (required)", where)
    inst = instrument(hall["instrument"], "roles.hall_reader.instrument", modes[mode_name])
    mode = registry.entry(instruments[inst].driver).modes[mode_name]
    if mode.with_pulse_source and inst != pulse:
        raise FieldError("roles.hall_reader.instrument",
                         f"mode = \"{mode_name}\" writes and reads with one instrument, so it must be "
                         f"the pulse_source {pulse!r}, not {inst!r}", where)
    options = {}
    settings = dict(mode.settings)
    for key in all_options:
        if key in mode.options:
            if key not in hall:
                raise FieldError(f"roles.hall_reader.{key}", "missing "
                                                             f"(required for mode = \"{mode_name}\")", where)
            options[key] = _number(hall[key], where, f"roles.hall_reader.{key}")
        elif key in settings and key in hall:
            options[key] = _setting(hall[key], settings[key], where, f"roles.hall_reader.{key}")
        elif key in hall:
            users = [m for m in modes if key in registry.hall_mode(m).options
                     or key in dict(registry.hall_mode(m).settings)]
            raise FieldError(f"roles.hall_reader.{key}", "only used with mode = "
                                                         f"{' | '.join(repr(u) for u in users)}", where)
    return pulse, HallReaderSpec(mode=mode_name, instrument=inst, options=options)


def _capabilities(where: str, limits: Limits, instruments: dict[str, InstrumentSpec], pulse: str,
                  hall: HallReaderSpec) -> None:
    """Station limits beyond what the role's instrument can do at all are a mistake in the file."""
    def beyond(key: str, value: float, bound: float | None, name: str, role: str, low: bool = False):
        if bound is not None and (value < bound if low else value > bound):
            raise FieldError(f"limits.{key}", f"{value:g} is {'below' if low else 'beyond'} "
                                              f"what the {role} {name!r} ({instruments[name].driver}) can do "
                                              f"({'min' if low else 'max'} {bound:g})", where)

    cap = registry.entry(instruments[pulse].driver).capabilities
    if cap is not None:
        beyond("max_pulse_current", limits.max_pulse_current, cap.max_current, pulse, "pulse_source")
        beyond("compliance_voltage", limits.compliance_voltage, cap.max_voltage, pulse, "pulse_source")
        beyond("min_pulse_width", limits.min_pulse_width, cap.min_pulse_width, pulse,
               "pulse_source", low=True)
        beyond("max_pulse_width", limits.max_pulse_width, cap.max_pulse_width, pulse, "pulse_source")
    cap = registry.entry(instruments[hall.instrument].driver).capabilities
    if cap is not None and cap.max_current is not None:     # a source that reads (not a lock-in)
        beyond("max_read_current", limits.max_read_current, cap.max_current, hall.instrument,
               "hall_reader")
        beyond("compliance_voltage", limits.compliance_voltage, cap.max_voltage, hall.instrument,
               "hall_reader")


def _one_interface(where: str, instruments: dict[str, InstrumentSpec]) -> None:
    """A model that another instrument talks to through its own port (the 2182A on the 6221's
    RS-232) is not on the bus too: the 2182A takes commands from one interface at a time, chosen
    on its front panel (2182A UM §11 "Selecting and configuring an interface"), and with a 6221
    the PC talks only to the 6221 (scpi.md §2.8)."""
    for host, hspec in instruments.items():
        links = registry.entry(hspec.driver).links
        for name, ispec in instruments.items():
            if ispec.driver in links:
                raise FieldError(
                    f"instruments.{name}", f"the {ispec.driver} is on the RS-232 link of "
                    f"{host!r} ({hspec.driver}) and takes commands on that one interface only; "
                    f"remove [instruments.{name}] (labspin reaches it through {host!r})", where)


def _simulator(doc: dict, where: str) -> SimulatorSpec | None:
    if "simulator" not in doc:
        return None
    from labspin.station.sim import parse_sim_spec

    table = _table(doc, "simulator", where)
    _unknown(table, SIMULATOR_KEYS, where, "simulator.")
    if "device" not in table:
        raise FieldError("simulator.device", "missing (a preset, e.g. \"tilted:1\")", where)
    if not isinstance(table["device"], str):
        raise FieldError("simulator.device", f"expected \"PRESET[:SEED]\", got {table['device']!r}", where)
    try:
        preset, seed = parse_sim_spec(table["device"])
        from labspin.device_file import is_device_file, resolve_device
        if is_device_file(preset) and not os.path.isabs(preset) and os.path.isfile(where):
            preset = os.path.join(os.path.dirname(os.path.abspath(where)), preset)
        resolve_device(preset)          # a preset or a device file (labspin fit)
    except FieldError as exc:                       # parse_sim_spec's reason, not its field
        raise FieldError("simulator.device", exc.reason, where) from None
    except UserError as exc:
        raise FieldError("simulator.device", str(exc), where) from None
    freq = _number(table.get("line_frequency", 50.0), where, "simulator.line_frequency")
    if freq not in LINE_FREQUENCIES:
        raise FieldError("simulator.line_frequency", f"{freq:g} Hz (50 or 60)", where)
    faults = table.get("faults", [])
    if not isinstance(faults, list):
        raise FieldError("simulator.faults", f"expected an array of tables, got {faults!r}", where)
    out = []
    for n, f in enumerate(faults):
        key = f"simulator.faults[{n}]"
        if not isinstance(f, dict):
            raise FieldError(key, f"expected a table, got {f!r}", where)
        _unknown(f, FAULT_KEYS, where, f"{key}.")
        for req in ("instrument", "kind"):
            if req not in f:
                raise FieldError(f"{key}.{req}", "missing (required)", where)
        if f["kind"] not in FAULT_KINDS:
            raise FieldError(f"{key}.kind", f"{f['kind']!r} (one of: {', '.join(FAULT_KINDS)})", where)
        ints = {}
        for k, lo in (("after", 0), ("count", 1)):
            v = f.get(k, lo)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise FieldError(f"{key}.{k}", f"expected an integer >= {lo}, got {v!r}", where)
            ints[k] = v
        out.append(Fault(str(f["instrument"]), f["kind"], **ints))
    return SimulatorSpec(preset=preset, seed=seed, line_frequency=freq, faults=tuple(out))


def _check_simulated(where: str, sim: SimulatorSpec, instruments: dict[str, InstrumentSpec]) -> None:
    seen: dict[str, str] = {}
    for name, ispec in instruments.items():
        if registry.entry(ispec.driver).sim_model is None:
            raise FieldError(f"instruments.{name}.driver", f"a {ispec.driver} has no simulated model "
                             "(remove [simulator] or the instrument)", where)
        if ispec.driver in seen:
            raise FieldError(f"instruments.{name}", f"the simulated bench has one {ispec.driver}, "
                             f"already instruments.{seen[ispec.driver]}", where)
        seen[ispec.driver] = name
    for n, fault in enumerate(sim.faults):
        if fault.instrument not in instruments:
            raise FieldError(f"simulator.faults[{n}].instrument", f"no instrument {fault.instrument!r} in "
                             f"[instruments] (defined: {', '.join(instruments)})", where)


def _sim_sample(sim: SimulatorSpec, given: dict | None) -> dict:
    from labspin.station.sim import preset_sample
    sample = preset_sample(sim.preset, sim.seed)
    if given:
        sample.update(given)
    return sample


def parse_station_spec(text: str, source: str = "<station>", *, path: str | None = None) -> StationSpec:
    """Validate station TOML text; every error names `source` and the key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: invalid TOML: {exc}".replace("\n", " ")) from None
    _unknown(doc, TOP_LEVEL_KEYS, source, "")
    name = doc.get("name", Path(path).stem if path else "station")
    description = doc.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise UserError(f"{source}: {key}: expected a string, got {value!r}")
    sim = _simulator(doc, source)
    if sim is not None and "sample" not in doc:
        sample = _sim_sample(sim, None)
    else:
        sample = _sample(doc, source)
        if sim is not None:
            sample = _sim_sample(sim, sample)
    limits = _limits(doc, source)
    instruments = _instruments(doc, source, sim is not None)
    pulse, hall = _roles(doc, source, instruments)
    _capabilities(source, limits, instruments, pulse, hall)
    _one_interface(source, instruments)
    if sim is not None:
        _check_simulated(source, sim, instruments)
    return StationSpec(name=name, sample=sample, limits=limits, instruments=instruments,
                       pulse_source=pulse, hall_reader=hall, path=path, description=description,
                       simulator=sim)


def load_station_spec(path: str | os.PathLike) -> StationSpec:
    """Read and validate a station file; touches no instrument."""
    arg = os.fspath(path)
    p = Path(arg)
    if not p.is_file():
        raise UserError(f"{arg}: no such station file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{arg}: cannot read: {exc}") from None
    return parse_station_spec(text, arg, path=str(p.resolve()))
