"""Simulated Keithley 2182A nanovoltmeter across the Hall cross (scpi.md §3, §8.2).

Channel 1 reads V_H = I·R_H + thermal EMF + noise (σ = 8 nV/√NPLC); channel 2 is open (noise
only); channel 0 is the internal temperature sensor. A reading takes NPLC line cycles of virtual
time (plus the trigger delay). The 6221 uses :meth:`aperture` and :meth:`noise_sigma` for Delta.
"""
from __future__ import annotations

import math
import statistics

from ..scpi import CommandTable, unquote
from .errors import err
from .keithley import KeithleyInstrument
from .params import Bool, Enum, Int, Num

NOISE_1PLC = 8e-9       # V rms at 1 PLC
RANGES = {1: (0.01, 0.1, 1.0, 10.0, 100.0), 2: (0.1, 1.0, 10.0)}
MAX_RANGE = {1: 120.0, 2: 12.0}
OVERFLOW = 9.9e37


def _v(x: float) -> str:
    return f"{x:+.9E}"


class Keithley2182(KeithleyInstrument):
    model = "2182A"
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2182A,1234567,C02  /A02"

    @classmethod
    def _commands(cls, t: CommandTable) -> None:
        super()._commands(t)
        S = cls.setting
        t.add("[:SENSe]:FUNCtion", set=lambda i, p, s: i._set_func(p), query=lambda i, p, s: f'"{i.s["func"]}"')
        cls._defaults["func"] = "VOLT:DC"
        S(t, "[:SENSe]:CHANnel", "chan", Int(0, 2), 1)
        S(t, "[:SENSe]:VOLTage[:DC]:NPLCycles", "nplc", Num(0.01, 60), 5.0)
        t.add("[:SENSe]:VOLTage[:DC]:CHANnel#:RANGe[:UPPer]", set=lambda i, p, s: i._set_range(s[0], p),
              query=lambda i, p, s: i._get_range(s[0]))
        t.add("[:SENSe]:VOLTage[:DC]:RANGe[:UPPer]", set=lambda i, p, s: i._set_range(i._ch(), p),
              query=lambda i, p, s: i._get_range(i._ch()))
        t.add("[:SENSe]:VOLTage[:DC]:CHANnel#:RANGe:AUTO", set=lambda i, p, s: i._set_auto(s[0], p),
              query=lambda i, p, s: "1" if i._auto[i._chk(s[0])] else "0")
        t.add("[:SENSe]:VOLTage[:DC]:RANGe:AUTO", set=lambda i, p, s: i._set_auto(i._ch(), p),
              query=lambda i, p, s: "1" if i._auto[i._ch()] else "0")
        t.add("[:SENSe]:VOLTage[:DC]:CHANnel#:REFerence", set=lambda i, p, s: i._set_ref(s[0], p),
              query=lambda i, p, s: _v(i._ref[i._chk(s[0])]))
        t.add("[:SENSe]:VOLTage[:DC]:CHANnel#:REFerence:STATe",
              set=lambda i, p, s: i._ref_state.__setitem__(i._chk(s[0]), Bool().parse(p[0])),
              query=lambda i, p, s: "1" if i._ref_state[i._chk(s[0])] else "0")
        t.add("[:SENSe]:VOLTage[:DC]:CHANnel#:REFerence:ACQuire",
              set=lambda i, p, s: i._ref.__setitem__(i._chk(s[0]), i._last_v))
        S(t, "[:SENSe]:VOLTage[:DC]:DELTa", "delta", Bool(), False)
        S(t, ":SYSTem:FAZero[:STATe]", "fazero", Bool(), True)
        t.add(":INITiate[:IMMediate]", set=lambda i, p, s: i.initiate())
        S(t, ":INITiate:CONTinuous", "init_cont", Bool(), False)
        t.add(":ABORt", set=lambda i, p, s: None)
        S(t, ":TRIGger:SOURce", "trig_source", Enum("IMMediate", "TIMer", "MANual", "BUS", "EXTernal"), "IMM")
        S(t, ":TRIGger:COUNt", "trig_count", Int(1, 9999, inf=True), 1)
        S(t, ":TRIGger:DELay", "trig_delay", Num(0, 999999.999), 0.0)
        S(t, ":TRIGger:DELay:AUTO", "trig_delay_auto", Bool(), True)
        S(t, ":TRIGger:TIMer", "trig_timer", Num(1e-3, 999999.999), 0.1)
        S(t, ":SAMPle:COUNt", "samp_count", Int(1, 1024), 1)
        S(t, ":TRACe:POINts", "trac_points", Int(2, 1024), 1024)
        t.add(":TRACe:POINts:ACTual", query=lambda i, p, s: str(len(i.buffer)))
        S(t, ":TRACe:FEED", "trac_feed", Enum("SENSe", "SENSe1", "CALCulate", "CALCulate1", "NONE"), "SENS")
        S(t, ":TRACe:FEED:CONTrol", "trac_feed_cont", Enum("NEXT", "NEVer"), "NEV")
        t.add(":TRACe:CLEar", set=lambda i, p, s: i.buffer.clear())
        t.add(":TRACe:DATA", query=lambda i, p, s: ",".join(_v(x) for x in i.buffer))
        S(t, ":CALCulate#:FORMat", "calc2_form", Enum("MEAN", "MAXimum", "MINimum", "SDEViation", "PKPK"), "MEAN")
        S(t, ":CALCulate#:STATe", "calc2_state", Bool(), False)
        t.add(":CALCulate#:IMMediate", set=lambda i, p, s: i._calc(), query=lambda i, p, s: _v(i._calc()))
        t.add(":CALCulate#:DATA", query=lambda i, p, s: _v(i._calc_value))
        t.add(":FETCh", query=lambda i, p, s: i.fetch())
        t.add(":READ", query=lambda i, p, s: i.read_value())
        t.add(":MEASure[:VOLTage][:DC]", query=lambda i, p, s: i.read_value())
        t.add("[:SENSe]:DATA[:LATest]", query=lambda i, p, s: i.fetch())
        t.add("[:SENSe]:DATA:FRESh", query=lambda i, p, s: i.read_value(fresh=True))

    def __init__(self, bench, address):
        self.buffer: list[float] = []
        self._auto = {1: True, 2: True}
        self._range = {1: 100.0, 2: 10.0}
        self._ref = {1: 0.0, 2: 0.0}
        self._ref_state = {1: False, 2: False}
        self._last_v = 0.0
        self._latest: float | None = None
        self._fresh_taken = True
        self._calc_value = 0.0
        super().__init__(bench, address)

    def reset(self) -> None:
        super().reset()
        self._auto = {1: True, 2: True}
        self._range = {1: 100.0, 2: 10.0}
        self._latest = None

    # ---- settings ------------------------------------------------------------------------
    def _set_func(self, p: list[str]) -> None:
        if not p:
            raise err(-109)
        u = unquote(p[0]).upper()
        if u in ("VOLT", "VOLTAGE", "VOLT:DC", "VOLTAGE:DC"):
            self.s["func"] = "VOLT:DC"
        elif u in ("TEMP", "TEMPERATURE"):
            self.s["func"] = "TEMP"
        else:
            raise err(-224)

    def _ch(self) -> int:
        return self.s["chan"] if self.s["chan"] in (1, 2) else 1

    @staticmethod
    def _chk(ch: int) -> int:
        if ch not in (1, 2):
            raise err(-113)
        return ch

    def _set_range(self, ch: int, p: list[str]) -> None:
        ch = self._chk(ch)
        v = abs(Num(0, MAX_RANGE[ch]).parse(p[0]))
        self._range[ch] = next((r for r in RANGES[ch] if v <= r), RANGES[ch][-1])
        self._auto[ch] = False

    def _get_range(self, ch: int) -> str:
        return f"{self._range[self._chk(ch)]:.6E}"

    def _set_auto(self, ch: int, p: list[str]) -> None:
        self._auto[self._chk(ch)] = Bool().parse(p[0])

    def _set_ref(self, ch: int, p: list[str]) -> None:
        ch = self._chk(ch)
        self._ref[ch] = Num(-MAX_RANGE[ch], MAX_RANGE[ch]).parse(p[0])

    # ---- measuring -----------------------------------------------------------------------
    def aperture(self) -> float:
        """Virtual seconds one A/D conversion takes."""
        return self.s["nplc"] * self.line_period

    def noise_sigma(self) -> float:
        return NOISE_1PLC / math.sqrt(self.s["nplc"])

    def sample(self) -> float:
        """One new reading of the present channel; advances the clock by delay + aperture."""
        self.clock.advance(self.s["trig_delay"] + self.aperture())
        bench = self.bench
        bench.flush()
        ch = self.s["chan"]
        noise = self.noise_sigma() * bench.noise()
        if self.s["func"] == "TEMP" or ch == 0:
            v = 23.0 + 0.01 * noise / NOISE_1PLC
        else:
            v = noise
            if ch == 1:
                v += bench.channel_current * bench.hallbar.read_resistance(bench.clock.now) + bench.thermal_emf()
            if self._ref_state[ch]:
                v -= self._ref[ch]
            if not self._auto[ch] and abs(v) > 1.2 * self._range[ch]:
                v = OVERFLOW
        self._last_v = v
        self._latest = v
        self._fresh_taken = False
        return v

    def read_value(self, fresh: bool = False) -> str:
        if self.s["trig_source"] == "BUS" and not fresh:
            raise err(-214)
        if self.s["init_cont"] and not fresh:
            raise err(-213)
        n = self.s["samp_count"]
        vals = [self.sample() for _ in range(n)]
        self._fresh_taken = True
        return ",".join(_v(x) for x in vals)

    def fetch(self) -> str:
        if self._latest is None:
            raise err(-230)
        return _v(self._latest)

    def initiate(self) -> None:
        """INIT: with an immediate trigger take TRIG:COUN × SAMP:COUN readings (into the buffer)."""
        if self.s["trig_source"] in ("BUS", "EXT", "MAN"):
            self._waiting = True
            return
        self._acquire()

    def trigger(self) -> None:
        if getattr(self, "_waiting", False):
            self._waiting = False
            self._acquire()

    def _acquire(self) -> None:
        n = self.s["trig_count"]
        n = 1 if n == math.inf else int(n)
        for _ in range(n * int(self.s["samp_count"])):
            v = self.sample()
            if self.s["trac_feed_cont"] == "NEXT" and len(self.buffer) < self.s["trac_points"]:
                self.buffer.append(v)
                if len(self.buffer) >= self.s["trac_points"]:
                    self.event["meas"] |= 1 << 9
        self.event["meas"] |= 1 << 5

    def _calc(self) -> float:
        data = self.buffer or ([self._latest] if self._latest is not None else [])
        if not data:
            raise err(-230)
        f = self.s["calc2_form"]
        if f == "MEAN":
            v = statistics.fmean(data)
        elif f == "MAX":
            v = max(data)
        elif f == "MIN":
            v = min(data)
        elif f == "PKPK":
            v = max(data) - min(data)
        else:
            v = statistics.stdev(data) if len(data) > 1 else 0.0
        self._calc_value = v
        return v
