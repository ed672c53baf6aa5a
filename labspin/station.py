"""The station: which instruments are on the bench, which role each plays, the sample and its limits.

A station file is TOML (SI units)::

    name = "bench-2"                         # optional
    description = "6221 + 2182A, probe station B"   # optional

    [sample]
    id = "D17-3"                             # required
    type = "tilted"                          # optional, free text (orange_peel | idmi | tilted | ...)
    width = 10e-6                            # m, required: current-carrying channel width
    thickness = 5e-9                         # m, required: current-carrying layer thickness
    length = 40e-6                           # m, optional
    r_xx = 1500.0                            # ohm, optional: channel resistance (energy, compliance)
    notes = "..."                            # optional

    [limits]                                 # all optional; defaults from drivers.roles.Limits
    max_pulse_current = 0.015                # A
    max_read_current = 1e-3                  # A
    compliance_voltage = 10.0                # V
    min_pulse_width = 50e-6                  # s
    max_pulse_width = 12e-3                  # s

    [instruments.k6221]                      # one table per instrument, any name
    driver = "keithley6221"                  # keithley6221 | keithley2182 | sr830 | sr860 | keithley2400 | keithley2450
    address = "GPIB0::12::INSTR"             # a VISA resource name
    options = { timeout = 5000 }             # optional, passed to the instrument class

    [roles]
    pulse_source = "k6221"                   # a keithley6221 (Pulse Delta) or a 2400/2450
    hall_reader = { mode = "dc_delta", instrument = "k6221" }
    # mode = "dc_delta" (a 6221 with the 2182A attached) | "pulse_delta" (the pulse-source 6221
    # with its 2182A: reads are Pulse Delta pulses, and runs of steps go out as one hardware-timed
    # list sweep) | "lockin" (sr830/sr860; needs series_resistance, ohm) | "sourcemeter" (2400/2450)

`load_station_spec` validates all of it without touching any instrument (not even a VISA
resource manager); `StationSpec.open()` opens the instruments and builds the roles.
`sim_station_spec("tilted:3")` describes a simulated bench instead.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pyvisa.rname

from labspin.drivers import DRIVERS
from labspin.drivers.roles import HallReader, Limits, PulseSource
from labspin.errors import UserError
from labspin.units import station_value

log = logging.getLogger(__name__)

# Driver names come from labspin.drivers.DRIVERS (lazy: naming a driver imports nothing);
# which of them can play which role is decided here.
DRIVER_NAMES = tuple(DRIVERS)
PULSE_DRIVERS = ("keithley6221", "keithley2400", "keithley2450")
HALL_MODES = {"dc_delta": ("keithley6221",), "pulse_delta": ("keithley6221",),
              "lockin": ("sr830", "sr860"), "sourcemeter": ("keithley2400", "keithley2450")}

TOP_LEVEL_KEYS = ("name", "description", "sample", "limits", "instruments", "roles")
SAMPLE_TEXT_KEYS = ("id", "type", "notes")
SAMPLE_LENGTH_KEYS = ("width", "thickness", "length")
SAMPLE_KEYS = SAMPLE_TEXT_KEYS + SAMPLE_LENGTH_KEYS + ("r_xx",)
REQUIRED_SAMPLE_KEYS = ("id", "width", "thickness")
INSTRUMENT_KEYS = ("driver", "address", "options")
ROLE_KEYS = ("pulse_source", "hall_reader")
HALL_READER_KEYS = ("mode", "instrument", "series_resistance")



@dataclass(frozen=True)
class InstrumentSpec:
    driver: str
    address: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class HallReaderSpec:
    mode: str                           # "dc_delta" | "pulse_delta" | "lockin" | "sourcemeter"
    instrument: str                     # a key of StationSpec.instruments
    series_resistance: float | None = None   # ohm, lock-in only


@dataclass(frozen=True)
class StationSpec:
    """A validated station description; `open()` turns it into a live `Station`."""

    name: str
    sample: dict
    limits: Limits
    instruments: dict[str, InstrumentSpec]
    pulse_source: str                   # instrument name
    hall_reader: HallReaderSpec
    path: str | None = None
    description: str = ""
    sim: tuple[str, int] | None = None  # (preset, seed) for a simulated bench

    @property
    def simulated(self) -> bool:
        return self.sim is not None

    def as_dict(self) -> dict:
        """JSON-able description (no instrument is touched)."""
        return {
            "name": self.name, "path": self.path, "description": self.description,
            "simulated": self.simulated,
            "sim": None if self.sim is None else f"{self.sim[0]}:{self.sim[1]}",
            "limits": self.limits.as_dict(),
            "instruments": {k: {"driver": v.driver, "address": v.address, "options": dict(v.options)}
                            for k, v in self.instruments.items()},
            "roles": {"pulse_source": self.pulse_source,
                      "hall_reader": {"mode": self.hall_reader.mode,
                                      "instrument": self.hall_reader.instrument,
                                      "series_resistance": self.hall_reader.series_resistance}},
        }

    def open(self, visa_library: Any = None, *, bench: Any = None) -> "Station":
        """Open the instruments and build the roles.

        A simulated spec creates its own `SimBench`; a file spec can be pointed at an existing
        bench (`bench=`, e.g. to run a real station file against the simulator) or at any
        `visa_library` (pyvisa backend string or VisaLibraryBase).
        """
        from labspin.drivers import open_instrument

        owns_bench = self.sim is not None and bench is None
        if owns_bench:
            from labspin.sim_backend import SimBench
            bench = SimBench(self.sim[0], seed=self.sim[1])
        if bench is not None:
            visa_library = bench.visa_library
        opened: dict[str, Any] = {}
        addresses: dict[str, str] = {}
        try:
            for name, ispec in self.instruments.items():
                address = ispec.address
                if self.sim is not None:  # the bench says where it serves each model
                    address = bench.addresses.get(ispec.driver, address)
                addresses[name] = address
                opened[name] = open_instrument(ispec.driver, address, visa_library=visa_library,
                                               **ispec.options)
            pulse_source = _build_pulse_source(self.instruments[self.pulse_source].driver,
                                               opened[self.pulse_source], self.limits)
            hall_reader = _build_hall_reader(self.hall_reader, opened[self.hall_reader.instrument],
                                             self.limits)
        except BaseException:
            for inst in opened.values():
                _close_instrument(inst)
            if owns_bench:
                _close_bench(bench)
            raise
        return Station(pulse_source=pulse_source, hall_reader=hall_reader, limits=self.limits,
                       sample=copy.deepcopy(self.sample), bench=bench, instruments=opened,
                       addresses=addresses, spec=self, owns_bench=owns_bench)


def _build_pulse_source(driver: str, inst: Any, limits: Limits) -> PulseSource:
    from labspin.drivers import pulse
    if driver == "keithley6221":
        return pulse.K6221PulseSource(inst, limits)
    return pulse.SourceMeterPulseSource(inst, limits)


def _build_hall_reader(spec: HallReaderSpec, inst: Any, limits: Limits) -> HallReader:
    from labspin.drivers import hall
    if spec.mode == "dc_delta":
        return hall.DeltaHallReader(inst, limits)
    if spec.mode == "pulse_delta":
        return hall.PulseDeltaHallReader(inst, limits)
    if spec.mode == "lockin":
        return hall.LockinHallReader(inst, limits, spec.series_resistance)
    return hall.SourceMeterHallReader(inst, limits)


def _close_instrument(inst: Any) -> None:
    try:
        inst.adapter.close()
    except Exception:  # closing is best effort: the connection may already be gone
        log.debug("closing %r failed", inst, exc_info=True)


def _close_bench(bench: Any) -> None:
    try:
        bench.close()
    except Exception:
        log.debug("closing the simulated bench failed", exc_info=True)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


class Station:
    """The live bench: roles by name, limits, sample, and the clock the runner should use."""

    def __init__(self, *, pulse_source: PulseSource, hall_reader: HallReader, limits: Limits,
                 sample: dict, bench: Any = None, instruments: dict[str, Any] | None = None,
                 addresses: dict[str, str] | None = None, spec: StationSpec | None = None,
                 owns_bench: bool = False):
        self.pulse_source = pulse_source
        self.hall_reader = hall_reader
        self.limits = limits
        self.sample = sample
        self.bench = bench
        self.instruments = dict(instruments or {})
        self.addresses = dict(addresses or {})
        self.spec = spec
        self._owns_bench = owns_bench
        self._shut_down = False
        self._closed = False

    @property
    def simulated(self) -> bool:
        return self.bench is not None

    def now(self) -> float:
        """Seconds on the station's clock: virtual on the simulator, monotonic on a real bench."""
        return float(self.bench.clock.now) if self.bench is not None else time.monotonic()

    def wait(self, seconds: float) -> None:
        """Let time pass (retention intervals): advances the virtual clock on the simulator."""
        if seconds <= 0:
            return
        if self.bench is not None:
            self.bench.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def _roles(self) -> list[tuple[str, Any]]:
        roles = [("pulse_source", self.pulse_source)]
        if self.hall_reader is not self.pulse_source:
            roles.append(("hall_reader", self.hall_reader))
        return roles

    def snapshot(self) -> dict:
        """Roles, addresses, *IDN?, settings, limits — JSON-able, for the run file."""
        from labspin.drivers.pulse import query_idn
        instruments = {}
        for name, inst in self.instruments.items():
            entry: dict[str, Any] = {"address": self.addresses.get(name)}
            if self.spec is not None and name in self.spec.instruments:
                entry["driver"] = self.spec.instruments[name].driver
            entry["idn"] = query_idn(inst)          # None (logged) if it does not answer
            instruments[name] = entry
        roles = {}
        for name, role in (("pulse_source", self.pulse_source), ("hall_reader", self.hall_reader)):
            try:
                roles[name] = role.snapshot()
            except Exception as exc:
                roles[name] = {"class": type(role).__name__, "error": f"{type(exc).__name__}: {exc}"}
            roles[name].setdefault("class", type(role).__name__)
        snap = {
            "name": self.spec.name if self.spec is not None else None,
            "simulated": self.simulated,
            "sim": None if self.spec is None or self.spec.sim is None
            else f"{self.spec.sim[0]}:{self.spec.sim[1]}",
            "limits": self.limits.as_dict(),
            "instruments": instruments,
            "roles": roles,
        }
        if self.spec is not None:
            snap["roles"]["hall_reader"].setdefault("mode", self.spec.hall_reader.mode)
        return _jsonable(snap)

    def shutdown(self) -> None:
        """Every role's shutdown (ramp to zero, outputs off). Never raises; safe to call twice."""
        for name, role in self._roles():
            try:
                role.shutdown()
            except BaseException:  # noqa: BLE001 — the one place that must swallow everything
                log.exception("station: %s shutdown failed", name)
        self._shut_down = True

    def close(self) -> None:
        """Shut down (if not done yet) and close every instrument connection.

        A simulated bench that `open()` created is released too (its VISA library registration);
        its state, log and output history stay readable.
        """
        if self._closed:
            return
        if not self._shut_down:
            self.shutdown()
        for inst in self.instruments.values():
            _close_instrument(inst)
        if self._owns_bench:
            _close_bench(self.bench)
        self._closed = True

    def __enter__(self) -> "Station":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- validation -----------------------------------------------------------------------------

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


def _instruments(doc: dict, where: str) -> dict[str, InstrumentSpec]:
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
        if driver not in DRIVER_NAMES:
            got = "missing" if driver is None else f"unknown driver {driver!r}"
            raise UserError(f"{where}: {key}.driver: {got} (one of: {', '.join(DRIVER_NAMES)})")
        if "address" not in inst:
            raise UserError(f"{where}: {key}.address: missing (required)")
        address = check_address(inst["address"], where, f"{key}.address")
        options = inst.get("options", {})
        if not isinstance(options, dict):
            raise UserError(f"{where}: {key}.options: expected a table, got {options!r}")
        out[name] = InstrumentSpec(driver=driver, address=address, options=dict(options))
    seen: dict[str, str] = {}
    for name, ispec in out.items():
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
    pulse = instrument(table["pulse_source"], "roles.pulse_source", PULSE_DRIVERS)
    hall = table.get("hall_reader")
    if hall is None:
        raise UserError(f"{where}: roles.hall_reader: missing (required)")
    if not isinstance(hall, dict):
        raise UserError(f"{where}: roles.hall_reader: expected a table "
                        f"{{mode = ..., instrument = ...}}, got {hall!r}")
    _unknown(hall, HALL_READER_KEYS, where, "roles.hall_reader.")
    mode = hall.get("mode")
    if mode not in HALL_MODES:
        got = "missing" if mode is None else f"unknown mode {mode!r}"
        raise UserError(f"{where}: roles.hall_reader.mode: {got} (one of: {', '.join(HALL_MODES)})")
    if "instrument" not in hall:
        raise UserError(f"{where}: roles.hall_reader.instrument: missing (required)")
    inst = instrument(hall["instrument"], "roles.hall_reader.instrument", HALL_MODES[mode])
    if mode == "pulse_delta" and inst != pulse:
        raise UserError(f"{where}: roles.hall_reader.instrument: mode = \"pulse_delta\" writes and "
                        f"reads with one 6221, so it must be the pulse_source {pulse!r}, not {inst!r}")
    series = hall.get("series_resistance")
    if mode == "lockin":
        if series is None:
            raise UserError(f"{where}: roles.hall_reader.series_resistance: missing "
                            f"(required for mode = \"lockin\", ohm)")
        series = _number(series, where, "roles.hall_reader.series_resistance")
    elif series is not None:
        raise UserError(f"{where}: roles.hall_reader.series_resistance: only used with mode = \"lockin\"")
    return pulse, HallReaderSpec(mode=mode, instrument=inst, series_resistance=series)


def parse_station_spec(text: str, source: str = "<station>", *, path: str | None = None) -> StationSpec:
    """Validate station TOML text; every error names `source` and the key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: invalid TOML: {exc}") from None
    _unknown(doc, TOP_LEVEL_KEYS, source, "")
    name = doc.get("name", Path(path).stem if path else "station")
    description = doc.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise UserError(f"{source}: {key}: expected a string, got {value!r}")
    sample = _sample(doc, source)
    limits = _limits(doc, source)
    instruments = _instruments(doc, source)
    pulse, hall = _roles(doc, source, instruments)
    return StationSpec(name=name, sample=sample, limits=limits, instruments=instruments,
                       pulse_source=pulse, hall_reader=hall, path=path, description=description)


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


def parse_sim_spec(spec: str) -> tuple[str, int]:
    """"tilted" or "tilted:SEED" -> (preset, seed); UserError on a malformed seed."""
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"--sim: expected PRESET or PRESET:SEED, got {spec!r}")
    preset_name, _, seed_text = spec.strip().partition(":")
    seed = 0
    if seed_text:
        try:
            seed = int(seed_text)
        except ValueError:
            raise UserError(f"--sim {spec}: seed must be a non-negative integer, got {seed_text!r}") from None
        if seed < 0:
            raise UserError(f"--sim {spec}: seed must be a non-negative integer, got {seed}")
    return preset_name, seed


SIM_HALL_MODES = ("dc_delta", "pulse_delta")     # what a --sim bench (6221 + 2182A) can read with


def check_hall_mode_use(station_file: str | None, hall_mode: str | None) -> None:
    """`--hall-mode` chooses how the simulated bench reads; a station file names its own mode."""
    if station_file and hall_mode is not None:
        raise UserError("--hall-mode: only with --sim (a station file names its hall_reader mode)")


def check_sim_hall_mode(hall_mode: str) -> None:
    """UserError unless ``hall_mode`` is a Hall-read mode of the simulated bench."""
    if hall_mode not in SIM_HALL_MODES:
        raise UserError(f"--hall-mode: {hall_mode!r} is not a mode of the simulated bench "
                        f"(one of: {', '.join(SIM_HALL_MODES)})")


def sim_station_spec(spec: str, limits: Limits | None = None, *,
                     hall_mode: str = "dc_delta") -> StationSpec:
    """A simulated bench: 6221 (pulse source, Hall reads in `hall_mode`: "dc_delta" or
    "pulse_delta") + 2182A on a `SimBench(preset, seed)`.

    The sample is the preset's device: geometry, R_xx, the full parameter set and the seed
    (what DESIGN §3.3 puts under /entry/sample). No bench is built until `open()`.
    """
    from labspin.sim_backend import physics

    check_sim_hall_mode(hall_mode)
    preset_name, seed = parse_sim_spec(spec)
    params = physics.preset(preset_name)        # UserError on an unknown preset
    p = params.to_dict()
    sample = {
        "id": f"sim-{preset_name}-{seed}",
        "type": preset_name,
        "width": float(p["width"]),
        "thickness": float(p["thickness"]),
        "simulated": True,
        "preset": preset_name,
        "seed": seed,
        "params": p,
    }
    for key in ("length", "R_xx"):
        if key in p:
            sample["r_xx" if key == "R_xx" else key] = float(p[key])
    instruments = {
        "k6221": InstrumentSpec("keithley6221", "GPIB0::12::INSTR"),
        "k2182": InstrumentSpec("keithley2182", "GPIB0::7::INSTR"),
    }
    return StationSpec(name=f"sim:{preset_name}:{seed}", sample=_jsonable(sample),
                       limits=limits if limits is not None else Limits(), instruments=instruments,
                       pulse_source="k6221", hall_reader=HallReaderSpec(hall_mode, "k6221"),
                       description=f"simulated bench, preset {preset_name!r}, seed {seed}",
                       sim=(preset_name, seed))
