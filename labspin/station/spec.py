"""What a station is, validated and inert: instruments, roles, sample, limits, simulator settings.

Nothing here touches an instrument; `StationSpec.open()` hands over to `labspin.station.factory`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labspin.drivers.roles import Limits

SIM_ADDRESS = "sim"          # `address = "sim"`: the entry's default address on the simulated bench


@dataclass(frozen=True)
class InstrumentSpec:
    driver: str                          # a labspin.drivers.registry entry name
    address: str                         # VISA resource name, or "sim"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class HallReaderSpec:
    mode: str                            # a registered Hall-read mode ("dc_delta", "lockin", ...)
    instrument: str                      # a key of StationSpec.instruments
    series_resistance: float | None = None   # ohm, lock-in only
    options: dict = field(default_factory=dict)   # the mode's options (keywords of its role class)

    def __post_init__(self) -> None:
        if self.series_resistance is not None and "series_resistance" not in self.options:
            object.__setattr__(self, "options", {**self.options,
                                                 "series_resistance": self.series_resistance})
        elif self.series_resistance is None and "series_resistance" in self.options:
            object.__setattr__(self, "series_resistance", float(self.options["series_resistance"]))


@dataclass(frozen=True)
class Fault:
    """A fault the simulated bench injects (SimBench.inject_fault)."""

    instrument: str                      # a key of StationSpec.instruments
    kind: str                            # "timeout" | "error" | "disconnect" | "compliance"
    after: int = 0
    count: int = 1


@dataclass(frozen=True)
class SimulatorSpec:
    """The `[simulator]` table: the simulated device and bench settings."""

    preset: str
    seed: int = 0
    line_frequency: float = 50.0         # Hz
    faults: tuple[Fault, ...] = ()

    @property
    def device(self) -> str:
        return f"{self.preset}:{self.seed}"


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
    simulator: SimulatorSpec | None = None

    @property
    def sim(self) -> tuple[str, int] | None:
        """(preset, seed) of the simulated bench, None for a real one."""
        return None if self.simulator is None else (self.simulator.preset, self.simulator.seed)

    @property
    def simulated(self) -> bool:
        return self.simulator is not None

    def as_dict(self) -> dict:
        """JSON-able description (no instrument is touched)."""
        return {
            "name": self.name, "path": self.path, "description": self.description,
            "simulated": self.simulated,
            "sim": None if self.simulator is None else self.simulator.device,
            "limits": self.limits.as_dict(),
            "instruments": {k: {"driver": v.driver, "address": v.address, "options": dict(v.options)}
                            for k, v in self.instruments.items()},
            "roles": {"pulse_source": self.pulse_source,
                      "hall_reader": {"mode": self.hall_reader.mode,
                                      "instrument": self.hall_reader.instrument,
                                      "series_resistance": self.hall_reader.series_resistance}},
        }

    def open(self, visa_library: Any = None, *, bench: Any = None, bus_log: Any = None,
             preflight: bool = False) -> "Station":  # noqa: F821
        """Open the instruments and build the roles (`labspin.station.factory.open_station`)."""
        from labspin.station.factory import open_station
        return open_station(self, visa_library, bench=bench, bus_log=bus_log, preflight=preflight)
