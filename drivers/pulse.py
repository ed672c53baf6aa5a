"""Pulse-source roles: one rectangular write pulse per call, limits checked before any write.

`K6221PulseSource` uses the 6221's Pulse Delta mode with COUN 1, so the pulse width is timed
by the instrument (50 µs … 12 ms); `SourceMeterPulseSource` is software-timed on a 2400/2450.
Settings are sent only when they change (`labspin.drivers.common.set_if_changed`), so the hot
path is a few messages. What the 6221 roles share is `labspin.drivers.k6221_role`.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .common import (
    Sleep,
    check_compliance,
    clock_now,
    clock_sleep,
    forget_settings,
    query_idn,
    reraise_with_errors,
    role_snapshot,
    sent_settings,
    set_if_changed,
)
from .k6221_role import (
    COMPLIANCE_BIT,
    PDEL_MIN_PLC,
    SLOWEST_LINE_PERIOD,
    K6221Role,
    check_6221_limits,
    compliance_error,
    pulse_delta_source_delay,
    reraise_checking_compliance,
    set_pulse_width,
)
from .roles import ComplianceError, LimitError, Limits, PulseSource
from .smu import SourceMeterModel, shutdown_sourcemeter, source_current_setup


# ----- 6221 Pulse Delta -------------------------------------------------------------------------
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
                raise compliance_error(k, f"a {amplitude:g} A pulse", self.limits,
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
