"""Hall-reader roles: R_H at a read current, limits checked before any write.

- `DeltaHallReader`: 6221 Delta mode with the attached 2182A (current reversal, so thermal EMFs
  cancel); R_H = V_delta / I.
- `LockinHallReader`: SR830/SR860 sine output driving the channel through a series resistor,
  I_rms = SLVL / series_resistance; R_H = X / I_rms after the output filter has settled.
- `SourceMeterHallReader`: 2400/2450 sources +I and -I and measures V; R_H = (V+ - V-) / 2I.
- `PulseDeltaHallReader`: a read is one low-amplitude 6221 Pulse Delta pulse at the read current
  (reading (2B - A - C)/2, so thermal EMFs cancel as in Delta); R_H = reading / I. Its
  `run_block(steps)` runs many steps' write and read pulses as ONE hardware-timed list sweep.

Settings are sent only when they change (see `labspin.drivers.pulse.set_if_changed`).
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .pulse import (
    K6221Role,
    Sleep,
    check_6221_limits,
    check_compliance,
    clock_sleep,
    forget_settings,
    instrument_address,
    query_idn,
    reraise_with_errors,
    role_snapshot,
    raise_if_compliance,
    reraise_checking_compliance,
    safely,
    sent_settings,
    set_if_changed,
    set_pulse_width,
    shutdown_sourcemeter,
    wait_until,
)
from .keithley6221 import DELAY_RANGE
from .roles import HallReader, HallReading, LimitError, Limits, pulse_delta_read_width

if TYPE_CHECKING:  # pragma: no cover
    from labspin.protocols import Step

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


def _nonzero(read_current: float) -> float:
    if read_current == 0:
        raise LimitError("read current must be non-zero (R_H = V / I)")
    return float(read_current)


def _floats(reply: str) -> list[float]:
    return [float(v) for v in str(reply).replace(";", ",").split(",") if v.strip()]


# ----- 6221 + 2182A Delta -----------------------------------------------------------------------
class DeltaHallReader(K6221Role, HallReader):
    """6221 Delta mode (current reversal at ±I) read through the 2182A on its RS-232 port.

    `count` Delta readings are averaged per call; `delay` is the Delta delay (s) between a
    current step and the 2182A A/D.
    """

    def __init__(self, k6221: Any, limits: Limits, *, count: int = 1, delay: float = 2e-3,
                 sleep: Sleep | None = None, timeout: float = 10.0) -> None:
        check_6221_limits(limits, "max_read_current")
        if not (1 <= int(count) <= 65536) or not (1e-3 <= delay <= 9999.999):
            raise LimitError("Delta count must be 1…65536 and delay 1e-3…9999.999 s")
        self.count = int(count)
        self.delay = float(delay)
        super().__init__(k6221, limits, sleep=sleep, timeout=timeout, link="delta_connected",
                         mode="Delta mode")

    def _fixed_settings(self, cache: dict) -> Iterable[tuple[str, Any]]:
        yield from (("source_compliance", self.limits.compliance_voltage),
                    ("delta_unit", "V"), ("delta_delay", self.delay),
                    ("delta_cycles", self.count), ("delta_measurement_sets", 1),
                    ("delta_compliance_abort_enabled", True),
                    ("format_elements", "READ,TST"))
        if cache.get("buffer_points", 0) < self.count:
            yield "buffer_points", self.count

    def _configure(self, amplitude: float) -> None:
        cache = sent_settings(self.k)
        self._send_fixed(cache)
        set_if_changed(self.k, "delta_high_source", amplitude, cache)     # the 6221 sets LOW = -HIGH

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
        except Exception as exc:             # Delta aborts on compliance (CAB ON): say so
            forget_settings(k)
            reraise_checking_compliance(k, exc, f"a Delta read at {read_current:g} A", self.limits)
        readings = data[0:2 * self.count:2]           # reading, timestamp, reading, ...
        v = sum(readings) / len(readings)             # Hall voltage at +|I|
        return HallReading(hall_voltage=math.copysign(1.0, current) * v, read_current=current,
                           hall_resistance=v / abs(current))

    def snapshot(self) -> dict:
        return role_snapshot(self, self.k, self._idn,
                             {"mode": "delta", "count": self.count, "delay": self.delay})


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


# ----- 6221 + 2182A Pulse Delta reads, and blocks of steps as one list sweep --------------------
MAX_BLOCK_POINTS = 65536                           # the 6221 buffer holds one reading per pulse


class PulseDeltaHallReader(K6221Role, HallReader):
    """Hall reads as 6221 Pulse Delta pulses; blocks of steps as one hardware-timed list sweep.

    The 6221 is the station's pulse source too. `read(I)` sends one pulse of `read_width` at I on
    a 0 A low level and takes its Pulse Delta reading (2B - A - C)/2 = I·R_H (thermal EMF
    cancels). `run_block(steps)` loads the list [write, read, write, read, ...] (a step without a
    write pulse contributes only its read) into `SOUR:LIST:CURR` with one cycle time per point
    in `SOUR:LIST:DEL`, all at the steps' common pulse width, arms sweep output, starts, waits,
    and fetches the buffer once: one reading per pulse, the read entries returned. Each cycle is
    max(`cycle_time`, 2 × width) long, so the duty cycle stays <= 50 %.
    """

    def __init__(self, k6221: Any, limits: Limits, *, cycle_time: float = 5e-3,
                 read_width: float | None = None, sleep: Sleep | None = None,
                 timeout: float = 10.0) -> None:
        check_6221_limits(limits, "max_pulse_current", "max_read_current", pulse_delta=True)
        if not (DELAY_RANGE[0] <= cycle_time <= DELAY_RANGE[1]):
            raise LimitError(f"cycle_time {cycle_time!r} s outside the 6221 list delay range "
                             f"{DELAY_RANGE} s")
        self.cycle_time = float(cycle_time)
        self.read_width = pulse_delta_read_width(limits) if read_width is None else float(read_width)
        limits.check_pulse(0.0, self.read_width)        # LimitError if outside the width limits
        super().__init__(k6221, limits, sleep=sleep, timeout=timeout, link="pulse_delta_connected",
                         mode="Pulse Delta")

    def cycle_for(self, width: float) -> float:
        """Cycle time (s) of every list point at this pulse width."""
        return max(self.cycle_time, 2.0 * width)

    def read(self, read_current: float) -> HallReading:
        self.limits.check_read(read_current)
        current = _nonzero(read_current)
        return self._sweep([current], [True], self.read_width)[0]

    def run_block(self, steps: Sequence["Step"]) -> list[HallReading]:
        """One list sweep for `steps` (no waits; one pulse width); one HallReading per step.

        Every current and width is checked against the limits before anything is sent
        (LimitError, nothing written). The readings carry the instrument's timestamps.
        """
        if not steps:
            return []
        widths = {float(s.pulse_width) for s in steps if s.pulse_current != 0.0}
        if len(widths) > 1:
            raise ValueError(f"run_block: steps must share one pulse width, got {sorted(widths)}")
        if any(s.wait > 0 for s in steps):
            raise ValueError("run_block: a step with a wait cannot be part of a list sweep")
        width = widths.pop() if widths else self.read_width
        limits = self.limits
        limits.check_pulse(0.0, width)                  # the read pulses have this width too
        currents: list[float] = []
        reads: list[bool] = []
        for s in steps:
            if s.pulse_current != 0.0:
                limits.check_pulse(s.pulse_current, width)
                currents.append(float(s.pulse_current))
                reads.append(False)
            limits.check_read(s.read_current)
            currents.append(_nonzero(s.read_current))
            reads.append(True)
        if len(currents) > MAX_BLOCK_POINTS:
            raise ValueError(f"run_block: {len(currents)} pulses exceed the 6221 buffer ({MAX_BLOCK_POINTS})")
        return self._sweep(currents, reads, width)

    def burst(self, current: float, width: float, n: int) -> None:
        """`n` write pulses alternating in sign, the last at `current` (an endurance burst), as
        list sweeps of at most MAX_BLOCK_POINTS pulses without reads (`run_block`'s mechanism;
        every full chunk is the same list, so it is sent once)."""
        self.limits.check_pulse(current, width)
        self.limits.check_pulse(-current, width)
        n = int(n)
        while n > 0:
            m = min(n, MAX_BLOCK_POINTS)           # even: every full chunk has the same phase
            last = 1.0 if (n - m) % 2 == 0 else -1.0          # sign of this chunk's last pulse
            self._sweep([last * current * (1.0 if (m - 1 - j) % 2 == 0 else -1.0) for j in range(m)],
                        [False] * m, width)
            n -= m

    def _fixed_settings(self, cache: dict) -> Iterable[tuple[str, Any]]:
        return (("source_compliance", self.limits.compliance_voltage),
                ("delta_unit", "V"), ("pulse_delta_low", 0.0),
                ("pulse_delta_low_measurements", 2), ("sweep_spacing", "list"),
                ("sweep_ranging", "best"), ("sweep_count", 1),
                ("format_elements", "READ,TST"))

    def _configure(self, currents: list[float], width: float, cycle: float) -> None:
        k = self.k
        cache = sent_settings(k)
        self._send_fixed(cache)
        # per call: the fixed-output pulse source on this 6221 turns sweep output off
        set_if_changed(k, "pulse_delta_sweep", True, cache)
        set_pulse_width(k, width, cache)
        n = len(currents)
        if cache.get("buffer_points", 0) < n:
            set_if_changed(k, "buffer_points", n, cache)
        # the lists are sent only when they change (every full staircase cycle is the same list)
        lists = (tuple(currents), (cycle,) * n)
        if cache.get("_sweep_lists") != lists:
            cache.pop("_sweep_lists", None)
            k.set_sweep_list(*lists)
            cache["_sweep_lists"] = lists

    def _sweep(self, currents: list[float], reads: list[bool], width: float) -> list[HallReading]:
        k = self.k
        n = len(currents)
        cycle = self.cycle_for(width)
        what = f"a Pulse Delta list sweep of {n} pulses (peak {max(map(abs, currents)):g} A)"
        try:
            self._configure(currents, width, cycle)
            k.pulse_delta_trigger()             # :TRAC:CLE;:SOUR:PDEL:ARM;:INIT:IMM
            wait_until(lambda: k.trace_points_actual >= n, self._sleep, n * cycle,
                       self._timeout + n * cycle, f"{instrument_address(k)}: Pulse Delta sweep")
            data = k.trace_data
            data = data if isinstance(data, list) else [data]
            if len(data) < 2 * n:
                raise RuntimeError(f"{instrument_address(k)}: Pulse Delta sweep returned "
                                   f"{len(data) // 2} of {n} readings")
            raise_if_compliance(k, what, self.limits)
        except Exception as exc:
            forget_settings(k)
            reraise_checking_compliance(k, exc, what, self.limits)
        out = []
        for j, (current, is_read) in enumerate(zip(currents, reads)):
            if is_read:
                v = float(data[2 * j])
                out.append(HallReading(hall_voltage=v, read_current=current,
                                       hall_resistance=v / current, timestamp=float(data[2 * j + 1])))
        return out

    def snapshot(self) -> dict:
        return role_snapshot(self, self.k, self._idn,
                             {"mode": "pulse_delta", "cycle_time": self.cycle_time,
                              "read_width": self.read_width,
                              "timing": "hardware (Pulse Delta list sweep per block)"})
