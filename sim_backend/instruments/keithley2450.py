"""Simulated Keithley 2450 SourceMeter, native command set (scpi.md §6.2, §8.4).

Same wiring and physics as the 2400 (see keithley2400.py); differences: compliance is
``:SOUR:CURR:VLIM`` (0.02…210 V, negative refused with −222) with ``:SOUR:CURR:VLIM:TRIP?``,
``:READ?`` returns one value (the voltage reading) unless elements are named
(``:READ? "defbuffer1", READ, SOUR, REL``). Remote sense is set per measure function
(``:SENS:VOLT:RSEN``, ``:SENS:CURR:RSEN``, ``:SENS:RES:RSEN``); a voltage reading uses the VOLT
one. Over-voltage protection ``:SOUR:VOLT:PROT PROT2|PROT5|…|PROT180|NONE`` (2 V … 180 V, RM
"Overvoltage protection"; in effect when sourcing current too) with ``:SOUR:VOLT:PROT:TRIP?``.

Command set (RM B-5 ``*LANG``): ``language`` is "SCPI" (default), "TSP" or "SCPI2400";
``*LANG <set>`` takes effect at the next ``power_cycle()``. In TSP mode only the common
``*`` commands are understood; anything else is a TSP syntax error and gets no reply, as on the
real instrument. Tests set ``bench.instrument(addr).language = "TSP"`` to put it there.
"""
from __future__ import annotations

import math

from ..scpi import CommandTable, unquote
from .errors import err
from .keithley2400 import SourceMeter, _e
from .params import Bool, Enum, Num

OVP_LEVELS = {"PROT2": 2.0, "PROT5": 5.0, "PROT10": 10.0, "PROT20": 20.0, "PROT40": 40.0,
              "PROT60": 60.0, "PROT80": 80.0, "PROT100": 100.0, "PROT120": 120.0,
              "PROT140": 140.0, "PROT160": 160.0, "PROT180": 180.0, "NONE": math.inf}
LANGUAGES = ("SCPI", "TSP", "SCPI2400")


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
        for fn, key in (("VOLTage[:DC]", "rsense_volt"), ("CURRent[:DC]", "rsense_curr"),
                        ("RESistance", "rsense_res")):
            S(t, f":SENSe:{fn}:RSENse", key, Bool(), False, hook="_changed")
        S(t, ":SOURce:VOLTage:PROTection[:LEVel]", "ovp", Enum(*OVP_LEVELS), "NONE", hook="_changed")
        t.add(":SOURce:VOLTage:PROTection[:LEVel]:TRIPped",
              query=lambda i, p, s: "1" if i._ovp_tripped else "0")
        t.add("*LANG", set=lambda i, p, s: i._set_lang(p), query=lambda i, p, s: i.language)
        t.add(":MEASure[:VOLTage][:DC]", query=lambda i, p, s: i.read_reply(p))
        t.add(":MEASure:CURRent[:DC]", query=lambda i, p, s: i.read_reply(p, element="SOUR"))

    def __init__(self, bench, address):
        self.language = "SCPI"
        self.pending_language = "SCPI"
        super().__init__(bench, address)

    def _set_lang(self, p: list[str]) -> None:
        if not p:
            raise err(-109)
        u = unquote(p[0]).upper()
        if u not in LANGUAGES:
            raise err(-224)
        self.pending_language = u

    def power_cycle(self) -> None:
        """Power off and on: the command set chosen with ``*LANG`` takes effect; settings reset."""
        self.language = self.pending_language
        self.reset()

    def execute(self, message: str) -> list[str]:
        if self.language == "TSP":
            units = [u.strip() for u in message.split(";") if u.strip()]
            if any(not u.lstrip(":").startswith("*") for u in units):
                self.push_error(-285, "TSP Syntax error at line 1: unexpected symbol")
                return []
        return super().execute(message)

    def _latch(self, bits: int) -> None:
        """The 2450 has no 2400-style compliance bits in a measurement event register."""

    def four_wire(self) -> bool:
        return bool(self.s["rsense_volt"])

    def ovp(self) -> float:
        return OVP_LEVELS[self.s["ovp"]]

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
