"""Keithley SCPI instruments: the IEEE 488.2 common commands, the error queue as SCPI reads it
and the status subsystem (measurement / operation / questionable event registers, status byte)."""
from __future__ import annotations

from ..scpi import CommandTable, ScpiError
from .errors import err
from .instrument import SimInstrument
from .params import Bool, Enum, Int, Num


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
