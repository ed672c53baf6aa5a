"""The instrument registry: one entry per instrument model, the one place a new instrument is added.

An entry says everything the rest of labspin needs to know about a model: its pymeasure driver
class, what its ``*IDN?`` must contain, which roles it can play (pulse source; Hall-read modes)
and the role classes that play them, what it can physically do (its own limits), its simulated
model and default address on the simulated bench, and its pre-flight check. Classes are named as
``"module:attribute"`` strings and imported on first use, so reading the registry (station-file
validation, the dry run) imports no driver, no pymeasure and no simulator.

Adding an instrument = its driver (+ its simulated model) + one ``register(InstrumentEntry(...))``;
``docs/internals.md`` §3 has a worked example.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from labspin.plugins import resolve     # "module:attribute" -> the attribute; registry.resolve too


@dataclass(frozen=True)
class Mode:
    """A Hall-read mode: the role class that plays it and what the station file must give it."""

    role: str                                  # "module:Class" of a drivers.roles.HallReader
    reads: str                                 # one line for the dry-run summary
    overhead: float                            # s per point beyond widths and waits (dry-run estimate)
    options: tuple[str, ...] = ()              # required roles.hall_reader keys (numbers > 0), passed
                                               # to the role class as keywords
    settings: tuple[tuple[str, str], ...] = ()  # optional keys (name, "positive" | "number" | "bool"),
                                               # passed as keywords when given (else the role's default)
    with_pulse_source: bool = False            # the reader must be the pulse-source instrument itself


@dataclass(frozen=True)
class Capabilities:
    """What the instrument can do at all; station limits beyond it are refused when the file is read."""

    max_current: float | None                  # A, output range (both polarities); None: not a source
    max_voltage: float                         # V, the highest compliance (lock-ins: sine out, rms)
    min_pulse_width: float | None = None       # s, hardware-timed pulses (None: software-timed / n.a.)
    max_pulse_width: float | None = None


@dataclass(frozen=True)
class InstrumentEntry:
    """One instrument model. ``name`` is what a station file writes as ``driver = ...``."""

    name: str
    driver: str | type                         # "module:Class" (or the class), a pymeasure Instrument
    idn_models: tuple[str, ...]                # one of these must be in *IDN? (compatible siblings too)
    pulse_source: str | None = None            # "module:Class" of its drivers.roles.PulseSource, if any
    modes: Mapping[str, Mode] = field(default_factory=dict)   # Hall-read modes it can play
    capabilities: Capabilities | None = None
    sim_model: str | None = None               # "module:Class" of its simulated instrument
    sim_address: str | None = None             # where the simulated bench serves it by default
    check: str | None = None                   # "module:function" pre-flight, see drivers.checks
    links: tuple[str, ...] = ()                # models it talks to through its own port (the 2182A on
                                               # the 6221's RS-232): never opened on a bus of their own

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", MappingProxyType(dict(self.modes)))

    def driver_class(self) -> type:
        return resolve(self.driver)

    def sim_class(self) -> type:
        if self.sim_model is None:
            raise LookupError(f"{self.name}: no simulated model")
        return resolve(self.sim_model)

    def check_function(self) -> Callable | None:
        return None if self.check is None else resolve(self.check)


_ENTRIES: dict[str, InstrumentEntry] = {}


def register(entry: InstrumentEntry, *, replace: bool = False) -> InstrumentEntry:
    """Add an instrument model; a name already taken is refused unless ``replace``."""
    if entry.name in _ENTRIES and not replace:
        raise ValueError(f"instrument {entry.name!r} is already registered")
    for mode_name, mode in entry.modes.items():
        known = hall_mode(mode_name, None)
        if known is not None and known.with_pulse_source != mode.with_pulse_source:
            raise ValueError(f"mode {mode_name!r}: disagrees with its other registrations")
    _ENTRIES[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove an entry (tests that register a toy instrument clean up with this)."""
    _ENTRIES.pop(name, None)


def entries() -> Mapping[str, InstrumentEntry]:
    """name -> entry, in registration order (read-only view)."""
    return MappingProxyType(_ENTRIES)


def entry(name: str) -> InstrumentEntry:
    return _ENTRIES[name]


def pulse_sources() -> tuple[str, ...]:
    """Models that can play the pulse source."""
    return tuple(n for n, e in _ENTRIES.items() if e.pulse_source)


def hall_modes() -> dict[str, tuple[str, ...]]:
    """mode -> models that can read in it."""
    out: dict[str, list[str]] = {}
    for name, e in _ENTRIES.items():
        for mode in e.modes:
            out.setdefault(mode, []).append(name)
    return {k: tuple(v) for k, v in out.items()}


_MISSING = object()


def hall_mode(name: str, default: Any = _MISSING) -> Mode:
    """The Mode registered under ``name`` (the first model's; all agree on what matters)."""
    for e in _ENTRIES.values():
        if name in e.modes:
            return e.modes[name]
    if default is _MISSING:
        raise KeyError(name)
    return default


# --- the shipped instruments ------------------------------------------------------------------

_HALL = "labspin.drivers.hall"
_PULSE = "labspin.drivers.pulse"
_SIM = "labspin.sim_backend.instruments"
_CHECKS = "labspin.drivers.checks"

_NVM = (("nvm_range", "positive"), ("nvm_nplc", "positive"))     # the 2182A, over the 6221's link
DC_DELTA = Mode(f"{_HALL}:DeltaHallReader",
                "6221/2182A Delta at ±I_read, one read per point", 0.1,
                settings=(("count", "positive"), ("delay", "positive"), *_NVM))
# two hardware-timed list-sweep cycles (write + read) of the reader's default 5 ms per point
PULSE_DELTA = Mode(f"{_HALL}:PulseDeltaHallReader",
                   "6221 Pulse Delta read pulses at the write width; runs of steps as one "
                   "hardware-timed list sweep", 0.01, with_pulse_source=True,
                   settings=(("cycle_time", "positive"), ("read_width", "positive"), *_NVM))
LOCKIN = Mode(f"{_HALL}:LockinHallReader", "lock-in sine out through series_resistance", 0.3,
              options=("series_resistance",),
              settings=(("time_constant", "positive"), ("settle", "positive"),
                        ("phase", "number"), ("differential", "bool")))
SOURCEMETER = Mode(f"{_HALL}:SourceMeterHallReader", "SourceMeter ±I, measure V", 0.05,
                   settings=(("nplc", "positive"),))

register(InstrumentEntry(
    name="keithley6221", driver="labspin.drivers.keithley6221:Keithley6221", idn_models=("6221",),
    pulse_source=f"{_PULSE}:K6221PulseSource",
    modes={"dc_delta": DC_DELTA, "pulse_delta": PULSE_DELTA},
    # ±105 mA, compliance 0.1–105 V, Pulse Delta width 50 µs–12 ms (6221 UM 5-28)
    capabilities=Capabilities(0.105, 105.0, 50e-6, 12e-3),
    sim_model=f"{_SIM}.keithley6221:Keithley6221", sim_address="GPIB0::12::INSTR",
    check=f"{_CHECKS}:check_6221",
    # Pulse Delta and Delta both need the 2182A on the 6221's RS-232 port: the PC talks only to
    # the 6221 (scpi.md §2.8), and the 2182A takes commands from one interface at a time
    # (2182A UM §11 "Selecting and configuring an interface")
    links=("keithley2182",)))
register(InstrumentEntry(
    name="keithley2182", driver="labspin.drivers.keithley2182:Keithley2182", idn_models=("2182",),
    sim_model=f"{_SIM}.keithley2182:Keithley2182", sim_address="GPIB0::7::INSTR",
    check=f"{_CHECKS}:check_2182"))
register(InstrumentEntry(
    name="sr830", driver="labspin.drivers.plain_access:SR830", idn_models=("SR830", "SR810"),
    modes={"lockin": LOCKIN},
    capabilities=Capabilities(None, 5.0),              # sine out 4 mV–5 V rms
    sim_model=f"{_SIM}.sr830:SR830", sim_address="GPIB0::8::INSTR",
    check=f"{_CHECKS}:check_sr830"))
register(InstrumentEntry(
    name="sr860", driver="labspin.drivers.plain_access:SR860", idn_models=("SR860", "SR865"),
    modes={"lockin": LOCKIN},
    capabilities=Capabilities(None, 2.0),              # sine out 1 nV–2 V rms
    sim_model=f"{_SIM}.sr860:SR860", sim_address="GPIB0::9::INSTR",
    check=f"{_CHECKS}:check_sr860"))
register(InstrumentEntry(
    name="keithley2400", driver="labspin.drivers.plain_access:Keithley2400",
    idn_models=("MODEL 240", "MODEL 241", "MODEL 242", "MODEL 243"),
    pulse_source=f"{_PULSE}:SourceMeterPulseSource", modes={"sourcemeter": SOURCEMETER},
    capabilities=Capabilities(1.05, 210.0),            # 2400: ±1.05 A, ±210 V
    sim_model=f"{_SIM}.keithley2400:Keithley2400", sim_address="GPIB0::24::INSTR",
    check=f"{_CHECKS}:check_2400"))
register(InstrumentEntry(
    name="keithley2450", driver="labspin.drivers.plain_access:Keithley2450",
    idn_models=("MODEL 245", "MODEL 246"),
    pulse_source=f"{_PULSE}:SourceMeterPulseSource", modes={"sourcemeter": SOURCEMETER},
    capabilities=Capabilities(1.05, 210.0),            # 2450: ±1.05 A, ±210 V
    sim_model=f"{_SIM}.keithley2450:Keithley2450", sim_address="GPIB0::18::INSTR",
    check=f"{_CHECKS}:check_2450"))
