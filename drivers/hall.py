"""Hall-reader roles: R_H at a read current, limits checked before any write.

- `DeltaHallReader`: 6221 Delta mode with the attached 2182A (current reversal, so thermal EMFs
  cancel); R_H = V_delta / I.
- `LockinHallReader`: SR830/SR860 sine output driving the channel through a series resistor,
  I_rms = SLVL / series_resistance; R_H = X / I_rms after the output filter has settled.
- `SourceMeterHallReader`: 2400/2450 sources +I and -I and measures V; R_H = (V+ - V-) / 2I.
- `PulseDeltaHallReader`: a read is one low-amplitude 6221 Pulse Delta pulse at the read current
  (reading (2B - A - C)/2, so thermal EMFs cancel as in Delta); R_H = reading / I. Its
  `run_block(steps)` runs many steps' write and read pulses as ONE hardware-timed list sweep.

Settings are sent only when they change (see `labspin.drivers.common.set_if_changed`); what the
6221 readers share with the 6221 pulse source is `labspin.drivers.k6221_role`.
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .common import (
    Sleep,
    check_compliance,
    clock_sleep,
    forget_settings,
    instrument_address,
    query_idn,
    reraise_with_errors,
    role_snapshot,
    safely,
    sent_settings,
    set_if_changed,
)
from .k6221_role import (
    COMPLIANCE_BIT,
    PDEL_MIN_CYCLE,
    SLOWEST_LINE_PERIOD,
    K6221Role,
    check_6221_limits,
    reraise_checking_compliance,
    set_pulse_width,
)
from .keithley6221 import DELAY_RANGE
from .roles import ComplianceError, HallReader, HallReading, LimitError, Limits, pulse_delta_read_width
from .smu import SourceMeterModel, shutdown_sourcemeter, source_current_setup

if TYPE_CHECKING:  # pragma: no cover
    from labspin.protocols import Step

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


def _nonzero(read_current: float) -> float:
    if read_current == 0:
        raise LimitError("read current must be non-zero (R_H = V / I)")
    return float(read_current)


# ----- 6221 + 2182A Delta -----------------------------------------------------------------------
class DeltaHallReader(K6221Role, HallReader):
    """6221 Delta mode (current reversal at ±I) read through the 2182A on its RS-232 port.

    `count` Delta readings are averaged per call; `delay` is the Delta delay (s) between a
    current step and the 2182A A/D. A read takes count + 2 A/Ds (the first reading needs three),
    each `delay` + the 2182A's NPLC line cycles (UM 5-14): at 5 PLC, 50 Hz, about 0.3 s for one.
    """

    def __init__(self, k6221: Any, limits: Limits, *, count: int = 1, delay: float = 2e-3,
                 sleep: Sleep | None = None, timeout: float = 10.0, **nvm: float) -> None:
        check_6221_limits(limits, "max_read_current")
        if not (1 <= int(count) <= 65536) or not (1e-3 <= delay <= 9999.999):
            raise LimitError("Delta count must be 1…65536 and delay 1e-3…9999.999 s")
        self.count = int(count)
        self.delay = float(delay)
        super().__init__(k6221, limits, sleep=sleep, timeout=timeout, link="delta_connected",
                         mode="Delta mode", **nvm)

    def read_time(self) -> float:
        """Seconds one read's Delta run takes on a real bench (50 Hz, the longer line period)."""
        return (self.count + 2) * (self.delay + self.nvm_nplc * SLOWEST_LINE_PERIOD)

    def _fixed_settings(self, cache: dict) -> Iterable[tuple[str, Any]]:
        yield ("source_compliance", self.limits.compliance_voltage)
        if "_sweep_lists" not in cache:        # no stale compliance list (a reader loads its own)
            yield "sweep_list_compliances", [self.limits.compliance_voltage]
        yield from (("delta_unit", "V"), ("delta_delay", self.delay),
                    ("delta_cycles", self.count), ("delta_measurement_sets", 1),
                    ("delta_compliance_abort_enabled", True),
                    ("format_elements", "READ,TST"))
        if cache.get("buffer_points", 0) < self.count:
            yield "buffer_points", self.count

    def _configure(self, amplitude: float) -> dict:
        cache = sent_settings(self.k)
        self._send_fixed(cache)
        self._set("delta_high_source", amplitude, cache)     # the 6221 sets LOW = -HIGH
        return cache

    def read(self, read_current: float) -> HallReading:
        self.limits.check_read(read_current)
        current = _nonzero(read_current)
        k = self.k
        try:
            cache = self._configure(abs(current))
            # TRAC:DATA? on an empty buffer is error -230 and no reply (a VISA timeout): poll the
            # count first, as the Pulse Delta roles do
            self._run("DELT", cache, self.count, self.read_time(), f"{self._where}: Delta")
            data = k.delta_values                # :TRAC:DATA? (pymeasure)
            data = data if isinstance(data, list) else [data]
        except Exception as exc:             # Delta aborts on compliance (CAB ON): say so
            reraise_checking_compliance(k, exc, f"a Delta read at {read_current:g} A", self.limits)
        readings = data[0:2 * self.count:2]           # reading, timestamp, reading, ...
        v = sum(readings) / len(readings)             # Hall voltage at +|I|
        return HallReading(hall_voltage=math.copysign(1.0, current) * v, read_current=current,
                           hall_resistance=v / abs(current))

    def snapshot(self) -> dict:
        return role_snapshot(self, self.k, self._idn,
                             {"mode": "delta", "count": self.count, "delay": self.delay})


# ----- SR830 / SR860 ----------------------------------------------------------------------------
def _slvl_sr830(v: float) -> float:
    """SR830 SLVL is set in 2 mV steps ("rounded to 0.002 V", SR830 manual, SLVL)."""
    return round(math.floor(v / 0.002 + 0.5) * 0.002, 3)


def _slvl_sr860(v: float) -> float:
    """SR860 SLVL: 3 significant digits, at least 1 nV (SRS srsinst.sr860: SLVL, 1 nV step, 3 digits)."""
    return max(1e-9, float(f"{v:.3g}"))


# LIAS? bits that make a reading worthless: SR830 (manual 5-20, as SR850 6-32) 0 input/reserve,
# 1 filter, 2 output overload, 3 reference unlock; SR860 (srsinst.sr860 LiaStatusBitDict)
# 0/1 CH1/CH2 output overload, 3 reference unlock, 4 input range overload.
_LIAS_BAD = {
    "SR830": {0: "input/reserve overload", 1: "filter overload", 2: "output overload",
              3: "reference unlock"},
    "SR860": {0: "CH1 output overload", 1: "CH2 output overload", 3: "reference unlock",
              4: "input range overload"},
}


class LockinHallReader(HallReader):
    """Lock-in sine output through `series_resistance` (ohm) as the read current.

    read_current is an rms amplitude; the station's max_read_current is compared with its peak
    (√2·I_rms). The sine amplitude is set (SR830 in 2 mV steps, SR860 to 3 digits), read back with
    `SLVL?`, and the current is computed from what was set: I_rms = SLVL / series_resistance.
    Once per settings generation the role sets what the reading relies on: internal reference,
    harmonic 1, `phase` (deg), the input (`differential`: A−B across the Hall cross, else A) and
    `time_constant` (s; the instrument's next step at or above it, read back). Each read waits
    `settle` time constants (wall time on a bench, the virtual clock on the simulator), clears
    the latched status (`*CLS`: a write pulse may overload the input while the filter settles),
    snaps X and Y, and refuses the reading (RuntimeError) if `LIAS?` then shows an overload or
    a reference unlock.
    """

    def __init__(self, lockin: Any, limits: Limits, series_resistance: float, *,
                 settle: float = 10.0, sleep: Sleep | None = None, time_constant: float = 0.1,
                 phase: float = 0.0, differential: bool = True) -> None:
        if not (math.isfinite(series_resistance) and series_resistance > 0):
            raise LimitError(f"series_resistance {series_resistance!r} ohm must be positive")
        from pymeasure.instruments.srs import SR830, SR860
        if isinstance(lockin, SR860):
            self.model, self._slvl_range, self._internal = "SR860", (1e-9, 2.0), "INT"
            self._round, self._input = _slvl_sr860, ("A-B" if differential else "A")
        elif isinstance(lockin, SR830):
            self.model, self._slvl_range, self._internal = "SR830", (0.004, 5.0), "Internal"
            self._round, self._input = _slvl_sr830, ("A - B" if differential else "A")
        else:
            raise TypeError(f"LockinHallReader needs a pymeasure SR830 or SR860, not {type(lockin).__name__}")
        if not (math.isfinite(time_constant) and time_constant > 0):
            raise LimitError(f"time_constant {time_constant!r} s must be positive")
        if not (math.isfinite(phase) and -360 <= phase <= 360):
            raise LimitError(f"phase {phase!r} deg outside [-360, 360]")
        self.lockin = lockin
        self.limits = limits
        self.series_resistance = float(series_resistance)
        self.settle = float(settle)
        self.time_constant = float(time_constant)
        self.phase = float(phase)
        self._sleep = sleep or clock_sleep(lockin)
        self._idn = query_idn(lockin)
        self._tau: float | None = None
        self._slvl_set: dict[float, float] = {}      # SLVL sent -> SLVL? read back

    def sine_voltage_for(self, read_current: float) -> float:
        """SLVL (V rms) the instrument will set for a read current (A rms), checked against the
        lock-in's range and the station's max_read_current (peak); LimitError otherwise."""
        if not math.isfinite(read_current):
            raise LimitError(f"read current {read_current!r} A is not finite")
        v = abs(read_current) * self.series_resistance
        lo, hi = self._slvl_range
        if not (lo <= v <= hi):
            raise LimitError(
                f"read current {read_current:.4g} A needs SLVL {v:.4g} V through "
                f"{self.series_resistance:g} ohm, outside the {self.model} range [{lo:g}, {hi:g}] V")
        slvl = self._round(v)
        peak = math.sqrt(2) * slvl / self.series_resistance
        if peak > self.limits.max_read_current:
            raise LimitError(
                f"read current {read_current:.4g} A rms is a sine of peak {peak:.4g} A, above "
                f"max_read_current {self.limits.max_read_current:.4g} A")
        return slvl

    def _configure(self, slvl: float) -> float:
        """Fixed settings once per cache generation, then SLVL; returns the SLVL read back."""
        li = self.lockin
        cache = sent_settings(li)
        if self._tau is None or "time_constant" not in cache:
            set_if_changed(li, "reference_source", self._internal, cache)
            set_if_changed(li, "harmonic", 1, cache)
            set_if_changed(li, "phase", self.phase, cache)
            if self.model == "SR860":
                set_if_changed(li, "input_signal", "VOLT", cache)        # IVMD 0: voltage input
            set_if_changed(li, "input_config", self._input, cache)
            set_if_changed(li, "time_constant", self.time_constant, cache)
            self._tau = float(li.time_constant)                          # the step it chose
            self._slvl_set.clear()
        if cache.get("sine_voltage") != slvl or slvl not in self._slvl_set:
            set_if_changed(li, "sine_voltage", slvl, cache)
            self._slvl_set[slvl] = float(li.sine_voltage)                # what was really set
        return self._slvl_set[slvl]

    def _status(self) -> int:
        """The latched LIA status (read = clear)."""
        if self.model == "SR830":
            return int(self.lockin.lia_status)                # pymeasure: LIAS?
        return int(float(self.lockin.ask("LIAS?")))           # pymeasure's SR860 has no LIAS?

    def read(self, read_current: float) -> HallReading:
        current = _nonzero(read_current)
        slvl = self.sine_voltage_for(current)
        li = self.lockin
        try:
            slvl_set = self._configure(slvl)
            self._sleep(self.settle * self._tau)
            li.write("*CLS")            # forget the settling transient (clears LIAS; no reply)
            x, _y = li.snap()[:2]
            status = self._status()
        except Exception as exc:
            forget_settings(li)
            self._tau = None
            reraise_with_errors(li, exc)
        bad = [name for bit, name in _LIAS_BAD[self.model].items() if status & (1 << bit)]
        if bad:
            raise RuntimeError(f"{instrument_address(li)}: {self.model} reported {', '.join(bad)} "
                               f"(LIAS? {status}) during a read at {current:g} A rms; the reading "
                               f"is not stored")
        i_rms = slvl_set / self.series_resistance
        return HallReading(hall_voltage=math.copysign(1.0, current) * x,
                           read_current=math.copysign(i_rms, current), hall_resistance=x / i_rms)

    def snapshot(self) -> dict:
        return role_snapshot(self, self.lockin, self._idn,
                             {"mode": "lock-in", "series_resistance": self.series_resistance,
                              "settle_time_constants": self.settle, "time_constant": self._tau,
                              "time_constant_requested": self.time_constant,
                              "phase": self.phase, "input": self._input,
                              "sine_voltage_read_back": dict(self._slvl_set) or None})

    def shutdown(self) -> None:
        """Sine output to its minimum (a lock-in's sine cannot be switched off)."""
        li = self.lockin
        forget_settings(li)
        self._tau = None
        safely("set the sine output to its minimum",
               lambda: setattr(li, "sine_voltage", self._slvl_range[0]), instrument_address(li))


# ----- 2400 / 2450 ------------------------------------------------------------------------------
class SourceMeterHallReader(HallReader):
    """Source +I then -I on a 2400/2450 and measure V: R_H = (V+ - V-) / 2I (offsets cancel).

    The SMU's SENSE leads sit on the Hall cross, so reads need remote (4-wire) sense: the role
    turns it on and reads it back (in the power-up 2-wire sense the SMU would measure the channel,
    I·(R_xx + leads)). In 4-wire the compliance watches the Hall voltage, so the over-voltage
    protection at the compliance voltage is what limits the channel. Compliance is checked after
    every read (2400: latched measurement event; 2450: `VLIM:TRIP?` at each polarity).
    """

    def __init__(self, smu: Any, limits: Limits, *, nplc: float = 1.0) -> None:
        check_compliance(limits, 0.0, 210.0, "2400/2450")
        if not (0.01 <= nplc <= 10):
            raise LimitError(f"nplc {nplc!r} outside [0.01, 10]")
        self.smu = smu
        self.limits = limits
        self.nplc = float(nplc)
        self.model = SourceMeterModel(smu)
        self._idn = query_idn(smu)
        self.model.check_language()

    def _configure(self) -> None:
        smu, m = self.smu, self.model
        cache = sent_settings(smu)
        source_current_setup(smu, m, self.limits, cache, four_wire=True,
                             current_range=self.limits.max_read_current)
        set_if_changed(smu, "voltage_nplc", self.nplc, cache)
        if cache.get("_sense_function") != "VOLT":
            # pymeasure sets the sense function only inside the deprecated measure_voltage()
            # (which also forces auto range and asks SYST:ERR?), so it is written here
            smu.write(':SENS:FUNC "VOLT"')
            cache["_sense_function"] = "VOLT"
        m.clear_compliance(cache)

    def read(self, read_current: float) -> HallReading:
        self.limits.check_read(read_current)
        current = _nonzero(read_current)
        smu, m = self.smu, self.model
        try:
            self._configure()
            smu.source_current = current
            smu.enable_source()
            try:
                v_plus = m.read_voltage()
                tripped = m.tripped_while_on()
                smu.source_current = -current
                v_minus = m.read_voltage()
                tripped = m.tripped_while_on() or tripped
            finally:
                smu.disable_source()
                sent_settings(smu)["source_current"] = -current   # what the SMU now holds
            if m.tripped_since() or tripped:
                raise ComplianceError(
                    f"{m.address}: compliance ({self.limits.compliance_voltage:g} V) reached during "
                    f"a SourceMeter read at ±{abs(current):g} A: the programmed current did not flow")
        except Exception as exc:
            forget_settings(smu)
            if isinstance(exc, ComplianceError):
                raise
            reraise_with_errors(smu, exc)
        v = (v_plus - v_minus) / 2
        return HallReading(hall_voltage=v, read_current=current, hall_resistance=v / current)

    def snapshot(self) -> dict:
        return role_snapshot(self, self.smu, self._idn, {"mode": "source-I measure-V, ±I, 4-wire"})

    def shutdown(self) -> None:
        shutdown_sourcemeter(self.smu)


# ----- 6221 + 2182A Pulse Delta reads, and blocks of steps as one list sweep --------------------
# one list sweep: at most 65535 list points (SOUR:SWE:POIN 1…65535, scpi.md §2.1) and 65536
# buffer readings; even, so every full chunk of an alternating burst has the same phase
MAX_BLOCK_POINTS = 65534


class PulseDeltaHallReader(K6221Role, HallReader):
    """Hall reads as 6221 Pulse Delta pulses; blocks of steps as one hardware-timed list sweep.

    The 6221 is the station's pulse source too. `read(I)` sends one pulse of `read_width` at I on
    a 0 A low level and takes its Pulse Delta reading (2B - A - C)/2 = I·R_H (thermal EMF
    cancels). `run_block(steps)` loads the list [write, read, write, read, ...] (a step without a
    write pulse contributes only its read) into `SOUR:LIST:CURR` with one cycle time per point
    in `SOUR:LIST:DEL`, all at the steps' common pulse width, arms sweep output, starts, waits,
    and fetches the buffer once: one reading per pulse, the read entries returned. Each cycle is
    max(`cycle_time`, 2 × width) long, so the duty cycle stays <= 50 %.

    Timing on a real bench: sweep output is synchronised to the power line (UM 5-22/5-23) and a
    cycle is never shorter than the 5 PLC of fixed output; we take the list delay as rounded up to
    whole line cycles (U, see the simulator). The default `cycle_time` is 5 PLC at 50 Hz, 100 ms
    (6 PLC at 60 Hz): 10 pulses/s, so a staircase point (write + read pulse) takes 0.2 s. The
    compliance list is loaded with the lists (no stale `SOUR:LIST:COMP`), and `SOUR:SWE:CAB ON`
    makes the 6221 itself stop the sweep at compliance.
    """

    def __init__(self, k6221: Any, limits: Limits, *, cycle_time: float = PDEL_MIN_CYCLE,
                 read_width: float | None = None, sleep: Sleep | None = None,
                 timeout: float = 10.0, **nvm: float) -> None:
        check_6221_limits(limits, "max_pulse_current", "max_read_current", pulse_delta=True)
        if not (DELAY_RANGE[0] <= cycle_time <= DELAY_RANGE[1]):
            raise LimitError(f"cycle_time {cycle_time!r} s outside the 6221 list delay range "
                             f"{DELAY_RANGE} s")
        self.cycle_time = float(cycle_time)
        self.read_width = pulse_delta_read_width(limits) if read_width is None else float(read_width)
        limits.check_pulse(0.0, self.read_width)        # LimitError if outside the width limits
        super().__init__(k6221, limits, sleep=sleep, timeout=timeout, link="pulse_delta_connected",
                         mode="Pulse Delta", **nvm)

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
            raise ValueError(f"run_block: {len(currents)} pulses exceed one 6221 list sweep ({MAX_BLOCK_POINTS})")
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
                ("sweep_compliance_abort", True),     # the 6221 stops the sweep at compliance
                ("format_elements", "READ,TST"))

    def _configure(self, currents: list[float], width: float, cycle: float) -> dict:
        k = self.k
        cache = sent_settings(k)
        self._send_fixed(cache)
        # per call: the fixed-output pulse source on this 6221 turns sweep output off
        self._set("pulse_delta_sweep", True, cache)
        set_pulse_width(k, width, cache, self._disarm)
        n = len(currents)
        if cache.get("buffer_points", 0) < n:
            self._set("buffer_points", n, cache)
        # the lists are sent only when they change (every full staircase cycle is the same list);
        # the compliance list with them, so a stale SOUR:LIST:COMP never applies
        lists = (tuple(currents), (cycle,) * n, (self.limits.compliance_voltage,) * n)
        if cache.get("_sweep_lists") != lists:
            self._disarm()
            cache.pop("_sweep_lists", None)
            cache.pop("sweep_list_compliances", None)
            k.set_sweep_list(*lists)
            cache["_sweep_lists"] = lists
        return cache

    def sweep_time(self, n: int, width: float) -> float:
        """Seconds a list sweep of `n` pulses takes on a real bench (50 Hz: 5 PLC = 100 ms cycles
        at least; each cycle rounded up to whole line cycles)."""
        cycle = max(self.cycle_for(width), PDEL_MIN_CYCLE)
        return n * math.ceil(cycle / SLOWEST_LINE_PERIOD - 1e-9) * SLOWEST_LINE_PERIOD

    def _sweep(self, currents: list[float], reads: list[bool], width: float) -> list[HallReading]:
        k = self.k
        n = len(currents)
        cycle = self.cycle_for(width)
        what = f"a Pulse Delta list sweep of {n} pulses (peak {max(map(abs, currents)):g} A)"
        try:
            cache = self._configure(currents, width, cycle)
            bits = self._run("PDEL", cache, n, self.sweep_time(n, width),
                             f"{self._where}: Pulse Delta sweep", events=True)
            if bits & COMPLIANCE_BIT:           # CAB ON: the sweep stopped there
                raise ComplianceError(f"{instrument_address(k)}: compliance "
                                      f"({self.limits.compliance_voltage:g} V) reached during {what}")
            data = k.delta_values                # :TRAC:DATA? (pymeasure)
            data = data if isinstance(data, list) else [data]
            if len(data) < 2 * n:
                raise RuntimeError(f"{instrument_address(k)}: Pulse Delta sweep returned "
                                   f"{len(data) // 2} of {n} readings")
        except Exception as exc:
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
