"""Pre-flight checks, one function per instrument model (named by its registry entry).

A check only *asks* (queries that change no output or setting; reading an error queue empties
it): is the output off, is the error queue empty, is it in the language and wiring the roles need.
It records facts (shown on the OK line) and problems, each problem saying how to fix it.
`labspin check` prints one line per instrument; `labspin run` refuses to start on any problem.

Signature: ``check(inst, ctx: CheckContext, report: CheckReport) -> None``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labspin.drivers.roles import Limits

MAX_ERRORS = 10            # error-queue entries read at most (a queue holds 10 on the Keithleys)


@dataclass(frozen=True)
class CheckContext:
    """Where the instrument sits in the station."""

    name: str                           # the station's name for it
    driver: str                         # registry entry
    address: str
    limits: Limits
    roles: tuple[str, ...] = ()         # "pulse_source", "hall_reader"
    mode: str | None = None             # its Hall-read mode, when it reads
    options: dict = field(default_factory=dict)   # the Hall-read mode's options


@dataclass
class CheckReport:
    name: str
    driver: str
    address: str
    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fact(self, text: str) -> None:
        self.facts.append(text)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def line(self) -> str:
        """One line: ``name (driver @ address): OK: facts`` or ``...: FAIL: problem; problem``."""
        head = f"{self.name} ({self.driver} @ {self.address})"
        if self.ok:
            return f"{head}: OK" + (f": {', '.join(self.facts)}" if self.facts else "")
        return f"{head}: FAIL: {'; '.join(self.problems)}"


def _ask(inst: Any, query: str, report: CheckReport) -> str | None:
    """The reply stripped, or None with a problem recorded."""
    try:
        return str(inst.ask(query)).strip()
    except Exception as exc:  # noqa: BLE001 - a timeout, a closed bus: all one line
        text = " ".join(str(exc).split())[:120] or type(exc).__name__
        report.problem(f"no reply to {query} ({text}); check the cable and that the address is "
                       f"this instrument")
        return None


def _number(reply: str | None) -> float | None:
    try:
        return None if reply is None else float(reply.split(",")[0])
    except ValueError:
        return None


def error_queue(inst: Any, report: CheckReport, query: str = "SYST:ERR?") -> None:
    """Keithley SCPI error queue: `0,"No error"` when empty; anything else is reported."""
    errors = []
    for _ in range(MAX_ERRORS):
        reply = _ask(inst, query, report)
        if reply is None:
            return
        code = _number(reply)
        if code == 0:
            break
        errors.append(reply)
    if errors:
        report.problem(f"error queue not empty: {' | '.join(errors)} (find the cause, then clear "
                       f"it with *CLS)")


def output_off(inst: Any, report: CheckReport, query: str = "OUTP?") -> None:
    reply = _ask(inst, query, report)
    if reply is None:
        return
    if reply.upper() in ("1", "ON"):
        report.problem("output is ON: something is sourcing now; turn it off (OUTP OFF) before "
                       "labspin takes the bench")
    else:
        report.fact("output off")


def compliance(inst: Any, report: CheckReport, query: str, limits: Limits) -> None:
    """The compliance now set (the roles set limits.compliance_voltage before any output)."""
    value = _number(_ask(inst, query, report))
    if value is not None:
        report.fact(f"compliance {value:g} V now (run sets {limits.compliance_voltage:g} V)")


def check_6221(inst: Any, ctx: CheckContext, report: CheckReport) -> None:
    output_off(inst, report, "OUTP:STAT?")
    compliance(inst, report, "SOUR:CURR:COMP?", ctx.limits)
    # every 6221 role (Pulse Delta writes, Delta and Pulse Delta reads) needs the 2182A:
    # 1 = a 2182A answers on the 6221's RS-232 port (scpi.md §2.4, "DELTa:NVPResent?")
    reply = _ask(inst, "SOUR:DELT:NVPR?", report)
    if reply is not None and _number(reply) != 1:
        report.problem("no 2182A on the 6221's RS-232 link: connect the 2182A's RS-232 port to "
                       "the 6221's (null-modem) and the Trigger Link cable, and select RS-232 "
                       "as the 2182A's interface")
    elif reply is not None:
        report.fact("2182A on the RS-232 link")
    error_queue(inst, report)


def check_2182(inst: Any, ctx: CheckContext, report: CheckReport) -> None:
    error_queue(inst, report)


def _sine(inst: Any, ctx: CheckContext, report: CheckReport) -> None:
    """The sine out is always on: what it drives through series_resistance must be a safe read."""
    volts = _number(_ask(inst, "SLVL?", report))
    if volts is None:
        return
    series = ctx.options.get("series_resistance")
    if series:
        current = volts / float(series)
        if current > ctx.limits.max_read_current:
            report.problem(f"sine out {volts:g} V drives {current:.3g} A through "
                           f"series_resistance, above limits.max_read_current "
                           f"{ctx.limits.max_read_current:g} A; lower it (SLVL) first")
            return
    report.fact(f"sine out {volts:g} V")


def check_sr830(inst: Any, ctx: CheckContext, report: CheckReport) -> None:
    _sine(inst, ctx, report)
    for query, what in (("ERRS?", "error status"), ("LIAS?", "overload/unlock status")):
        value = _number(_ask(inst, query, report))
        if value not in (None, 0):
            report.problem(f"{what} {query} = {value:g}: see the SR830 manual (5-21), clear "
                           f"with *CLS")


def check_sr860(inst: Any, ctx: CheckContext, report: CheckReport) -> None:
    _sine(inst, ctx, report)
    value = _number(_ask(inst, "*ESR?", report))
    if value not in (None, 0):
        report.problem(f"standard event status *ESR? = {value:g} (a command or execution error); "
                       f"clear with *CLS")


def _sense(inst: Any, ctx: CheckContext, report: CheckReport, query: str) -> None:
    value = _number(_ask(inst, query, report))
    if value is None:
        return
    if value == 1:
        report.fact("4-wire sense")
    elif "hall_reader" in ctx.roles:
        report.fact("2-wire sense now (the Hall read turns 4-wire on)")
    else:
        report.fact("2-wire sense")


def check_2400(inst: Any, ctx: CheckContext, report: CheckReport) -> None:
    output_off(inst, report)
    _sense(inst, ctx, report, ":SYST:RSEN?")
    compliance(inst, report, ":SENS:VOLT:PROT?", ctx.limits)
    error_queue(inst, report)


def check_2450(inst: Any, ctx: CheckContext, report: CheckReport) -> None:
    lang = _ask(inst, "*LANG?", report)
    if lang is not None and lang.upper() != "SCPI":
        report.problem(f"command set is {lang} (*LANG?), labspin speaks SCPI: send *LANG SCPI "
                       f"(or MENU > System > Settings > Command Set) and power-cycle the 2450")
        return                                    # the rest would only add SCPI errors
    output_off(inst, report)
    _sense(inst, ctx, report, ":SENS:VOLT:RSEN?")
    compliance(inst, report, ":SOUR:CURR:VLIM?", ctx.limits)
    error_queue(inst, report)
