"""Fault injection (``SimBench.inject_fault``): disconnects, lost or late replies, queued
errors and forced compliance trips, counted in program message units."""
from __future__ import annotations

from ..scpi import split_commands


class _Fault:
    __slots__ = ("kind", "after", "count")

    def __init__(self, kind: str, after: int, count: int):
        self.kind, self.after, self.count = kind, after, count


class FaultInjection:
    """The fault state of one instrument (a base of ``SimInstrument``, whose ``write``/``read``
    consult the flags and whose ``push_error`` queues an "error" fault's −310s)."""

    def _init_faults(self) -> None:
        self._faults: list[_Fault] = []
        self._disconnected = False
        self._lose_replies = 0
        self._reply_lost = False
        self._late_replies = 0
        self._late: list[str] = []     # replies held back by a "late" fault
        self._compliance_faults = 0

    def add_fault(self, kind: str, after: int, count: int) -> None:
        f = _Fault(kind, after, count)
        if after == 0 and kind in ("disconnect", "error"):
            self._fire(f, arming=True)
        else:
            self._faults.append(f)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._disconnected = False
        self._lose_replies = 0
        self._late_replies = 0
        self._late.clear()
        self._compliance_faults = 0

    def _apply_faults(self, message: str) -> None:
        """``after`` counts program message units (the ``;``-separated commands of a write)."""
        units = [u for u in split_commands(message) if u.strip()] or [message]
        for f in list(self._faults):
            if f.after >= len(units):
                f.after -= len(units)
                continue
            rest = units[f.after:]
            f.after = 0
            self._fire(f, message=";".join(rest))

    def _fire(self, f: _Fault, message: str = "", arming: bool = False) -> None:
        if f.kind == "disconnect":
            self._disconnected = True
            self._remove(f)
        elif f.kind == "error":
            for _ in range(f.count):
                self.push_error(-310)
            self._remove(f)
        elif f.kind == "compliance":
            self._compliance_faults += f.count
            self._remove(f)
        elif f.kind in ("timeout", "late"):
            if "?" in message:
                if f.kind == "timeout":
                    self._lose_replies += 1
                else:
                    self._late_replies += 1
                f.count -= 1
                if f.count <= 0:
                    self._remove(f)

    def _remove(self, f: _Fault) -> None:
        if f in self._faults:
            self._faults.remove(f)

    def consume_compliance_fault(self) -> bool:
        """True once per injected forced compliance trip (checked when the instrument sources)."""
        n = self._compliance_faults
        if n:
            self._compliance_faults = n - 1
            return True
        return False
