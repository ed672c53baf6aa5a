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


def source_current_setup(smu: Any, model: Any, limits: Limits, cache: dict, *, four_wire: bool,
                         current_range: float) -> None:
    """A SourceMeter sourcing current, as a pulse source (2-wire: the compliance guards the
    channel) or a Hall reader (4-wire: SENSE on the cross); OVP at the compliance voltage either way."""
    set_if_changed(smu, "source_mode", "current", cache)
    model.set_four_wire(four_wire, cache)
    set_if_changed(smu, "compliance_voltage", limits.compliance_voltage, cache)
    model.set_overvoltage_protection(limits, cache)
    set_if_changed(smu, "source_current_range", current_range, cache)


def set_if_changed(inst: Any, name: str, value: Any, cache: dict | None = None,
                   before: Callable[[], Any] | None = None) -> bool:
    """Write pymeasure property `name` only if it differs from the value last written
    (`before()` runs first when it will be written: a 6221 role aborts an armed run)."""
    if cache is None:
        cache = sent_settings(inst)
    if name in cache and cache[name] == value:
        return False
    if before is not None:
        before()
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

    A simulated VISA library that keeps a virtual clock (labspin's SimVisaLibrary) exposes
    `sleep(seconds)`; waiting through it advances that clock instead of blocking.
    """
    from pyvisa.highlevel import VisaLibraryBase

    conn = getattr(getattr(inst, "adapter", None), "connection", None)
    lib = getattr(conn, "visalib", None)
    if not isinstance(lib, VisaLibraryBase):
        return time.sleep
    fn = getattr(lib, "sleep", None)
    return fn if callable(fn) else time.sleep


def query_idn(inst: Any) -> str | None:
    """*IDN? asked directly: pymeasure's `id` refuses classes without the SCPI mixin (SR860);
    not asked again where `labspin.drivers.open_instrument` already did (one *IDN? per opening)."""
    known = inst.__dict__.get("_labspin_idn")
    if known is not None:
        return known
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
    if int(k6221.measurement_events) & COMPLIANCE_BIT:
        raise _compliance_error(k6221, what, limits, ": the programmed current did not flow")


def reraise_checking_compliance(k6221: Any, exc: BaseException, what: str, limits: Limits) -> None:
    """Re-raise `exc`, as a ComplianceError if the 6221 latched a compliance event (a Delta or
    Pulse Delta run aborted by compliance otherwise shows up as a time-out).

    Anything but a LimitError (nothing was sent) first stops the run and clears the device, before
    any query: after a VISA timeout the 6221 may still be running, and the late reply may still
    come — asking first would take it for the answer (`STAT:MEAS?`, `SYST:ERR?`)."""
    if not isinstance(exc, LimitError):
        stop_and_clear(k6221)
    if not isinstance(exc, (LimitError, ComplianceError)):
        try:
            raise_if_compliance(k6221, what, limits)
        except ComplianceError:
            raise _compliance_error(k6221, what, limits, f" ({exc})") from exc
        except Exception:  # noqa: BLE001 - the instrument may be gone; report the first error
            pass
    reraise_with_errors(k6221, exc)


def stop_and_clear(k6221: Any) -> None:
    """`SOUR:SWE:ABOR` at once (the run stops, the 2182A returns to local), then a VISA device
    clear (late replies dropped); never raises."""
    name = instrument_address(k6221)
    safely("abort the sweep", k6221.delta_abort, name)      # :SOUR:SWE:ABOR
    safely("clear the device", k6221.device_clear, name)
    forget_settings(k6221)


# ----- 6221 timing (UM 5-28, RM 5-39; see sim_backend/instruments/keithley6221.py) -------------
SLOWEST_LINE_PERIOD = 1 / 50.0    # s; timeouts assume 50 Hz, the longer line period
PDEL_MIN_PLC = 5                   # shortest Pulse Delta cycle (fixed output: PDEL:INT >= 5 PLC)
PDEL_MIN_CYCLE = PDEL_MIN_PLC * SLOWEST_LINE_PERIOD   # 100 ms at 50 Hz (83.3 ms at 60 Hz)
ARM_EXPECTED = 0.1                 # s the 6221 takes to arm (it configures the 2182A; U)
ARM_TIMEOUT = 5.0                  # s


# ----- 6221 Pulse Delta -------------------------------------------------------------------------
def pulse_delta_source_delay(width: float) -> float:
    """2182A A/D delay inside the pulse: mid-pulse, within the 6221's 16 µs … 11.966 ms."""
    return float(min(max(width / 2, 16e-6), 11.966e-3))


def set_pulse_width(k6221: Any, width: float, cache: dict,
                    before: Callable[[], Any] | None = None) -> None:
    """PDEL:WIDT and the matching PDEL:SDEL, in the order that keeps the A/D inside the pulse."""
    sdel = pulse_delta_source_delay(width)
    if cache.get("pulse_delta_width", 0.0) > width:
        # shrinking: move the A/D point first so that it always lies inside the pulse
        set_if_changed(k6221, "pulse_delta_source_delay", sdel, cache, before)
        set_if_changed(k6221, "pulse_delta_width", width, cache, before)
    else:
        set_if_changed(k6221, "pulse_delta_width", width, cache, before)
        set_if_changed(k6221, "pulse_delta_source_delay", sdel, cache, before)


_ARMED = "_armed"      # cache key: the run ("PDEL"/"DELT") this 6221 is armed for, by any role


def _owner(name: str) -> str | None:
    """The run a 6221 property belongs to: "PDEL", "DELT", "SWE" (sweep/list settings, used by
    both) or None (not a run setting)."""
    if name.startswith("pulse_delta_"):
        return "PDEL"
    if name.startswith("delta_"):
        return "DELT" if name != "delta_measurement_sets" else "SWE"   # :SOUR:SWE:COUN
    if name.startswith("sweep_") or name == "source_delay":
        return "SWE"
    return None


def poll_plan(expected: float, timeout: float) -> tuple[float, int]:
    """Poll step (s) and number of polls after the first for a run expected to take `expected`
    seconds: the run may take twice as long, plus `timeout`."""
    step = min(max(expected / 4, 1e-3), 0.05)
    return step, max(1, math.ceil((timeout + 2 * expected) / step - 1e-9))


def _floats(reply: Any) -> list[float]:
    return [float(v) for v in str(reply).replace(";", ",").split(",") if v.strip()]


class K6221Role:
    """What the 6221 roles share: the instrument and its limits, clock and 2182A link; a known
    starting state sent once per cache generation (again after shutdown or an error); arming and
    starting a run; the shutdown.

    Known starting state (issue #12, 8): any armed run aborted, `*CLS`, DC level 0 A, the role's
    fixed settings, the 2182A's range and NPLC set over the 6221's RS-232 link (`SER:SEND`) and
    read back (`SER:ENT?`), the measurement events read (= cleared) and the error queue empty
    (pymeasure's `check_errors()`). Every later setting change first aborts an armed run
    (`SOUR:SWE:ABOR`): the 6221 refuses sweep settings while armed.

    Subclasses yield their fixed settings from `_fixed_settings` and call `_send_fixed(cache)`
    first thing in `_configure`; they write settings with `self._set` (aborts first if armed).
    """

    def __init__(self, k6221: Any, limits: Limits, *, sleep: Sleep | None, timeout: float,
                 link: str, mode: str, nvm_range: float = 0.1, nvm_nplc: float = 5.0) -> None:
        if not (0 < nvm_range <= 120) or not (0.01 <= nvm_nplc <= 50):
            raise LimitError("2182A range must be in (0, 120] V and NPLC in [0.01, 50]")
        self.k = k6221
        self.limits = limits
        self.nvm_range = float(nvm_range)
        self.nvm_nplc = float(nvm_nplc)
        self._sleep = sleep or clock_sleep(k6221)
        self._timeout = timeout
        self._idn = query_idn(k6221)
        self._where = instrument_address(k6221)     # for messages, once (hot path)
        require_2182(k6221, link, mode)
        self._static_for: dict | None = None

    def _fixed_settings(self, cache: dict) -> Iterable[tuple[str, Any]]:
        raise NotImplementedError

    def _disarm(self) -> None:
        """Abort the armed run (if any) before a setting changes."""
        cache = sent_settings(self.k)
        if cache.get(_ARMED):
            self.k.delta_abort()                 # :SOUR:SWE:ABOR (un-arms Delta and Pulse Delta)
            cache[_ARMED] = None

    def _set(self, name: str, value: Any, cache: dict) -> bool:
        """Set a property if it changed; first abort a run armed for the mode it belongs to
        (Pulse Delta settings: Pulse Delta; Delta settings: Delta; sweep and list settings: both)."""
        owner = _owner(name)
        armed = cache.get(_ARMED)
        before = self._disarm if owner is not None and armed and owner in (armed, "SWE") else None
        return set_if_changed(self.k, name, value, cache, before)

    def _send_fixed(self, cache: dict) -> None:
        if self._static_for is cache:
            return
        k = self.k
        if _ARMED not in cache:                  # a new cache generation: state unknown
            k.delta_abort()                      # :SOUR:SWE:ABOR
            k.clear()                            # *CLS: error queue and event registers
            cache[_ARMED] = None
        self._set("source_current", 0.0, cache)  # the DC level (the output after SWE:ABOR)
        for name, value in self._fixed_settings(cache):
            self._set(name, value, cache)
        self._setup_2182(cache)
        k.measurement_events                     # read = clear: only this run's trips count
        errors = k.check_errors()
        if errors:
            raise RuntimeError(f"{instrument_address(k)}: errors after set-up: "
                               + "; ".join(f"{int(c)},{str(m).strip()}" for c, m in errors))
        self._static_for = cache

    def _setup_2182(self, cache: dict) -> None:
        """2182A range and NPLC through the 6221's RS-232 link, read back (scpi.md §2.8)."""
        want = (self.nvm_range, self.nvm_nplc)
        if cache.get("_nvm") == want:
            return
        k = self.k
        self._disarm()
        cache.pop("_nvm", None)
        k.serial_send(f":SENS:VOLT:CHAN1:RANG {self.nvm_range:g}")
        k.serial_send(f":SENS:VOLT:NPLC {self.nvm_nplc:g}")
        got_range = float(k.serial_ask(":SENS:VOLT:CHAN1:RANG?"))
        got_nplc = float(k.serial_ask(":SENS:VOLT:NPLC?"))
        if got_range < self.nvm_range or abs(got_nplc - self.nvm_nplc) > 1e-6 * self.nvm_nplc:
            raise RuntimeError(f"{instrument_address(k)}: the 2182A reports range {got_range:g} V "
                               f"and NPLC {got_nplc:g} after being set to {self.nvm_range:g} V, "
                               f"{self.nvm_nplc:g} through the 6221's RS-232 link")
        cache["_nvm"] = want

    def _run(self, mode: str, cache: dict, n: int, expected: float, what: str,
             events: bool = False) -> int:
        """Arm and start a run (see `_start`), then poll until `n` readings are in the buffer.

        The first poll rides on the start message (`:TRAC:CLE;:INIT:IMM;:TRAC:POIN:ACT?`), and with
        `events` every poll also reads the measurement event register (`;:STAT:MEAS?`, read =
        clear), whose bits are OR-ed over the polls and returned: the compliance witness of the run
        (polling ends at a compliance event: with `SOUR:SWE:CAB ON` the sweep has stopped there).
        """
        k = self.k
        write, read = k.write, k.read        # bound once: pymeasure attribute access is slow
        poll = ":TRAC:POIN:ACT?" + (";:STAT:MEAS?" if events else "")
        self._start(mode, cache, poll)
        step, polls = poll_plan(expected, self._timeout)
        bits = 0
        for i in range(polls + 1):
            if i:
                self._sleep(step)
                write(poll)
            values = _floats(read())
            if len(values) != (2 if events else 1):
                raise RuntimeError(f"{instrument_address(k)}: unexpected reply {values!r} to {poll}")
            if events:
                bits |= int(values[1])
            if values[0] >= n or bits & COMPLIANCE_BIT:   # done, or at compliance (CAB: stopped)
                return bits
        raise TimeoutError(f"{what}: {int(values[0])} of {n} readings after {polls * step:.3g} s")

    def _start(self, mode: str, cache: dict, then: str = "") -> None:
        """Arm `mode` ("PDEL" or "DELT") unless it still is, wait for `…:ARM?` = 1, then start
        (buffer cleared) in a separate message, followed by `then` (a query). A finished finite
        run stays armed: another `INIT:IMM` re-starts it (UM 5-41), so an unchanged set-up is not
        re-armed."""
        k = self.k
        if cache.get(_ARMED) != mode:
            cache[_ARMED] = None
            if mode == "PDEL":
                k.pulse_delta_arm()              # :SOUR:PDEL:ARM (un-arms Delta)
                query = ":SOUR:PDEL:ARM?"        # = pulse_delta_armed, asked without the
            else:                                # property machinery (the hot path)
                k.delta_arm()                    # pymeasure: :SOUR:DELT:ARM (un-arms Pulse Delta)
                query = ":SOUR:DELT:ARM?"        # = delta_armed
            ask = k.ask
            armed = lambda: ask(query).strip() == "1"          # noqa: E731
            self._sleep(ARM_EXPECTED)
            wait_until(armed, self._sleep, ARM_EXPECTED, ARM_TIMEOUT,
                       f"{self._where}: arming {mode}")
            cache[_ARMED] = mode
        k.start_run(then)                        # :TRAC:CLE;:INIT:IMM[;<then>]

    def shutdown(self) -> None:
        forget_settings(self.k)
        safely("shut down the 6221", self.k.shutdown, instrument_address(self.k))


class K6221PulseSource(K6221Role, PulseSource):
    """One hardware-timed pulse per call: 6221 Pulse Delta, fixed output, COUN 1.

    Needs the 2182A on the 6221's RS-232 port (Pulse Delta will not arm without it). The
    pulse rides on a 0 A low level; the 2182A reading that Pulse Delta takes is discarded.
    """

    INTERVAL_PLC = PDEL_MIN_PLC    # shortest repetition interval the 6221 allows (UM 5-28)

    def __init__(self, k6221: Any, limits: Limits, *, sleep: Sleep | None = None,
                 timeout: float = 10.0, **nvm: float) -> None:
        check_6221_limits(limits, "max_pulse_current", pulse_delta=True)
        super().__init__(k6221, limits, sleep=sleep, timeout=timeout, link="pulse_delta_connected",
                         mode="Pulse Delta", **nvm)

    source_delay_for = staticmethod(pulse_delta_source_delay)

    def _fixed_settings(self, cache: dict) -> Iterable[tuple[str, Any]]:
        yield ("source_compliance", self.limits.compliance_voltage)
        if "_sweep_lists" not in cache:        # no stale compliance list (a reader loads its own)
            yield "sweep_list_compliances", [self.limits.compliance_voltage]
        yield from (("pulse_delta_low", 0.0), ("pulse_delta_count", 1),
                    ("pulse_delta_ranging", "best"),
                    ("pulse_delta_interval", self.INTERVAL_PLC),
                    ("pulse_delta_low_measurements", 2),
                    ("format_elements", "READ,TST"))
        if "buffer_points" not in cache:       # >= 1 is all a pulse needs; a reader may want more
            yield "buffer_points", 1

    def _configure(self, amplitude: float, width: float) -> dict:
        k = self.k
        cache = sent_settings(k)
        self._send_fixed(cache)
        # per pulse, not once: a Pulse Delta Hall reader on this 6221 turns sweep output on
        self._set("pulse_delta_sweep", False, cache)
        self._set("pulse_delta_high", amplitude, cache)
        set_pulse_width(k, width, cache, self._disarm)
        return cache

    def pulse(self, amplitude: float, width: float) -> None:
        self.limits.check_pulse(amplitude, width)
        k = self.k
        try:
            cache = self._configure(float(amplitude), float(width))
            # one fixed-output cycle (low, high, low pulses) of INT PLC, line-synchronised
            expected = self.INTERVAL_PLC * SLOWEST_LINE_PERIOD
            bits = self._run("PDEL", cache, 1, expected, f"{self._where}: Pulse Delta",
                             events=True)
            if bits & COMPLIANCE_BIT:
                raise _compliance_error(k, f"a {amplitude:g} A pulse", self.limits,
                                        ": the programmed current did not flow")
        except Exception as exc:
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
        source_current_setup(smu, m, self.limits, cache, four_wire=False,
                             current_range=self.limits.max_pulse_current)
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
