"""Hall-reader roles: R_H at a read current, limits checked before any write.

- `DeltaHallReader`: 6221 Delta mode with the attached 2182A (current reversal, so thermal EMFs
  cancel); R_H = V_delta / I.
- `LockinHallReader`: SR830/SR860 sine output driving the channel through a series resistor,
  I_rms = SLVL / series_resistance; R_H = X / I_rms after the output filter has settled.
- `SourceMeterHallReader`: 2400/2450 sources +I and -I and measures V; R_H = (V+ - V-) / 2I.

Settings are sent only when they change (see `labspin.drivers.pulse.set_if_changed`).
"""
from __future__ import annotations

import logging
import math
from typing import Any

from .pulse import (
    Sleep,
    check_compliance,
    clock_sleep,
    forget_settings,
    instrument_address,
    query_idn,
    reraise_with_errors,
    require_2182,
    role_snapshot,
    safely,
    sent_settings,
    set_if_changed,
    shutdown_sourcemeter,
    wait_until,
)
from .roles import HallReader, HallReading, LimitError, Limits

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


def _nonzero(read_current: float) -> float:
    if read_current == 0:
        raise LimitError("read current must be non-zero (R_H = V / I)")
    return float(read_current)


def _floats(reply: str) -> list[float]:
    return [float(v) for v in str(reply).replace(";", ",").split(",") if v.strip()]


# ----- 6221 + 2182A Delta -----------------------------------------------------------------------
class DeltaHallReader(HallReader):
    """6221 Delta mode (current reversal at ±I) read through the 2182A on its RS-232 port.

    `count` Delta readings are averaged per call; `delay` is the Delta delay (s) between a
    current step and the 2182A A/D.
    """

    def __init__(self, k6221: Any, limits: Limits, *, count: int = 1, delay: float = 2e-3,
                 sleep: Sleep | None = None, timeout: float = 10.0) -> None:
        check_compliance(limits, 0.1, 105, "6221")
        if limits.max_read_current > 0.105:
            raise LimitError(f"max_read_current {limits.max_read_current:.4g} A exceeds the 6221's 0.105 A")
        if not (1 <= int(count) <= 65536) or not (1e-3 <= delay <= 9999.999):
            raise LimitError("Delta count must be 1…65536 and delay 1e-3…9999.999 s")
        self.k = k6221
        self.limits = limits
        self.count = int(count)
        self.delay = float(delay)
        self._sleep = sleep or clock_sleep(k6221)
        self._timeout = timeout
        self._idn = query_idn(k6221)
        require_2182(k6221, "delta_connected", "Delta mode")
        self._static_for: dict | None = None

    def _configure(self, amplitude: float) -> None:
        k = self.k
        cache = sent_settings(k)
        if self._static_for is not cache:      # once per cache generation (after shutdown/error)
            for name, value in (("source_compliance", self.limits.compliance_voltage),
                                ("delta_unit", "V"), ("delta_delay", self.delay),
                                ("delta_cycles", self.count), ("delta_measurement_sets", 1),
                                ("delta_compliance_abort_enabled", True),
                                ("format_elements", "READ,TST")):
                set_if_changed(k, name, value, cache)
            if cache.get("buffer_points", 0) < self.count:
                set_if_changed(k, "buffer_points", self.count, cache)
            self._static_for = cache
        set_if_changed(k, "delta_high_source", amplitude, cache)     # the 6221 sets LOW = -HIGH

    def read(self, read_current: float) -> HallReading:
        self.limits.check_read(read_current)
        current = _nonzero(read_current)
        k = self.k
        try:
            self._configure(abs(current))
            k.delta_trigger()               # :TRAC:CLE;:SOUR:DELT:ARM;:INIT:IMM
            data: list[float] = []

            def done() -> bool:
                data[:] = _floats(k.ask(":TRAC:DATA?"))
                return len(data) >= 2 * self.count

            wait_until(done, self._sleep, 3 * self.delay * (self.count + 2), self._timeout,
                       f"{instrument_address(k)}: Delta")
        except Exception as exc:
            forget_settings(k)
            reraise_with_errors(k, exc)
        readings = data[0:2 * self.count:2]           # reading, timestamp, reading, ...
        v = sum(readings) / len(readings)             # Hall voltage at +|I|
        return HallReading(hall_voltage=math.copysign(1.0, current) * v, read_current=current,
                           hall_resistance=v / abs(current))

    def snapshot(self) -> dict:
        return role_snapshot(self, self.k, self._idn,
                             {"mode": "delta", "count": self.count, "delay": self.delay})

    def shutdown(self) -> None:
        forget_settings(self.k)
        safely("shut down the 6221", self.k.shutdown, instrument_address(self.k))


# ----- SR830 / SR860 ----------------------------------------------------------------------------
class LockinHallReader(HallReader):
    """Lock-in sine output through `series_resistance` (ohm) as the read current.

    I_rms = SLVL / series_resistance, so read_current is an rms amplitude. Each read waits
    `settle` output time constants (the Hall voltage changes after every pulse) via `sleep`:
    wall time on a real bench, the virtual clock on the simulator.
    """

    def __init__(self, lockin: Any, limits: Limits, series_resistance: float, *,
                 settle: float = 10.0, sleep: Sleep | None = None) -> None:
        if not (math.isfinite(series_resistance) and series_resistance > 0):
            raise LimitError(f"series_resistance {series_resistance!r} ohm must be positive")
        from pymeasure.instruments.srs import SR830, SR860
        if isinstance(lockin, SR860):
            self.model, self._slvl_range, self._internal = "SR860", (1e-9, 2.0), "INT"
        elif isinstance(lockin, SR830):
            self.model, self._slvl_range, self._internal = "SR830", (0.004, 5.0), "Internal"
        else:
            raise TypeError(f"LockinHallReader needs a pymeasure SR830 or SR860, not {type(lockin).__name__}")
        self.lockin = lockin
        self.limits = limits
        self.series_resistance = float(series_resistance)
        self.settle = float(settle)
        self._sleep = sleep or clock_sleep(lockin)
        self._idn = query_idn(lockin)
        self._tau: float | None = None

    def sine_voltage_for(self, read_current: float) -> float:
        """SLVL (V rms) for a read current (A rms); LimitError outside the lock-in's range."""
        v = abs(read_current) * self.series_resistance
        lo, hi = self._slvl_range
        if not (lo <= v <= hi):
            raise LimitError(
                f"read current {read_current:.4g} A needs SLVL {v:.4g} V through "
                f"{self.series_resistance:g} ohm, outside the {self.model} range [{lo:g}, {hi:g}] V")
        return round(v, 9)

    def read(self, read_current: float) -> HallReading:
        self.limits.check_read(read_current)
        current = _nonzero(read_current)
        slvl = self.sine_voltage_for(current)
        li = self.lockin
        try:
            set_if_changed(li, "reference_source", self._internal)
            set_if_changed(li, "sine_voltage", slvl)
            if self._tau is None:
                self._tau = float(li.time_constant)
            self._sleep(self.settle * self._tau)
            x, _y = li.snap()[:2]
        except Exception as exc:
            forget_settings(li)
            self._tau = None
            reraise_with_errors(li, exc)
        i_rms = slvl / self.series_resistance
        return HallReading(hall_voltage=math.copysign(1.0, current) * x, read_current=current,
                           hall_resistance=x / i_rms)

    def snapshot(self) -> dict:
        return role_snapshot(self, self.lockin, self._idn,
                             {"mode": "lock-in", "series_resistance": self.series_resistance,
                              "settle_time_constants": self.settle, "time_constant": self._tau})

    def shutdown(self) -> None:
        """Sine output to its minimum (a lock-in's sine cannot be switched off)."""
        li = self.lockin
        forget_settings(li)
        self._tau = None
        safely("set the sine output to its minimum",
               lambda: setattr(li, "sine_voltage", self._slvl_range[0]), instrument_address(li))


# ----- 2400 / 2450 ------------------------------------------------------------------------------
class SourceMeterHallReader(HallReader):
    """Source +I then -I on a 2400/2450 and measure V: R_H = (V+ - V-) / 2I (offsets cancel)."""

    def __init__(self, smu: Any, limits: Limits, *, nplc: float = 1.0) -> None:
        check_compliance(limits, 0.0, 210.0, "2400/2450")
        if not (0.01 <= nplc <= 10):
            raise LimitError(f"nplc {nplc!r} outside [0.01, 10]")
        self.smu = smu
        self.limits = limits
        self.nplc = float(nplc)
        self._idn = query_idn(smu)

    def _configure(self) -> None:
        smu = self.smu
        set_if_changed(smu, "source_mode", "current")
        set_if_changed(smu, "compliance_voltage", self.limits.compliance_voltage)
        set_if_changed(smu, "source_current_range", self.limits.max_read_current)
        set_if_changed(smu, "voltage_nplc", self.nplc)
        cache = sent_settings(smu)
        if cache.get("_sense_function") != "VOLT":
            smu.write(':SENS:FUNC "VOLT"')
            cache["_sense_function"] = "VOLT"

    def _voltage(self) -> float:
        values = _floats(self.smu.ask(":READ?"))
        return values[0]        # 2400: V,I,R,TIME,STATUS; 2450: the one reading

    def read(self, read_current: float) -> HallReading:
        self.limits.check_read(read_current)
        current = _nonzero(read_current)
        smu = self.smu
        try:
            self._configure()
            smu.source_current = current
            smu.enable_source()
            try:
                v_plus = self._voltage()
                smu.source_current = -current
                v_minus = self._voltage()
            finally:
                smu.disable_source()
                sent_settings(smu)["source_current"] = -current   # what the SMU now holds
        except Exception as exc:
            forget_settings(smu)
            reraise_with_errors(smu, exc)
        v = (v_plus - v_minus) / 2
        return HallReading(hall_voltage=v, read_current=current, hall_resistance=v / current)

    def snapshot(self) -> dict:
        return role_snapshot(self, self.smu, self._idn, {"mode": "source-I measure-V, ±I"})

    def shutdown(self) -> None:
        shutdown_sourcemeter(self.smu)
