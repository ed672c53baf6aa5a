"""What the 6221 roles share (the pulse source and the Delta and Pulse Delta Hall readers): the
2182A link check, the 6221's limits, its compliance witness, Pulse Delta timing, and `K6221Role`,
which sends a known starting state, arms, starts and polls a run, and shuts the 6221 down.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .common import (
    Sleep,
    check_compliance,
    clock_sleep,
    forget_settings,
    instrument_address,
    poll_plan,
    query_idn,
    reraise_with_errors,
    safely,
    sent_settings,
    set_if_changed,
    wait_until,
)
from .roles import ComplianceError, LimitError, Limits


# ----- the 2182A on the 6221's RS-232 port ------------------------------------------------------
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


# ----- 6221 limits -------------------------------------------------------------------------------
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


def compliance_error(k6221: Any, what: str, limits: Limits, detail: str = "") -> ComplianceError:
    return ComplianceError(f"{instrument_address(k6221)}: compliance ({limits.compliance_voltage:g} V) "
                           f"reached during {what}{detail}")


def raise_if_compliance(k6221: Any, what: str, limits: Limits) -> None:
    """ComplianceError if the 6221 reached its compliance voltage since the register was last read.

    The Pulse Delta and Delta readings carry no compliance flag (FORM:ELEM READ,TST), and a pulse
    clamped at compliance still returns a reading, so the latched event bit is the only witness.
    """
    if int(k6221.measurement_events) & COMPLIANCE_BIT:
        raise compliance_error(k6221, what, limits, ": the programmed current did not flow")


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
            raise compliance_error(k6221, what, limits, f" ({exc})") from exc
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


# ----- the role base ----------------------------------------------------------------------------
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
