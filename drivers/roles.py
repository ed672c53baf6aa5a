"""Role interfaces: what the runner needs from a bench, independent of instrument models.

A *pulse source* writes rectangular current pulses; a *Hall reader* returns R_H at a read
current. Implementations wrap pymeasure instrument classes (see the sibling modules).
Limits are checked here, before any instrument write, so an over-limit request never
reaches the wire.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass


class LimitError(ValueError):
    """A requested current or width is outside the station's limits; nothing was sent."""


class ComplianceError(RuntimeError):
    """The source hit its compliance voltage: the current asked for did not flow."""


@dataclass(frozen=True)
class Limits:
    """Per-device safety limits (SI units), checked before any write."""

    max_pulse_current: float = 0.02
    max_read_current: float = 1e-3
    compliance_voltage: float = 10.0
    min_pulse_width: float = 50e-6
    max_pulse_width: float = 12e-3
    # a SourceMeter pulse is timed by the host (OUTP ON, wait, OUTP OFF over the bus): each
    # message adds milliseconds, so shorter widths would not be what flows
    min_smu_pulse_width: float = 5e-3

    def check_pulse(self, amplitude: float, width: float) -> None:
        if not math.isfinite(amplitude) or abs(amplitude) > self.max_pulse_current:
            raise LimitError(
                f"pulse current {amplitude:.4g} A exceeds max_pulse_current {self.max_pulse_current:.4g} A")
        if not (self.min_pulse_width <= width <= self.max_pulse_width):
            raise LimitError(
                f"pulse width {width:.4g} s outside [{self.min_pulse_width:.4g}, {self.max_pulse_width:.4g}] s")

    def check_read(self, current: float) -> None:
        if not math.isfinite(current) or abs(current) > self.max_read_current:
            raise LimitError(
                f"read current {current:.4g} A exceeds max_read_current {self.max_read_current:.4g} A")

    def as_dict(self) -> dict:
        return asdict(self)


PDEL_READ_WIDTH = 110e-6   # s, a lone Pulse Delta read pulse (the 6221's PDEL:WIDT default)


def pulse_delta_read_width(limits: Limits) -> float:
    """Width of a Pulse Delta read pulse that is not part of a block (a block reads at its write
    width): 110 µs, moved inside the station's width limits if they exclude it — our choice of
    width, not a clipped request. Here (not in hall.py) so the dry-run imports no driver."""
    return float(min(max(PDEL_READ_WIDTH, limits.min_pulse_width), limits.max_pulse_width))


@dataclass(frozen=True)
class HallReading:
    hall_voltage: float      # V
    read_current: float      # A
    hall_resistance: float   # ohm
    timestamp: float | None = None   # s, the instrument's buffer time stamp (block reads only)


class Role(ABC):
    """Common life cycle: identify, snapshot for the run file, and a shutdown that never raises."""

    @abstractmethod
    def snapshot(self) -> dict:
        """JSON-able description: driver, address, *IDN?, settings, limits."""

    @abstractmethod
    def shutdown(self) -> None:
        """Abort armed sweeps, ramp to zero, output off. Idempotent; must not raise."""


class PulseSource(Role):
    limits: Limits

    @abstractmethod
    def pulse(self, amplitude: float, width: float) -> float | None:
        """One rectangular write pulse (A, s), hardware-timed where the instrument can.

        Returns the width that really flowed where the role can measure it (a software-timed
        pulse: the time between its output-on and output-off messages), else None."""

    @property
    @abstractmethod
    def output_enabled(self) -> bool:
        """Whether the source output is on now (for the status bar)."""


class HallReader(Role):
    limits: Limits

    @abstractmethod
    def read(self, read_current: float) -> HallReading:
        """Measure the Hall voltage at read_current and return R_H."""
