"""One simulated instrument: settings declared once in a command table, message I/O as the VISA
library calls it, the error queue and output bookkeeping.

Each instrument class declares its commands in ``_commands(cls, t)``; the table is built once per
class (``CommandTable`` resolves headers, then caches), so a message costs a dict lookup and one
handler call.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from pyvisa import constants
from pyvisa.errors import VisaIOError

from ..scpi import CommandTable, KeithleyParser
from .errors import KEITHLEY_ERRORS, err
from .faults import FaultInjection

if TYPE_CHECKING:  # pragma: no cover
    from ..bench import SimBench


class SimInstrument(FaultInjection):
    """One simulated instrument on the bench.

    Public state the runner's tests read: ``output_on``, ``level`` (A, the programmed level of a
    sourcing instrument), ``errors`` (the error queue: (code, text) pairs, oldest first).
    """

    model: ClassVar[str] = "generic"
    idn: ClassVar[str] = "labspin,sim,0,0"
    sources_current: ClassVar[bool] = False
    _table: ClassVar[CommandTable | None] = None
    _defaults: ClassVar[dict]

    def __init__(self, bench: "SimBench", address: str):
        self.bench = bench
        self.address = address
        self.clock = bench.clock
        self.errors: deque[tuple[int, str]] = deque()
        self._out: deque[str] = deque()
        self._init_faults()
        self.output_on = False
        self.level = 0.0
        self.s: dict[str, Any] = {}
        self.esr = 0
        self.ese = 0
        self.sre = 0
        cls = type(self)
        if cls.__dict__.get("_table") is None:
            cls._build_table()
        self._parser = KeithleyParser(cls._table)
        self.reset()

    # ---- table ---------------------------------------------------------------------------
    @classmethod
    def _build_table(cls) -> None:
        t = CommandTable()
        cls._defaults = {}
        cls._commands(t)
        cls._table = t

    @classmethod
    def _commands(cls, t: CommandTable) -> None:
        """Register this class's commands (subclasses call super() first)."""

    @classmethod
    def setting(cls, t: CommandTable, pattern: str, key: str, kind, default,
                hook: str | None = None, query: bool = True, guard: str | None = None) -> None:
        """A stored parameter: set validates with ``kind``, query echoes it; ``hook`` runs after set;
        ``guard`` (a method name) runs first and may refuse the change (a ScpiError)."""
        cls._defaults[key] = default

        def _set(inst, params, sfx, key=key, kind=kind, hook=hook, guard=guard):
            if guard is not None:
                getattr(inst, guard)()
            if not params:
                raise err(-109)
            inst.s[key] = kind.parse(params[0])
            if hook is not None:
                getattr(inst, hook)()

        def _query(inst, params, sfx, key=key, kind=kind):
            return kind.fmt(inst.s[key])

        t.add(pattern, set=_set, query=_query if query else None)

    @classmethod
    def list_setting(cls, t: CommandTable, pattern: str, key: str, kind, max_points: int,
                     guard: str | None = None) -> None:
        """A stored list of numbers (``SOUR:LIST:CURR v1,v2,...``) with ``:APPend`` and ``:POINts?``.

        Every value is checked with ``kind`` before the list changes, so one bad value leaves the
        list as it was (error queue: −222 / −104); more than ``max_points`` in all gives −222.
        Stored as a tuple: ``reset()`` copies the defaults shallowly.
        """
        cls._defaults[key] = ()

        def _values(params, kind=kind):
            if not params:
                raise err(-109)
            return tuple(kind.parse(p) for p in params)

        def _set(inst, params, sfx, key=key):
            if guard is not None:
                getattr(inst, guard)()
            vals = _values(params)
            if len(vals) > max_points:
                raise err(-222)
            inst.s[key] = vals

        def _append(inst, params, sfx, key=key):
            if guard is not None:
                getattr(inst, guard)()
            vals = inst.s[key] + _values(params)
            if len(vals) > max_points:
                raise err(-222)
            inst.s[key] = vals

        t.add(pattern, set=_set, query=lambda i, p, s, key=key, kind=kind:
              ",".join(kind.fmt(v) for v in i.s[key]))
        t.add(pattern + ":APPend", set=_append)
        t.add(pattern + ":POINts", query=lambda i, p, s, key=key: str(len(i.s[key])))

    # ---- life cycle ----------------------------------------------------------------------
    def reset(self) -> None:
        """``*RST``: settings back to defaults; outputs off."""
        self.s = dict(type(self)._defaults)

    # ---- I/O (called by the VISA library) ------------------------------------------------
    def write(self, message: str) -> None:
        bench = self.bench
        bench._log(self.address, "write", message)
        if self._faults:
            self._apply_faults(message)
        if self._disconnected:
            raise VisaIOError(constants.StatusCode.error_connection_lost)
        replies = self.execute(message)
        if replies:
            if self._lose_replies:
                self._lose_replies -= 1
                self._reply_lost = True   # the bus lost it: the instrument logs no error
                return
            if self._late_replies:
                self._late_replies -= 1
                self._late.extend(replies)  # comes after the reader has timed out (see read)
                return
            self._out.extend(replies)

    def read(self) -> str:
        if self._disconnected:
            raise VisaIOError(constants.StatusCode.error_connection_lost)
        if not self._out:
            if self._late:
                # a late reply: this read times out, then the reply arrives and waits in the
                # output queue for whichever read comes next (RS-232/socket-like stream), until a
                # device clear drops it
                self._out.extend(self._late)
                self._late.clear()
            elif self._reply_lost:
                self._reply_lost = False
            else:
                self.on_read_empty()
            raise VisaIOError(constants.StatusCode.error_timeout)
        reply = self._out.popleft()
        self.bench._log(self.address, "read", reply)
        return reply

    def on_read_empty(self) -> None:
        """A read with nothing to send: Keithleys queue −420 ``Query UNTERMINATED``."""

    def clear(self) -> None:
        """Device clear (VISA viClear / GPIB SDC): drop pending replies, late ones included
        (IEEE 488.2 §5.8: a device clear empties the input buffer and the output queue)."""
        self._out.clear()
        self._late.clear()

    def trigger(self) -> None:
        """GPIB GET / ``*TRG``."""

    def execute(self, message: str) -> list[str]:
        raise NotImplementedError

    # ---- errors and status ---------------------------------------------------------------
    def push_error(self, code: int, text: str | None = None) -> None:
        self.errors.append((code, text or KEITHLEY_ERRORS.get(code, "Error")))
        if len(self.errors) > 10:
            self.errors.popleft()
            self.errors[-1] = (-350, KEITHLEY_ERRORS[-350])
        if -199 <= code <= -100:
            self.esr |= 1 << 5
        elif -299 <= code <= -200:
            self.esr |= 1 << 4
        elif -399 <= code <= -300:
            self.esr |= 1 << 3
        elif -499 <= code <= -400:
            self.esr |= 1 << 2

    def stb(self) -> int:
        """Status byte; subclasses add their summary bits."""
        return 0

    # ---- sourcing ------------------------------------------------------------------------
    def _set_output(self, on: bool, level: float) -> None:
        """Record an output change and feed the actual current to the Hall bar."""
        if on != self.output_on or level != self.level:
            self.output_on = on
            self.level = level
            self.bench._record_output(self.address, on, level)
        self._drive(self.actual_current() if on else 0.0)

    def actual_current(self) -> float:
        return self.level

    def _drive(self, current: float) -> None:
        self.bench._set_contribution(self.address, current)
