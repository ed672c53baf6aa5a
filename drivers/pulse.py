"""Pulse-source roles: one rectangular write pulse per call, limits checked before any write.

`K6221PulseSource` uses the 6221's Pulse Delta mode with COUN 1, so the pulse width is timed
by the instrument (50 µs … 12 ms); `SourceMeterPulseSource` is software-timed on a 2400/2450.
Settings are sent only when they change (a per-instrument cache shared by every role on that
instrument, forgotten on shutdown and on any error), so the hot path is a few messages.

The small helpers at the top are shared with `labspin.drivers.hall`.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Iterable

import numpy as np

from .roles import ComplianceError, LimitError, Limits, PulseSource

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Sleep = Callable[[float], None]

_CACHE_ATTR = "_labspin_sent"


# ----- helpers shared by the roles ------------------------------------------------------------
def sent_settings(inst: Any) -> dict:
    """The per-instrument record of property values last written by a role."""
    cache = inst.__dict__.get(_CACHE_ATTR)
    if cache is None:
        cache = {}
        inst.__dict__[_CACHE_ATTR] = cache
    return cache


def set_if_changed(inst: Any, name: str, value: Any, cache: dict | None = None) -> bool:
    """Write pymeasure property `name` only if it differs from the value last written."""
    if cache is None:
        cache = sent_settings(inst)
    if name in cache and cache[name] == value:
        return False
    cache.pop(name, None)          # unknown state if the write fails half-way
    setattr(inst, name, value)
    cache[name] = value
    return True


def forget_settings(inst: Any) -> None:
    """Drop the cache: the next call re-sends every setting (after shutdown or an error)."""
    inst.__dict__.pop(_CACHE_ATTR, None)


def instrument_address(inst: Any) -> str | None:
    """VISA resource name of a pymeasure instrument, if it has one."""
    conn = getattr(getattr(inst, "adapter", None), "connection", None)
    name = getattr(conn, "resource_name", None)
    return name if isinstance(name, str) else None


def clock_sleep(inst: Any) -> Sleep:
    """Wall-clock sleep, or the VISA library's own `sleep` where it simulates time.

    A simulated VISA library that keeps a virtual clock may expose `sleep(seconds)` (or, as
    labspin's SimVisaLibrary does, `bench.clock.advance`); waiting through it advances that
    clock instead of blocking.
    """
    from pyvisa.highlevel import VisaLibraryBase

    conn = getattr(getattr(inst, "adapter", None), "connection", None)
    lib = getattr(conn, "visalib", None)
    if not isinstance(lib, VisaLibraryBase):
        return time.sleep
    fn = getattr(lib, "sleep", None)
    if not callable(fn):     # labspin's SimVisaLibrary: its bench's virtual clock
        fn = getattr(getattr(getattr(lib, "bench", None), "clock", None), "advance", None)
    return fn if callable(fn) else time.sleep


def query_idn(inst: Any) -> str | None:
    """*IDN? asked directly: pymeasure's `id` refuses classes without the SCPI mixin (SR860)."""
    try:
        return str(inst.ask("*IDN?")).strip()
    except Exception as exc:  # noqa: BLE001 - identification is informative only
        log.warning("%s: *IDN? failed: %s", instrument_address(inst), exc)
        return None


def role_snapshot(role: Any, inst: Any, idn: str | None, extra: dict | None = None) -> dict:
    """JSON-able description of a role: driver, address, *IDN?, settings, limits."""
    settings = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v)
                for k, v in sent_settings(inst).items()}
    snap = {
        "role": type(role).__name__,
        "driver": f"{type(inst).__module__}.{type(inst).__qualname__}",
        "address": instrument_address(inst),
        "idn": idn,
        "settings": settings,
        "limits": role.limits.as_dict(),
    }
    if extra:
        snap.update(extra)
    return snap


def require_2182(k6221: Any, prop: str, mode: str) -> None:
    """UserError unless the 6221 reports a 2182A on its RS-232 port (asked once, at setup)."""
    from labspin.errors import UserError

    where = instrument_address(k6221) or "keithley6221"
    try:
        present = bool(getattr(k6221, prop))
    except Exception as exc:  # noqa: BLE001 - reported as the reason
        raise UserError(f"{where}: cannot ask the 6221 for its 2182A: {exc}") from None
    if not present:
        raise UserError(f"{where}: no 2182A answers on the 6221's RS-232 port; "
                        f"{mode} needs one")


def check_compliance(limits: Limits, low: float, high: float, model: str) -> None:
    cv = limits.compliance_voltage
    if not (math.isfinite(cv) and low <= cv <= high):
        raise LimitError(f"compliance_voltage {cv:.4g} V outside the {model} range [{low:g}, {high:g}] V")


def safely(what: str, action: Callable[[], Any], name: str | None = None) -> None:
    """Run one shutdown stage; log instead of raising."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - shutdown must never raise
        log.error("%s: shutdown could not %s: %s", name, what, exc)


def wait_until(done: Callable[[], bool], sleep: Sleep, expected: float, timeout: float,
               what: str) -> None:
    """Poll `done()` first (a simulator finishes at once), then sleep in short steps."""
    waited = 0.0
    step = min(max(expected / 4, 1e-3), 0.05)
    while not done():
        if waited >= timeout:
            raise TimeoutError(f"{what}: not complete after {waited:.3g} s")
        sleep(step)
        waited += step


# ----- 6221 limits and compliance ---------------------------------------------------------------
PDEL_MIN_WIDTH, PDEL_MAX_WIDTH = 50e-6, 12e-3      # Pulse Delta pulse widths (scpi.md §2.3)
MAX_6221_CURRENT = 0.105                           # A


def check_6221_limits(limits: Limits, *currents: str, pulse_delta: bool = False) -> None:
    """Refuse station limits a 6221 cannot honour: compliance 0.1–105 V, the named current limits
    above 0.105 A, and (Pulse Delta roles) pulse widths outside 50 µs – 12 ms."""
    check_compliance(limits, 0.1, 105, "6221")
    if pulse_delta and (limits.min_pulse_width < PDEL_MIN_WIDTH or limits.max_pulse_width > PDEL_MAX_WIDTH):
        raise LimitError("pulse width limits must lie within the 6221 Pulse Delta range [50e-6, 12e-3] s")
    for name in currents:
        if getattr(limits, name) > MAX_6221_CURRENT:
            raise LimitError(f"{name} {getattr(limits, name):.4g} A exceeds the 6221's 0.105 A")


# ----- 6221 compliance -------------------------------------------------------------------------
COMPLIANCE_BIT = 1 << 3        # 6221 measurement event register (scpi.md §2.7)


def _compliance_error(k6221: Any, what: str, limits: Limits, detail: str = "") -> ComplianceError:
    return ComplianceError(f"{instrument_address(k6221)}: compliance ({limits.compliance_voltage:g} V) "
                           f"reached during {what}{detail}")


def raise_if_compliance(k6221: Any, what: str, limits: Limits) -> None:
    """ComplianceError if the 6221 reached its compliance voltage since the register was last read.

    The Pulse Delta and Delta readings carry no compliance flag (FORM:ELEM READ,TST), and a pulse
    clamped at compliance still returns a reading, so the latched event bit is the only witness.
    """
    if int(k6221.measurement_event) & COMPLIANCE_BIT:
        raise _compliance_error(k6221, what, limits, ": the programmed current did not flow")


def reraise_checking_compliance(k6221: Any, exc: BaseException, what: str, limits: Limits) -> None:
    """Re-raise `exc`, as a ComplianceError if the 6221 latched a compliance event (a Delta or
    Pulse Delta run aborted by compliance otherwise shows up as a time-out)."""
    if not isinstance(exc, (LimitError, ComplianceError)):
        try:
            raise_if_compliance(k6221, what, limits)
        except ComplianceError:
            raise _compliance_error(k6221, what, limits, f" ({exc})") from exc
        except Exception:  # noqa: BLE001 - the instrument may be gone; report the first error
            pass
    reraise_with_errors(k6221, exc)


# ----- 6221 Pulse Delta -------------------------------------------------------------------------
def pulse_delta_source_delay(width: float) -> float:
    """2182A A/D delay inside the pulse: mid-pulse, within the 6221's 16 µs … 11.966 ms."""
    return float(min(max(width / 2, 16e-6), 11.966e-3))


def set_pulse_width(k6221: Any, width: float, cache: dict) -> None:
    """PDEL:WIDT and the matching PDEL:SDEL, in the order that keeps the A/D inside the pulse."""
    sdel = pulse_delta_source_delay(width)
    if cache.get("pulse_delta_width", 0.0) > width:
        # shrinking: move the A/D point first so that it always lies inside the pulse
        set_if_changed(k6221, "pulse_delta_source_delay", sdel, cache)
        set_if_changed(k6221, "pulse_delta_width", width, cache)
    else:
        set_if_changed(k6221, "pulse_delta_width", width, cache)
        set_if_changed(k6221, "pulse_delta_source_delay", sdel, cache)


class K6221Role:
    """What the 6221 roles share: the instrument and its limits, clock and 2182A link; the fixed
    settings sent once per cache generation (again after shutdown or an error); the shutdown.

    Subclasses yield their fixed settings from `_fixed_settings` and call `_send_fixed(cache)`
    first thing in `_configure`.
    """

    def __init__(self, k6221: Any, limits: Limits, *, sleep: Sleep | None, timeout: float,
                 link: str, mode: str) -> None:
        self.k = k6221
        self.limits = limits
        self._sleep = sleep or clock_sleep(k6221)
        self._timeout = timeout
        self._idn = query_idn(k6221)
        require_2182(k6221, link, mode)
        self._static_for: dict | None = None

    def _fixed_settings(self, cache: dict) -> Iterable[tuple[str, Any]]:
        raise NotImplementedError

    def _send_fixed(self, cache: dict) -> None:
        if self._static_for is cache:
            return
        for name, value in self._fixed_settings(cache):
            set_if_changed(self.k, name, value, cache)
        self.k.measurement_event           # read = clear: only this run's trips count
        self._static_for = cache

    def shutdown(self) -> None:
        forget_settings(self.k)
        safely("shut down the 6221", self.k.shutdown, instrument_address(self.k))


class K6221PulseSource(K6221Role, PulseSource):
    """One hardware-timed pulse per call: 6221 Pulse Delta, fixed output, COUN 1.

    Needs the 2182A on the 6221's RS-232 port (Pulse Delta will not arm without it). The
    pulse rides on a 0 A low level; the 2182A reading that Pulse Delta takes is discarded.
    """

    INTERVAL_PLC = 5            # shortest repetition interval the 6221 allows

    def __init__(self, k6221: Any, limits: Limits, *, sleep: Sleep | None = None,
                 timeout: float = 10.0) -> None:
        check_6221_limits(limits, "max_pulse_current", pulse_delta=True)
        super().__init__(k6221, limits, sleep=sleep, timeout=timeout, link="pulse_delta_connected",
                         mode="Pulse Delta")

    source_delay_for = staticmethod(pulse_delta_source_delay)

    def _fixed_settings(self, cache: dict) -> Iterable[tuple[str, Any]]:
        yield from (("source_compliance", self.limits.compliance_voltage),
                    ("pulse_delta_low", 0.0), ("pulse_delta_count", 1),
                    ("pulse_delta_ranging", "best"),
                    ("pulse_delta_interval", self.INTERVAL_PLC),
                    ("pulse_delta_low_measurements", 2),
                    ("format_elements", "READ,TST"))
        if "buffer_points" not in cache:       # >= 1 is all a pulse needs; a reader may want more
            yield "buffer_points", 1

    def _configure(self, amplitude: float, width: float) -> None:
        k = self.k
        cache = sent_settings(k)
        self._send_fixed(cache)
        # per pulse, not once: a Pulse Delta Hall reader on this 6221 turns sweep output on
        set_if_changed(k, "pulse_delta_sweep", False, cache)
        set_if_changed(k, "pulse_delta_high", amplitude, cache)
        set_pulse_width(k, width, cache)

    def pulse(self, amplitude: float, width: float) -> None:
        self.limits.check_pulse(amplitude, width)
        k = self.k
        try:
            self._configure(float(amplitude), float(width))
            k.pulse_delta_trigger()         # :TRAC:CLE;:SOUR:PDEL:ARM;:INIT:IMM
            # 3 pulses (low, high, low) per reading, INT PLC each at >= 50 Hz
            expected = 3 * self.INTERVAL_PLC / 50.0
            wait_until(lambda: k.trace_points_actual >= 1, self._sleep, expected,
                       self._timeout, f"{instrument_address(k)}: Pulse Delta")
            raise_if_compliance(k, f"a {amplitude:g} A pulse", self.limits)
        except Exception as exc:
            forget_settings(k)
            reraise_checking_compliance(k, exc, f"a {amplitude:g} A pulse", self.limits)

    @property
    def output_enabled(self) -> bool:
        try:
            return bool(self.k.source_enabled)
        except Exception:  # noqa: BLE001 - status display only
            return False

    def snapshot(self) -> dict:
        return role_snapshot(self, self.k, self._idn, {"timing": "hardware (Pulse Delta, COUN 1)"})


# ----- 2400 / 2450 ------------------------------------------------------------------------------
class SourceMeterPulseSource(PulseSource):
    """Software-timed pulse on a Keithley 2400/2450: level, output on, wait, output off.

    The host times the pulse, so every bus message adds to it (~1 ms each on GPIB): widths below
    the station's `min_smu_pulse_width` are refused, and `pulse()` returns the width measured
    between the output-on and output-off messages (the runner stores it). Pulses are sourced in
    2-wire sense, where the compliance limits the voltage across the channel itself; the
    over-voltage protection is set as well. Compliance is checked after every pulse (2400: the
    latched measurement event; 2450: `VLIM:TRIP?` before the output goes off): a trip raises
    ComplianceError. Prefer the 6221 for short, hardware-timed pulses.
    """

    MAX_CURRENT = 1.05

    def __init__(self, smu: Any, limits: Limits, *, sleep: Sleep | None = None,
                 now: Callable[[], float] | None = None) -> None:
        from .smu import SourceMeterModel, clock_now

        check_compliance(limits, 0.0, 210.0, "2400/2450")
        if limits.max_pulse_current > self.MAX_CURRENT:
            raise LimitError(f"max_pulse_current {limits.max_pulse_current:.4g} A exceeds the SourceMeter's 1.05 A")
        self.smu = smu
        self.limits = limits
        self.model = SourceMeterModel(smu)
        self._sleep = sleep or clock_sleep(smu)
        self._now = now or clock_now(smu)
        self._idn = query_idn(smu)
        self.model.check_language()
        self.last_width: float | None = None

    def _configure(self, amplitude: float) -> None:
        smu, m = self.smu, self.model
        cache = sent_settings(smu)
        set_if_changed(smu, "source_mode", "current", cache)
        m.set_four_wire(False, cache)
        set_if_changed(smu, "compliance_voltage", self.limits.compliance_voltage, cache)
        m.set_overvoltage_protection(self.limits, cache)
        set_if_changed(smu, "source_current_range", self.limits.max_pulse_current, cache)
        set_if_changed(smu, "source_current", float(amplitude), cache)
        m.clear_compliance(cache)

    def pulse(self, amplitude: float, width: float) -> float:
        self.limits.check_pulse(amplitude, width)
        floor = self.limits.min_smu_pulse_width
        if width < floor:
            raise LimitError(f"pulse width {width:.4g} s is below min_smu_pulse_width {floor:.4g} s: "
                             f"a SourceMeter pulse is timed by the host over the bus")
        smu, m = self.smu, self.model
        try:
            self._configure(amplitude)
            smu.enable_source()
            t_on = self._now()
            try:
                self._sleep(float(width))
                tripped = m.tripped_while_on()
            finally:
                smu.disable_source()
                t_off = self._now()
            tripped = m.tripped_since() or tripped
            if tripped:
                raise ComplianceError(
                    f"{m.address}: compliance ({self.limits.compliance_voltage:g} V) reached during "
                    f"a {amplitude:g} A, {width:g} s SourceMeter pulse: the programmed current did not flow")
        except Exception as exc:
            forget_settings(smu)
            if isinstance(exc, ComplianceError):
                raise
            reraise_with_errors(smu, exc)
        self.last_width = t_off - t_on
        return self.last_width

    @property
    def output_enabled(self) -> bool:
        try:
            return bool(self.smu.source_enabled)
        except Exception:  # noqa: BLE001 - status display only
            return False

    def snapshot(self) -> dict:
        return role_snapshot(self, self.smu, self._idn,
                             {"timing": "software", "sense": "2-wire (compliance guards the channel)"})

    def shutdown(self) -> None:
        shutdown_sourcemeter(self.smu)


def shutdown_sourcemeter(smu: Any, steps: int = 10) -> None:
    """Ramp a 2400/2450 current to zero and turn its output off; never raises."""
    forget_settings(smu)
    name = instrument_address(smu)

    def ramp() -> None:
        try:
            smu.ramp_to_current(0.0, steps=steps, pause=0.0)      # pymeasure: level … 0 in steps
        except Exception:  # noqa: BLE001 - a level it cannot ramp from: go straight to zero
            smu.source_current = 0.0

    safely("ramp to zero", ramp, name)
    safely("turn the output off", smu.disable_source, name)


def reraise_with_errors(inst: Any, exc: BaseException) -> None:
    """Re-raise `exc`, naming the instrument's queued errors (if any) in the message."""
    if isinstance(exc, LimitError):
        raise exc
    errors = []
    try:
        for _ in range(10):        # pymeasure's next_error: SYST:ERR? (SCPI instruments only)
            code, msg = inst.next_error[:2]
            if int(code) == 0:
                break
            errors.append(f"{int(code)},{str(msg).strip()}")
    except Exception:  # noqa: BLE001 - best effort only
        pass
    if errors:
        raise RuntimeError(f"{instrument_address(inst)}: {exc} "
                           f"[instrument errors: {'; '.join(errors)}]") from exc
    raise exc
