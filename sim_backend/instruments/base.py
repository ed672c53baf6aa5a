"""Shared machinery of the simulated instruments: message handling, error queue, status bytes,
settings declared once in a command table, faults and output bookkeeping.

Each instrument class declares its commands in ``_commands(cls, t)``; the table is built once per
class (``CommandTable`` resolves headers, then caches), so a message costs a dict lookup and one
handler call.
"""
from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from pyvisa import constants
from pyvisa.errors import VisaIOError

from ..scpi import CommandTable, KeithleyParser, ScpiError, parse_srs, split_commands, unquote

if TYPE_CHECKING:  # pragma: no cover
    from ..bench import SimBench

KEITHLEY_ERRORS = {
    -100: "Command error", -101: "Invalid character", -102: "Syntax error", -104: "Data type error",
    -108: "Parameter not allowed", -109: "Missing parameter", -113: "Undefined header",
    -200: "Execution error", -213: "Init ignored", -214: "Trigger deadlock", -221: "Settings conflict",
    -222: "Parameter data out of range", -224: "Illegal parameter value", -230: "Data corrupt or stale",
    -300: "Device-specific error", -310: "System error", -350: "Queue overflow",
    -410: "Query INTERRUPTED", -420: "Query UNTERMINATED",
}


def err(code: int) -> ScpiError:
    return ScpiError(code, KEITHLEY_ERRORS.get(code, "Error"))


def nr3(v: float) -> str:
    """Keithley NR3 reply, e.g. ``1.000000E-03``."""
    return f"{v:.6E}"


# --------------------------------------------------------------------------------------------
# Parameter kinds: parse(str) -> value (ScpiError on bad input), fmt(value) -> reply text.

class Num:
    """A real parameter with a range; MIN/MAX/DEF and INF (when allowed) are accepted."""

    __slots__ = ("lo", "hi", "inf", "fmt_", "default")

    def __init__(self, lo: float = -math.inf, hi: float = math.inf, *, inf: bool = False,
                 fmt=nr3, default: float | None = None):
        self.lo, self.hi, self.inf, self.fmt_, self.default = lo, hi, inf, fmt, default

    def parse(self, p: str) -> float:
        try:
            v = float(p)
        except ValueError:
            u = p.upper()
            if u in ("MIN", "MINIMUM"):
                return self.lo
            if u in ("MAX", "MAXIMUM"):
                return self.hi
            if u in ("DEF", "DEFAULT") and self.default is not None:
                return self.default
            if u in ("INF", "INFINITY"):
                v = math.inf
            else:
                raise err(-104) from None
        if v == math.inf and self.inf:
            return v
        if not (self.lo <= v <= self.hi):
            raise err(-222)
        return v

    def fmt(self, v: float) -> str:
        if v == math.inf:
            return "9.9E37"
        return self.fmt_(v)


class Int(Num):
    def parse(self, p: str) -> float:
        v = super().parse(p)
        return v if v == math.inf else int(round(v))

    def fmt(self, v) -> str:
        return "9.9E37" if v == math.inf else str(int(v))


class Bool:
    __slots__ = ()

    def parse(self, p: str) -> bool:
        u = p.upper()
        if u in ("1", "ON", "1.0"):
            return True
        if u in ("0", "OFF", "0.0"):
            return False
        raise err(-224)

    def fmt(self, v: bool) -> str:
        return "1" if v else "0"


class Enum:
    """SCPI character data: choices as patterns (``IMMediate``); stored and echoed as short forms."""

    __slots__ = ("_map",)

    def __init__(self, *choices: str):
        self._map: dict[str, str] = {}
        for c in choices:
            short = "".join(ch for ch in c if not ch.islower())
            self._map[c.upper()] = short
            self._map[short] = short

    def parse(self, p: str) -> str:
        v = self._map.get(unquote(p).upper())
        if v is None:
            raise err(-224)
        return v

    def fmt(self, v: str) -> str:
        return v


# --------------------------------------------------------------------------------------------

class _Fault:
    __slots__ = ("kind", "after", "count")

    def __init__(self, kind: str, after: int, count: int):
        self.kind, self.after, self.count = kind, after, count


class SimInstrument:
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
        self._faults: list[_Fault] = []
        self._disconnected = False
        self._lose_replies = 0
        self._reply_lost = False
        self._late_replies = 0
        self._late: list[str] = []     # replies held back by a "late" fault
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

    # ---- faults --------------------------------------------------------------------------
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
            self._compliance_faults = getattr(self, "_compliance_faults", 0) + f.count
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
        n = getattr(self, "_compliance_faults", 0)
        if n:
            self._compliance_faults = n - 1
            return True
        return False

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


class KeithleyInstrument(SimInstrument):
    """SCPI instruments: error queue, IEEE-488.2 common commands, status subsystem."""

    @classmethod
    def _commands(cls, t: CommandTable) -> None:
        super()._commands(t)
        t.add("*IDN", query=lambda i, p, s: i.idn)
        t.add("*RST", set=lambda i, p, s: i.reset())
        t.add("*CLS", set=lambda i, p, s: i.cls())
        t.add("*OPC", set=lambda i, p, s: i._set_opc(), query=lambda i, p, s: i.opc())
        t.add("*WAI", set=lambda i, p, s: None)
        t.add("*TRG", set=lambda i, p, s: i.trigger())
        t.add("*ESR", query=lambda i, p, s: i._read_esr())
        t.add("*ESE", set=lambda i, p, s: setattr(i, "ese", int(Int(0, 255).parse(p[0]))),
              query=lambda i, p, s: str(i.ese))
        t.add("*SRE", set=lambda i, p, s: setattr(i, "sre", int(Int(0, 255).parse(p[0]))),
              query=lambda i, p, s: str(i.sre))
        t.add("*STB", query=lambda i, p, s: str(i.stb()))
        t.add(":SYSTem:ERRor[:NEXT]", query=lambda i, p, s: i.next_error())
        t.add(":STATus:QUEue[:NEXT]", query=lambda i, p, s: i.next_error())
        t.add(":STATus:QUEue:CLEar", set=lambda i, p, s: i.errors.clear())
        t.add(":STATus:PRESet", set=lambda i, p, s: i.status_preset())
        for reg in ("MEASurement", "OPERation", "QUEStionable"):
            key = reg[:4].lower()
            t.add(f":STATus:{reg}[:EVENt]", query=lambda i, p, s, k=key: str(i._read_event(k)))
            t.add(f":STATus:{reg}:ENABle", set=lambda i, p, s, k=key: i._set_enable(k, p),
                  query=lambda i, p, s, k=key: str(i.enable[k]))
            t.add(f":STATus:{reg}:CONDition", query=lambda i, p, s, k=key: str(i.condition(k)))
        cls.setting(t, ":SYSTem:LFRequency", "lfr", Num(50, 60, fmt=lambda v: str(int(v))), 50.0,
                    hook="_lfr_changed")
        cls.setting(t, ":SYSTem:AZERo[:STATe]", "azero", Bool(), True)
        cls.setting(t, ":DISPlay:ENABle", "display", Bool(), True)
        cls.setting(t, ":FORMat[:DATA]", "form_data", Enum("ASCii", "SREal", "DREal"), "ASC")

    def __init__(self, bench, address):
        self.event = {"meas": 0, "oper": 0, "ques": 0}
        self.enable = {"meas": 0, "oper": 0, "ques": 0}
        super().__init__(bench, address)

    def reset(self) -> None:
        super().reset()
        self.s["lfr"] = self.bench.line_frequency

    def _lfr_changed(self) -> None:
        pass

    @property
    def line_period(self) -> float:
        return 1.0 / self.s["lfr"]

    def execute(self, message: str) -> list[str]:
        replies: list[str] = []
        for cmd in self._parser.parse(message):
            e = cmd.entry
            if e is None:
                self.push_error(-113)
                break
            try:
                if cmd.query:
                    if e.query is None:
                        raise err(-113)
                    replies.append(e.query(self, cmd.params, cmd.sfx))
                else:
                    if e.set is None:
                        raise err(-113)
                    e.set(self, cmd.params, cmd.sfx)
            except ScpiError as x:
                self.push_error(x.code, x.text)
        if len(replies) > 1:
            return [";".join(replies)]
        return replies

    def on_read_empty(self) -> None:
        self.push_error(-420)

    def next_error(self) -> str:
        if self.errors:
            code, text = self.errors.popleft()
            return f'{code},"{text}"'
        return '0,"No error"'

    def cls(self) -> None:
        self.errors.clear()
        self.esr = 0
        for k in self.event:
            self.event[k] = 0

    def status_preset(self) -> None:
        for k in self.enable:
            self.enable[k] = 0

    def _set_opc(self) -> None:
        self.esr |= 1

    def opc(self) -> str:
        return "1"

    def _read_esr(self) -> str:
        v, self.esr = self.esr, 0
        return str(v)

    def _read_event(self, k: str) -> int:
        v = self.event[k]
        self.event[k] = 0
        return v

    def _set_enable(self, k: str, p: list[str]) -> None:
        if not p:
            raise err(-109)
        self.enable[k] = int(Int(0, 65535).parse(p[0]))

    def condition(self, k: str) -> int:
        return 0

    def stb(self) -> int:
        v = 0
        if self.event["meas"] & self.enable["meas"]:
            v |= 1
        if self.errors:
            v |= 4
        if self.event["ques"] & self.enable["ques"]:
            v |= 8
        if self._out:
            v |= 16
        if self.esr & self.ese:
            v |= 32
        if self.event["oper"] & self.enable["oper"]:
            v |= 128
        if v & self.sre & ~64:
            v |= 64
        return v


class SrsInstrument(SimInstrument):
    """SRS lock-ins: no error queue; a bad command sets ESR bit 5 (CME), a bad value bit 4 (EXE)."""

    _srs: ClassVar[dict]
    needs_space: ClassVar[bool] = False

    @classmethod
    def _build_table(cls) -> None:
        super()._build_table()
        cls._srs = {}
        cls._srs_commands(cls._srs)

    @classmethod
    def _srs_commands(cls, d: dict) -> None:
        d["*IDN"] = (None, lambda i, p: i.idn)
        d["*RST"] = (lambda i, p: i.reset(), None)
        d["*CLS"] = (lambda i, p: i.cls(), None)
        d["*ESR"] = (None, lambda i, p: i._read_esr())
        d["*ESE"] = (lambda i, p: setattr(i, "ese", i._int(p, 0, 255)), lambda i, p: str(i.ese))
        d["*SRE"] = (lambda i, p: setattr(i, "sre", i._int(p, 0, 255)), lambda i, p: str(i.sre))
        d["*STB"] = (None, lambda i, p: str(i.stb()))
        d["*OPC"] = (lambda i, p: None, lambda i, p: "1")
        d["*TRG"] = (lambda i, p: i.trigger(), None)

    @classmethod
    def srs_setting(cls, d: dict, mnem: str, key: str, parse, fmt, default) -> None:
        cls._defaults[key] = default

        def _set(i, p, key=key, parse=parse):
            i.s[key] = parse(i, p)
            i._changed()

        d[mnem] = (_set, lambda i, p, key=key, fmt=fmt: fmt(i.s[key]))

    def _changed(self) -> None:
        """A setting changed (lock-ins refresh their input model)."""

    def execute(self, message: str) -> list[str]:
        replies: list[str] = []
        for mnem, query, params, spaced in parse_srs(message):
            h = self._srs.get(mnem)
            if h is None or h[1 if query else 0] is None or (
                    params and not spaced and self.needs_space):
                self.esr |= 1 << 5
                continue
            try:
                if query:
                    replies.append(h[1](self, params))
                else:
                    h[0](self, params)
            except ScpiError as x:
                self.esr |= (1 << 5) if -199 <= x.code <= -100 else (1 << 4)
        return self._join(replies)

    def _join(self, replies: list[str]) -> list[str]:
        return replies

    def cls(self) -> None:
        self.esr = 0

    def _read_esr(self) -> str:
        v, self.esr = self.esr, 0
        return str(v)

    def stb(self) -> int:
        v = 0
        if self._out:
            v |= 16
        if self.esr & self.ese:
            v |= 32
        if v & self.sre:
            v |= 64
        return v

    @staticmethod
    def _float(p: list[str], lo: float, hi: float) -> float:
        if not p:
            raise err(-109)         # missing parameter
        try:
            v = float(p[0])
        except ValueError:
            raise err(-104) from None   # data type error
        if not lo <= v <= hi:
            raise err(-222)         # out of range
        return v

    @classmethod
    def _int(cls, p: list[str], lo: int, hi: int) -> int:
        v = cls._float(p, lo, hi)
        if v != int(v):
            raise err(-222)
        return int(v)
