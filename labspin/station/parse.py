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
from labspin.errors import UserError
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
            raise UserError(f"{where}: {key}: missing table [{key}]")
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where}: {key}: expected a table, got {value!r}")
    return value


def _unknown(table: dict, allowed: tuple, where: str, prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise UserError(f"{where}: {prefix}{key}: unknown key (allowed: {', '.join(allowed)})")


def _number(value: Any, where: str, key: str, *, positive: bool = True) -> float:
    value = station_value(value, where, key)        # "5 mA", "10 um": to SI, dimension checked
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: {key}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise UserError(f"{where}: {key}: must be finite, got {value!r}")
    if positive and value <= 0:
        raise UserError(f"{where}: {key}: must be > 0, got {value!r}")
    return value


def _setting(value: Any, kind: str, where: str, key: str) -> Any:
    """An optional Hall-reader setting: "bool" (true/false), "number" (any sign) or "positive"."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"{where}: {key}: expected true or false, got {value!r}")
        return value
    return _number(value, where, key, positive=kind == "positive")


def check_address(address: Any, where: str, key: str) -> str:
    """VISA resource-name syntax (pyvisa's parser, no resource manager), plus GPIB address range."""
    if not isinstance(address, str) or not address.strip():
        raise UserError(f"{where}: {key}: expected a VISA address string, got {address!r}")
    try:
        parsed = pyvisa.rname.parse_resource_name(address)
    except Exception as exc:  # InvalidResourceName and friends
        raise UserError(f"{where}: {key}: malformed VISA address {address!r} ({exc})") from None
    if isinstance(parsed, pyvisa.rname.GPIBInstr):
        for part in ("primary_address", "secondary_address"):
            raw = getattr(parsed, part)
            if raw is None:
                continue
            if not raw.isdigit() or not 0 <= int(raw) <= 30:
                raise UserError(f"{where}: {key}: malformed VISA address {address!r} "
                                f"(GPIB {part.replace('_', ' ')} must be 0-30)")
    return address


def _sample(doc: dict, where: str) -> dict:
    table = _table(doc, "sample", where)
    _unknown(table, SAMPLE_KEYS, where, "sample.")
    for key in REQUIRED_SAMPLE_KEYS:
        if key not in table:
            raise UserError(f"{where}: sample.{key}: missing (required)")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in SAMPLE_TEXT_KEYS:
            if not isinstance(value, str) or (key == "id" and not value.strip()):
                raise UserError(f"{where}: sample.{key}: expected a non-empty string, got {value!r}")
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
        raise UserError(f"{where}: limits.min_pulse_width: {limits.min_pulse_width!r} is above "
                        f"limits.max_pulse_width {limits.max_pulse_width!r}")
    return limits


def _instruments(doc: dict, where: str, simulated: bool) -> dict[str, InstrumentSpec]:
    table = _table(doc, "instruments", where)
    if not table:
        raise UserError(f"{where}: instruments: no instrument defined")
    out = {}
    for name, inst in table.items():
        key = f"instruments.{name}"
        if not isinstance(inst, dict):
            raise UserError(f"{where}: {key}: expected a table, got {inst!r}")
        _unknown(inst, INSTRUMENT_KEYS, where, f"{key}.")
        driver = inst.get("driver")
        names = driver_names()
        if driver not in names:
            got = "missing" if driver is None else f"unknown driver {driver!r}"
            raise UserError(f"{where}: {key}.driver: {got} (one of: {', '.join(names)})")
        if "address" not in inst:
            raise UserError(f"{where}: {key}.address: missing (required)")
        if inst["address"] == SIM_ADDRESS:
            if not simulated:
                raise UserError(f"{where}: {key}.address: \"sim\" needs a [simulator] table "
                                f"(device = \"tilted:1\", ...)")
            if registry.entry(driver).sim_model is None:
                raise UserError(f"{where}: {key}.address: a {driver} has no simulated model")
            address = SIM_ADDRESS
        else:
            address = check_address(inst["address"], where, f"{key}.address")
        options = inst.get("options", {})
        if not isinstance(options, dict):
            raise UserError(f"{where}: {key}.options: expected a table, got {options!r}")
        out[name] = InstrumentSpec(driver=driver, address=address, options=dict(options))
    seen: dict[str, str] = {}
    for name, ispec in out.items():
        if ispec.address == SIM_ADDRESS:
            continue
        canonical = str(pyvisa.rname.parse_resource_name(ispec.address))
        if canonical in seen:
            raise UserError(f"{where}: instruments.{name}.address: {ispec.address!r} is already used "
                            f"by instruments.{seen[canonical]}")
        seen[canonical] = name
    return out


def _roles(doc: dict, where: str, instruments: dict[str, InstrumentSpec]) -> tuple[str, HallReaderSpec]:
    table = _table(doc, "roles", where)
    _unknown(table, ROLE_KEYS, where, "roles.")

    def instrument(value: Any, key: str, drivers: tuple) -> str:
        if not isinstance(value, str):
            raise UserError(f"{where}: {key}: expected an instrument name, got {value!r}")
        if value not in instruments:
            raise UserError(f"{where}: {key}: no instrument {value!r} in [instruments] "
                            f"(defined: {', '.join(instruments)})")
        if instruments[value].driver not in drivers:
            raise UserError(f"{where}: {key}: instrument {value!r} is a {instruments[value].driver}, "
                            f"which cannot do this (needs one of: {', '.join(drivers)})")
        return value

    if "pulse_source" not in table:
        raise UserError(f"{where}: roles.pulse_source: missing (required)")
    pulse = instrument(table["pulse_source"], "roles.pulse_source", registry.pulse_sources())
    hall = table.get("hall_reader")
    if hall is None:
        raise UserError(f"{where}: roles.hall_reader: missing (required)")
    if not isinstance(hall, dict):
        raise UserError(f"{where}: roles.hall_reader: expected a table "
                        f"{{mode = ..., instrument = ...}}, got {hall!r}")
    modes = registry.hall_modes()
    all_options = tuple(sorted({o for m in modes for o in registry.hall_mode(m).options}
                               | {k for m in modes for k, _ in registry.hall_mode(m).settings}))
    _unknown(hall, HALL_READER_BASE_KEYS + all_options, where, "roles.hall_reader.")
    mode_name = hall.get("mode")
    if mode_name not in modes:
        got = "missing" if mode_name is None else f"unknown mode {mode_name!r}"
        raise UserError(f"{where}: roles.hall_reader.mode: {got} (one of: {', '.join(modes)})")
    if "instrument" not in hall:
        raise UserError(f"{where}: roles.hall_reader.instrument: missing (required)")
    inst = instrument(hall["instrument"], "roles.hall_reader.instrument", modes[mode_name])
    mode = registry.entry(instruments[inst].driver).modes[mode_name]
    if mode.with_pulse_source and inst != pulse:
        raise UserError(f"{where}: roles.hall_reader.instrument: mode = \"{mode_name}\" writes and "
                        f"reads with one instrument, so it must be the pulse_source {pulse!r}, "
                        f"not {inst!r}")
    options = {}
    settings = dict(mode.settings)
    for key in all_options:
        if key in mode.options:
            if key not in hall:
                raise UserError(f"{where}: roles.hall_reader.{key}: missing "
                                f"(required for mode = \"{mode_name}\")")
            options[key] = _number(hall[key], where, f"roles.hall_reader.{key}")
        elif key in settings and key in hall:
            options[key] = _setting(hall[key], settings[key], where, f"roles.hall_reader.{key}")
        elif key in hall:
            users = [m for m in modes if key in registry.hall_mode(m).options
                     or key in dict(registry.hall_mode(m).settings)]
            raise UserError(f"{where}: roles.hall_reader.{key}: only used with mode = "
                            f"{' | '.join(repr(u) for u in users)}")
    return pulse, HallReaderSpec(mode=mode_name, instrument=inst, options=options)


def _capabilities(where: str, limits: Limits, instruments: dict[str, InstrumentSpec], pulse: str,
                  hall: HallReaderSpec) -> None:
    """Station limits beyond what the role's instrument can do at all are a mistake in the file."""
    def beyond(key: str, value: float, bound: float | None, name: str, role: str, low: bool = False):
        if bound is not None and (value < bound if low else value > bound):
            raise UserError(f"{where}: limits.{key}: {value:g} is {'below' if low else 'beyond'} "
                            f"what the {role} {name!r} ({instruments[name].driver}) can do "
                            f"({'min' if low else 'max'} {bound:g})")

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
                raise UserError(
                    f"{where}: instruments.{name}: the {ispec.driver} is on the RS-232 link of "
                    f"{host!r} ({hspec.driver}) and takes commands on that one interface only; "
                    f"remove [instruments.{name}] (labspin reaches it through {host!r})")


def _simulator(doc: dict, where: str) -> SimulatorSpec | None:
    if "simulator" not in doc:
        return None
    from labspin.station.sim import parse_sim_spec

    table = _table(doc, "simulator", where)
    _unknown(table, SIMULATOR_KEYS, where, "simulator.")
    if "device" not in table:
        raise UserError(f"{where}: simulator.device: missing (a preset, e.g. \"tilted:1\")")
    if not isinstance(table["device"], str):
        raise UserError(f"{where}: simulator.device: expected \"PRESET[:SEED]\", got {table['device']!r}")
    try:
        preset, seed = parse_sim_spec(table["device"])
        from labspin.device_file import is_device_file, resolve_device
        if is_device_file(preset) and not os.path.isabs(preset) and os.path.isfile(where):
            preset = os.path.join(os.path.dirname(os.path.abspath(where)), preset)
        resolve_device(preset)          # a preset or a device file (labspin fit)
    except UserError as exc:
        raise UserError(f"{where}: simulator.device: {exc}") from None
    freq = _number(table.get("line_frequency", 50.0), where, "simulator.line_frequency")
    if freq not in LINE_FREQUENCIES:
        raise UserError(f"{where}: simulator.line_frequency: {freq:g} Hz (50 or 60)")
    faults = table.get("faults", [])
    if not isinstance(faults, list):
        raise UserError(f"{where}: simulator.faults: expected an array of tables, got {faults!r}")
    out = []
    for n, f in enumerate(faults):
        key = f"simulator.faults[{n}]"
        if not isinstance(f, dict):
            raise UserError(f"{where}: {key}: expected a table, got {f!r}")
        _unknown(f, FAULT_KEYS, where, f"{key}.")
        for req in ("instrument", "kind"):
            if req not in f:
                raise UserError(f"{where}: {key}.{req}: missing (required)")
        if f["kind"] not in FAULT_KINDS:
            raise UserError(f"{where}: {key}.kind: {f['kind']!r} (one of: {', '.join(FAULT_KINDS)})")
        ints = {}
        for k, lo in (("after", 0), ("count", 1)):
            v = f.get(k, lo)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise UserError(f"{where}: {key}.{k}: expected an integer >= {lo}, got {v!r}")
            ints[k] = v
        out.append(Fault(str(f["instrument"]), f["kind"], **ints))
    return SimulatorSpec(preset=preset, seed=seed, line_frequency=freq, faults=tuple(out))


def _check_simulated(where: str, sim: SimulatorSpec, instruments: dict[str, InstrumentSpec]) -> None:
    seen: dict[str, str] = {}
    for name, ispec in instruments.items():
        if registry.entry(ispec.driver).sim_model is None:
            raise UserError(f"{where}: instruments.{name}.driver: a {ispec.driver} has no "
                            f"simulated model (remove [simulator] or the instrument)")
        if ispec.driver in seen:
            raise UserError(f"{where}: instruments.{name}: the simulated bench has one "
                            f"{ispec.driver}, already instruments.{seen[ispec.driver]}")
        seen[ispec.driver] = name
    for n, fault in enumerate(sim.faults):
        if fault.instrument not in instruments:
            raise UserError(f"{where}: simulator.faults[{n}].instrument: no instrument "
                            f"{fault.instrument!r} in [instruments] (defined: {', '.join(instruments)})")


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
