"""Simulated Keithley 2450 SourceMeter, native command set (scpi.md §6.2, §8.4).

Same wiring and physics as the 2400 (see keithley2400.py); differences: compliance is
``:SOUR:CURR:VLIM`` (0.02…210 V, negative refused with −222) with ``:SOUR:CURR:VLIM:TRIP?``,
``:READ?`` returns one value (the voltage reading) unless elements are named
(``:READ? "defbuffer1", READ, SOUR, REL``).
"""
from __future__ import annotations

from ..scpi import CommandTable, unquote
from .base import Bool, Num, err
from .keithley2400 import SourceMeter, _e


class Keithley2450(SourceMeter):
    model = "2450"
    idn = "KEITHLEY INSTRUMENTS,MODEL 2450,04321987,1.7.3c"

    @classmethod
    def _commands(cls, t: CommandTable) -> None:
        super()._commands(t)
        S = cls.setting
        S(t, ":SOURce:CURRent:VLIMit[:LEVel]", "vlim", Num(0.02, 210), 21.0, hook="_changed")
        t.add(":SOURce:CURRent:VLIMit[:LEVel]:TRIPped", query=lambda i, p, s: "1" if i._tripped else "0")
        S(t, ":SOURce:VOLTage:ILIMit[:LEVel]", "ilim", Num(1e-9, 1.05), 105e-6, hook="_changed")
        t.add(":SOURce:VOLTage:ILIMit[:LEVel]:TRIPped", query=lambda i, p, s: "0")
        S(t, ":SOURce:CURRent:DELay", "sour_delay", Num(0, 1e4), 0.0, hook="_delay_set")
        S(t, ":SOURce:CURRent:DELay:AUTO", "sour_delay_auto", Bool(), True)
        for fn in ("VOLTage[:DC]", "CURRent[:DC]", "RESistance"):
            S(t, f":SENSe:{fn}:RSENse", "rsense", Bool(), False)
        t.add(":MEASure[:VOLTage][:DC]", query=lambda i, p, s: i.read_reply(p))
        t.add(":MEASure:CURRent[:DC]", query=lambda i, p, s: i.read_reply(p, element="SOUR"))

    def compliance_voltage(self) -> float:
        return self.s["vlim"]

    def compliance_current(self) -> float:
        return self.s["ilim"]

    def source_delay(self) -> float:
        return 50e-6 if self.s["sour_delay_auto"] else self.s["sour_delay"]

    def _delay_set(self) -> None:
        self.s["sour_delay_auto"] = False

    def read_reply(self, p: list[str], element: str = "READ") -> str:
        n = int(self.s["trig_count"])
        return ",".join(self.format(self.measure(), p, element) for _ in range(n))

    def format(self, rec, p: list[str], element: str = "READ") -> str:
        els = [unquote(x).upper() for x in p[1:]] or [element]
        out = []
        for e in els:
            if e.startswith("READ"):
                out.append(rec[0])
            elif e.startswith("SOUR"):
                out.append(rec[1])
            elif e.startswith("REL") or e.startswith("SEC") or e.startswith("TST"):
                out.append(rec[3])
            elif e.startswith("STAT"):
                out.append(float(rec[4]))
            else:
                raise err(-224)
        return ",".join(_e(x) for x in out)
