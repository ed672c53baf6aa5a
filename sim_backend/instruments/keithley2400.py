"""Simulated Keithley 2400 SourceMeter, "SCPI 2400" command set (scpi.md §6.1, §8.3).

Wiring: FORCE HI/LO drive current along the channel through leads of ``lead_resistance`` ohm;
the SENSE HI/LO leads sit on the Hall cross. As on the real instrument the SMU powers up in
2-wire sense (2400 UM 18-112 ``:SYST:RSEN``, default OFF; 2450 ``:SENS:VOLT:RSEN``): it then
measures at its FORCE terminals, V = I·(R_xx + leads) — the channel, not the Hall voltage. Only
with remote sense ON does it read the cross: V = I·R_H + thermal EMF + noise (σ = 0.3 µV/√NPLC).

Limits on a current source (UM2400 18-68, 18-81; 2450 RM "Source-measure considerations"): the
compliance (``:SENS:VOLT:PROT`` / 2450 ``VLIM``) acts on the *measured* voltage, so in 4-wire it
watches the Hall voltage and no longer protects the channel; the over-voltage protection
``:SOUR:VOLT:PROT`` limits the FORCE terminals in every mode. Either limit clamps the current;
compliance sets the status-word bit 3, ``…:TRIP?`` and (2400) the latched measurement event
bits 14 (compliance) / 13 (OVP) of ``:STAT:MEAS?`` (UM2400 15-14).

Time: every message costs ``bench.bus_latency`` of virtual time (default 1 ms: GPIB transfer and
command parsing), so a software-timed pulse (``OUTP ON`` … ``OUTP OFF``) lasts the host's wait
plus one message latency. A reading takes the source delay plus NPLC line cycles; with
``:SOUR:CLE:AUTO ON`` the output is on only during the reading.
"""
from __future__ import annotations

import math

from ..scpi import CommandTable, unquote
from .errors import err
from .keithley import KeithleyInstrument
from .params import Bool, Enum, Int, Num, nr3

NOISE_1PLC = 0.3e-6     # V rms at 1 PLC
NAN_READING = 9.91e37
LEAD_RESISTANCE = 20.0  # ohm, FORCE leads + contacts in series with the channel (2-wire reads)
BUS_LATENCY = 1e-3      # s per message when the bench does not say
COMPLIANCE_EVENT, OVP_EVENT = 1 << 14, 1 << 13    # 2400 measurement event register (UM 15-14)


def _e(x: float) -> str:
    return f"{x:+.6E}"


class _Ovp2400(Num):
    """2400 ``:SOUR:VOLT:PROT``: 20, 40, 60, 80, 100, 120, 160 V or NONE (> 160 V). A value between
    levels selects the lower one, below 20 V selects 20 V (UM2400 18-81)."""

    LEVELS = (20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 160.0)

    def __init__(self):
        super().__init__(-210, 210, default=math.inf)

    def parse(self, p: str) -> float:
        u = p.strip().upper()
        if u in ("NONE", "DEF", "DEFAULT", "MAX", "MAXIMUM"):
            return math.inf
        v = abs(super().parse(p))
        if v > self.LEVELS[-1]:
            return math.inf
        return max([lv for lv in self.LEVELS if lv <= v] or [self.LEVELS[0]])

    def fmt(self, v: float) -> str:
        return nr3(210.0 if v == math.inf else v)


class SourceMeter(KeithleyInstrument):
    """What the 2400 and 2450 share: sourcing, compliance, sensing the Hall voltage."""

    sources_current = True

    @classmethod
    def _commands(cls, t: CommandTable) -> None:
        super()._commands(t)
        S = cls.setting
        S(t, ":SOURce:FUNCtion[:MODE]", "func", Enum("CURRent", "VOLTage", "MEMory"), "VOLT", hook="_changed")
        S(t, ":SOURce:CURRent[:LEVel][:IMMediate][:AMPLitude]", "curr", Num(-1.05, 1.05), 0.0, hook="_changed")
        S(t, ":SOURce:CURRent:RANGe", "curr_range", Num(-1.05, 1.05), 1e-4, hook="_curr_range_set")
        S(t, ":SOURce:CURRent:RANGe:AUTO", "curr_range_auto", Bool(), True)
        S(t, ":SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]", "volt", Num(-210, 210), 0.0, hook="_changed")
        S(t, ":SOURce:VOLTage:RANGe", "volt_range", Num(-210, 210), 21.0)
        S(t, ":SOURce:VOLTage:RANGe:AUTO", "volt_range_auto", Bool(), True)
        S(t, ":OUTPut[:STATe]", "outp", Bool(), False, hook="_changed")
        S(t, ":ROUTe:TERMinals", "terminals", Enum("FRONt", "REAR"), "FRON")
        for fn in ("VOLTage[:DC]", "CURRent[:DC]", "RESistance"):
            S(t, f"[:SENSe]:{fn}:NPLCycles", "nplc", Num(0.01, 10), 1.0)
        S(t, "[:SENSe]:VOLTage[:DC]:RANGe[:UPPer]", "sense_vrange", Num(-210, 210), 21.0, hook="_vrange_set")
        S(t, "[:SENSe]:VOLTage[:DC]:RANGe:AUTO", "sense_vrange_auto", Bool(), True)
        S(t, "[:SENSe]:CURRent[:DC]:RANGe[:UPPer]", "sense_irange", Num(-1.05, 1.05), 1e-4)
        S(t, "[:SENSe]:CURRent[:DC]:RANGe:AUTO", "sense_irange_auto", Bool(), True)
        S(t, "[:SENSe]:RESistance:MODE", "res_mode", Enum("MANual", "AUTO"), "MAN")
        t.add("[:SENSe]:FUNCtion[:ON]", set=lambda i, p, s: i._sense_on(p),
              query=lambda i, p, s: ",".join(f'"{f}"' for f in i._sense_funcs))
        t.add("[:SENSe]:FUNCtion[:ON]:ALL", set=lambda i, p, s: i._sense_funcs.update(("VOLT:DC", "CURR:DC", "RES")))
        t.add("[:SENSe]:FUNCtion:OFF:ALL", set=lambda i, p, s: i._sense_funcs.clear())
        S(t, "[:SENSe]:FUNCtion:CONCurrent", "concurrent", Bool(), True)
        t.add(":INITiate[:IMMediate]", set=lambda i, p, s: i._initiate())
        t.add(":ABORt", set=lambda i, p, s: None)
        t.add(":READ", query=lambda i, p, s: i.read_reply(p))
        t.add(":FETCh", query=lambda i, p, s: i.fetch_reply(p))
        S(t, ":TRIGger:COUNt", "trig_count", Int(1, 2500), 1)
        S(t, ":TRIGger:DELay", "trig_delay", Num(0, 999.9999), 0.0)
        S(t, ":ARM:COUNt", "arm_count", Int(1, 2500), 1)
        S(t, ":ARM:SOURce", "arm_source", Enum("IMMediate", "TIMer", "MANual", "BUS", "TLINk",
                                               "NSTest", "PSTest", "BSTest"), "IMM")
        S(t, ":TRIGger:SOURce", "trig_source", Enum("IMMediate", "TLINk"), "IMM")
        for k in ("ARM", "TRIGger"):
            S(t, f":{k}:ILINe", k[:3].lower() + "_iline", Int(1, 4), 1)
            S(t, f":{k}:OLINe", k[:3].lower() + "_oline", Int(1, 4), 2)
        S(t, ":ARM:OUTPut", "arm_output", Enum("TENTer", "TEXit", "NONE"), "NONE")
        S(t, ":TRIGger:OUTPut", "trig_output", Enum("SOURce", "DELay", "SENSe", "NONE"), "NONE")
        S(t, ":TRACe:FEED:CONTrol", "trac_feed_cont", Enum("NEXT", "NEVer"), "NEV")
        S(t, ":TRACe:POINts", "trac_points", Int(1, 2500), 100)
        t.add(":TRACe:CLEar", set=lambda i, p, s: None)

    def __init__(self, bench, address):
        self._tripped = False
        self._ovp_tripped = False
        self.lead_resistance = LEAD_RESISTANCE
        self._sense_funcs: set[str] = {"VOLT:DC"}
        self._last: tuple[float, float, float, float, int] | None = None
        super().__init__(bench, address)

    def write(self, message: str) -> None:
        """Each message reaches the instrument one bus latency later (virtual time)."""
        self.clock.advance(getattr(self.bench, "bus_latency", BUS_LATENCY))
        super().write(message)

    def reset(self) -> None:
        super().reset()
        self._sense_funcs = {"VOLT:DC"}
        self._tripped = self._ovp_tripped = False
        if hasattr(self, "bench"):
            self._changed()

    # ---- settings hooks ------------------------------------------------------------------
    def _curr_range_set(self) -> None:
        self.s["curr_range_auto"] = False

    def _vrange_set(self) -> None:
        self.s["sense_vrange_auto"] = False

    def _sense_on(self, p: list[str]) -> None:
        for x in p:
            u = unquote(x).upper()
            if u.startswith("VOLT"):
                self._sense_funcs.add("VOLT:DC")
            elif u.startswith("CURR"):
                self._sense_funcs.add("CURR:DC")
            elif u.startswith("RES"):
                self._sense_funcs.add("RES")
            else:
                raise err(-224)

    def compliance_voltage(self) -> float:
        raise NotImplementedError

    def compliance_current(self) -> float:
        raise NotImplementedError

    def four_wire(self) -> bool:
        """Whether voltage is sensed at the SENSE terminals (the Hall cross)."""
        raise NotImplementedError

    def ovp(self) -> float:
        """Over-voltage protection of the FORCE terminals (V; inf = NONE)."""
        raise NotImplementedError

    def loop_resistance(self) -> float:
        return self.bench.hallbar.longitudinal_resistance + self.lead_resistance

    def _latch(self, bits: int) -> None:
        """Set event bits (the 2400's measurement event register; the 2450 has none here)."""
        self.event["meas"] |= bits

    def _programmed_current(self) -> float:
        if self.s["func"] == "CURR":
            return self.s["curr"]
        rxx = self.bench.hallbar.longitudinal_resistance
        return self.s["volt"] / rxx

    def _changed(self) -> None:
        self._set_output(bool(self.s["outp"]), self._programmed_current())

    def actual_current(self) -> float:
        i = self.level
        self._ovp_tripped = False
        if i == 0.0:
            self._tripped = False
            return 0.0
        if self.consume_compliance_fault():
            self._tripped = True
            self._latch(COMPLIANCE_EVENT)
            return 0.0
        if self.s["func"] == "CURR":
            r_loop = self.loop_resistance()
            # compliance watches the measured voltage: the channel in 2-wire, the cross in 4-wire
            r_sense = abs(self.bench.hallbar.hall_resistance) if self.four_wire() else r_loop
            vmax = abs(self.compliance_voltage())
            a = abs(i)
            tripped = False
            if r_sense > 0 and a * r_sense > vmax:
                a, tripped = vmax / r_sense, True
            if a * r_loop > self.ovp():                 # OVP limits the FORCE terminals always
                a, tripped = self.ovp() / r_loop, True
                self._ovp_tripped = True
                self._latch(OVP_EVENT)
            self._tripped = tripped
            if tripped:
                self._latch(COMPLIANCE_EVENT)
                return math.copysign(a, i)
        else:
            imax = abs(self.compliance_current())
            if abs(i) > imax:
                self._tripped = True
                self._latch(COMPLIANCE_EVENT)
                return math.copysign(imax, i)
        self._tripped = False
        return i

    def condition(self, k: str) -> int:
        if k != "meas":
            return 0
        on = self.output_on
        return (COMPLIANCE_EVENT if on and self._tripped else 0) | (OVP_EVENT if on and self._ovp_tripped else 0)

    # ---- measuring -----------------------------------------------------------------------
    def source_delay(self) -> float:
        return self.s.get("sour_delay", 0.0)

    def measure(self) -> tuple[float, float, float, float, int]:
        """One reading (V, I, R, time, status); advances the clock by delay + NPLC."""
        bench = self.bench
        auto_off = self.s.get("clear_auto", False) and not self.output_on
        if auto_off:
            self._set_output(True, self._programmed_current())
        self.clock.advance(self.source_delay() + self.s["trig_delay"] + self.s["nplc"] * self.line_period)
        bench.flush()
        i_act = bench._contrib.get(self.address, 0.0)
        noise = NOISE_1PLC / math.sqrt(self.s["nplc"]) * bench.noise()
        hb = bench.hallbar
        if self.output_on and self.s["func"] == "VOLT":
            v = i_act * (hb.longitudinal_resistance + self.lead_resistance)
        elif self.four_wire():        # SENSE leads on the Hall cross
            v = bench.channel_current * hb.read_resistance(bench.clock.now) + bench.thermal_emf() + noise
        else:                         # 2-wire: the FORCE terminals, i.e. channel + own leads
            v = bench.channel_current * hb.longitudinal_resistance + i_act * self.lead_resistance + noise
        status = 8 if self._tripped else 0
        r = v / i_act if ("RES" in self._sense_funcs and i_act) else NAN_READING
        rec = (v, i_act, r, self.clock.now, status)
        if auto_off:
            self._set_output(False, self._programmed_current())
        self._last = rec
        return rec

    def _initiate(self) -> None:
        for _ in range(int(self.s["trig_count"]) * int(self.s["arm_count"])):
            self.measure()

    def read_reply(self, p: list[str]) -> str:
        n = int(self.s["trig_count"]) * int(self.s["arm_count"])
        return ",".join(self.format(self.measure(), p) for _ in range(n))

    def fetch_reply(self, p: list[str]) -> str:
        if self._last is None:
            raise err(-230)
        return self.format(self._last, p)

    def format(self, rec, p: list[str]) -> str:
        raise NotImplementedError


class Keithley2400(SourceMeter):
    model = "2400"
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C32   Oct  4 2010 14:20:11/A02  /K/J"
    _ELEMENTS = ("VOLT", "CURR", "RES", "TIME", "STAT")

    @classmethod
    def _commands(cls, t: CommandTable) -> None:
        super()._commands(t)
        S = cls.setting
        S(t, ":SOURce:CURRent:MODE", "curr_mode", Enum("FIXed", "LIST", "SWEep"), "FIX")
        S(t, "[:SENSe]:VOLTage[:DC]:PROTection[:LEVel]", "vprot", Num(-210, 210), 21.0, hook="_changed")
        S(t, "[:SENSe]:CURRent[:DC]:PROTection[:LEVel]", "iprot", Num(-1.05, 1.05), 105e-6, hook="_changed")
        t.add("[:SENSe]:VOLTage[:DC]:PROTection:TRIPped", query=lambda i, p, s: "1" if i._tripped else "0")
        t.add("[:SENSe]:CURRent[:DC]:PROTection:TRIPped", query=lambda i, p, s: "0")
        S(t, ":SOURce:DELay", "sour_delay", Num(0, 999.9999), 0.0, hook="_delay_set")
        S(t, ":SOURce:DELay:AUTO", "sour_delay_auto", Bool(), True)
        S(t, ":SOURce:CLEar:AUTO", "clear_auto", Bool(), False, hook="_changed")
        t.add(":SOURce:CLEar[:IMMediate]", set=lambda i, p, s: i._clear())
        S(t, ":OUTPut:SMODe", "smode", Enum("HIMPedance", "NORMal", "ZERO", "GUARd"), "NORM")
        S(t, ":SYSTem:RSENse", "rsense", Bool(), False, hook="_changed")
        S(t, ":SOURce:VOLTage:PROTection[:LEVel]", "ovp", _Ovp2400(), math.inf, hook="_changed")
        t.add(":FORMat:ELEMents[:SENSe]", set=lambda i, p, s: i._form_elem(p),
              query=lambda i, p, s: ",".join(i.elements))
        t.add(":MEASure[:VOLTage][:DC]", query=lambda i, p, s: i._meas(p, "VOLT:DC"))
        t.add(":MEASure:CURRent[:DC]", query=lambda i, p, s: i._meas(p, "CURR:DC"))
        t.add(":MEASure:RESistance", query=lambda i, p, s: i._meas(p, "RES"))

    def __init__(self, bench, address):
        self.elements = list(self._ELEMENTS)
        super().__init__(bench, address)

    def reset(self) -> None:
        self.elements = list(self._ELEMENTS)
        super().reset()

    def compliance_voltage(self) -> float:
        return self.s["vprot"]

    def compliance_current(self) -> float:
        return self.s["iprot"]

    def four_wire(self) -> bool:
        return bool(self.s["rsense"])

    def ovp(self) -> float:
        return self.s["ovp"]

    def source_delay(self) -> float:
        return 1e-3 if self.s["sour_delay_auto"] else self.s["sour_delay"]

    def _delay_set(self) -> None:
        self.s["sour_delay_auto"] = False

    def _clear(self) -> None:
        self.s["outp"] = False
        self._changed()

    def _form_elem(self, p: list[str]) -> None:
        els = []
        for x in p:
            u = x.upper()
            key = next((e for e in self._ELEMENTS if u.startswith(e)), None)
            if key is None:
                raise err(-224)
            els.append(key)
        if not els:
            raise err(-109)
        self.elements = [e for e in self._ELEMENTS if e in els]

    def _meas(self, p: list[str], fn: str) -> str:
        """``:MEAS:<fn>?`` re-configures: turns the output on, enables the function, then reads."""
        self._sense_funcs.add(fn)
        if not self.output_on:
            self.s["outp"] = True
            self._changed()
        return self.read_reply(p)

    def format(self, rec, p: list[str]) -> str:
        idx = {"VOLT": 0, "CURR": 1, "RES": 2, "TIME": 3, "STAT": 4}
        return ",".join(_e(float(rec[idx[e]])) for e in self.elements)
