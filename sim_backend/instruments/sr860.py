"""Simulated SR860 lock-in (scpi.md §5, §8.6); physics in lockin.py.

SR860 rules: a space must separate the command from its first argument (``PSTF2, …`` is refused,
CME); several queries on one line are answered in one reply separated by ``;``. ``SNAP?`` takes
indices or names (``SNAP? X, Y``). Out-of-range values (``RTRG 3``, ``REFM 2``) set ESR bit 4.

``SLVL`` is rounded to 3 significant digits, at least 1 nV (SRS's srsinst.sr860 driver:
``FloatCommand('SLVL', 0 … 2 V, step 1 nV, 3 digits)``). Status: ``LIAS?`` latches bit 0/1 (CH1/CH2
output overload), 3 (reference unlock), 4 (input range overload); ``CUROVLDSTAT?`` gives the same
bits for the present state, not latched (srsinst.sr860 Status.LiaStatusBitDict /
OverloadStatusBitDict).
"""
from __future__ import annotations

import cmath
import math

from .errors import err
from .lockin import LockIn

SCAL = tuple(m * 10.0 ** e for e in range(0, -10, -1) for m in (1.0, 0.5, 0.2))[:28]
TCS = tuple(m * 10.0 ** e for e in range(-6, 5) for m in (1, 3))
_NAMES = {"X": 0, "Y": 1, "R": 2, "THETA": 3, "TH": 3, "IN1": 4, "IN2": 5, "IN3": 6, "IN4": 7,
          "XNOISE": 8, "XNO": 8, "YNOISE": 9, "YNO": 9, "OUT1": 10, "OUT2": 11, "PHASE": 12,
          "PHA": 12, "SAMP": 13, "SAM": 13, "LEVEL": 14, "LEV": 14, "FINT": 15, "FI": 15,
          "FEXT": 16, "FE": 16}


def slvl_3_digits(v: float) -> float:
    """SR860 sine amplitude: 3 significant digits, at least 1 nV."""
    return max(1e-9, float(f"{v:.3g}"))


def _e(v: float) -> str:
    return f"{v:.10e}"


class SR860(LockIn):
    model = "SR860"
    idn = "Stanford_Research_Systems,SR860,003421,v1.51"
    SENSITIVITIES = SCAL
    TIME_CONSTANTS = TCS
    OUTPUT_OVERLOAD = (1 << 0) | (1 << 1)
    INPUT_RANGE = 1 << 4
    needs_space = True

    @classmethod
    def _srs_commands(cls, d: dict) -> None:
        super()._srs_commands(d)
        I, F = cls._int, cls._float
        st = cls.srs_setting
        cls._defaults["internal"] = True
        st(d, "FREQ", "freq", lambda i, p: F(p, 1e-3, 5e5), _e, 1000.0)
        d["FREQINT"] = d["FREQ"]
        d["FREQ"] = (d["FREQ"][0], lambda i, p: _e(i.reference_frequency()))
        d["FREQEXT"] = (None, lambda i, p: _e(i.reference_frequency()))
        d["FREQDET"] = (None, lambda i, p: _e(i.reference_frequency()))
        st(d, "PHAS", "phase", lambda i, p: F(p, -360000, 360000), _e, 0.0)
        st(d, "HARM", "harm", lambda i, p: I(p, 1, 99), str, 1)
        st(d, "HARMDUAL", "harmdual", lambda i, p: I(p, 1, 99), str, 1)
        st(d, "SLVL", "slvl", lambda i, p: slvl_3_digits(F(p, 0.0, 2.0)), _e, 1.0)
        st(d, "SOFF", "soff", lambda i, p: F(p, -5.0, 5.0), _e, 0.0)
        st(d, "RSRC", "rsrc", lambda i, p: I(p, 0, 3), str, 0)
        st(d, "RTRG", "rtrg", lambda i, p: I(p, 0, 2), str, 0)
        st(d, "REFZ", "refz", lambda i, p: I(p, 0, 1), str, 1)
        st(d, "REFM", "refm", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "IVMD", "ivmd", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "ISRC", "isrc", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "ICPL", "icpl", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "IGND", "ignd", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "IRNG", "irng", lambda i, p: I(p, 0, 4), str, 0)
        st(d, "ICUR", "icur", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "SCAL", "sens_idx", lambda i, p: I(p, 0, 27), str, 0)
        st(d, "OFLT", "tc_idx", lambda i, p: I(p, 0, 21), str, 10)
        st(d, "OFSL", "slope_idx", lambda i, p: I(p, 0, 3), str, 1)
        st(d, "SYNC", "sync", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "ADVFILT", "advfilt", lambda i, p: I(p, 0, 1), str, 0)
        d["ADVFIL"] = d["ADVFILT"]
        d["ENBW"] = (None, lambda i, p: _e(i.enbw()))
        d["LIAS"] = (None, lambda i, p: i.read_lias(I(p, 0, 14) if p else None))
        d["CUROVLDSTAT"] = (None, lambda i, p: str(i._current_overload()))
        d["ILVL"] = (None, lambda i, p: i._ilvl())
        d["OUTP"] = (None, lambda i, p: _e(i._param(i._which(p))))
        d["SNAP"] = (None, lambda i, p: i._snap(p))
        d["SNAPD"] = (None, lambda i, p: i._snapd())
        d["CDSP"] = (lambda i, p: i._cdsp(p), lambda i, p: str(i._cdsps[I(p, 0, 3)]))
        d["OAUX"] = (None, lambda i, p: (I(p, 0, 3), _e(0.0))[1])
        d["AUXV"] = (lambda i, p: i._auxv(p), lambda i, p: _e(i._aux[I(p, 0, 3)]))
        d["APHS"] = (lambda i, p: i.auto_phase(), None)
        d["ASCL"] = (lambda i, p: i.auto_gain(), None)
        d["ARNG"] = (lambda i, p: None, None)
        for m in ("PSTF", "PSTA", "PSTL"):
            d[m] = (lambda i, p: i._preset(p), lambda i, p: (I(p, 0, 3), _e(0.0))[1])

    def __init__(self, bench, address):
        self._aux = {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}
        self._cdsps = {0: 0, 1: 1, 2: 2, 3: 3}
        super().__init__(bench, address)

    def _changed(self) -> None:
        self.s["internal"] = self.s["rsrc"] == 0
        super()._changed()

    def _join(self, replies: list[str]) -> list[str]:
        return [";".join(replies)] if len(replies) > 1 else replies

    def _which(self, p: list[str]) -> int:
        if not p:
            raise err(-109)
        name = p[0].strip().upper()
        if name in _NAMES:
            return _NAMES[name]
        return self._int(p, 0, 16)

    def _param(self, k: int, z: complex | None = None) -> float:
        if k <= 3:
            z = self.output() if z is None else z
            return (z.real, z.imag, abs(z), math.degrees(cmath.phase(z)))[k]
        if k in (8, 9):
            from .lockin import NOISE_DENSITY
            return NOISE_DENSITY * math.sqrt(self.enbw())
        if k in (10, 11):
            return self._aux[k - 10]
        if k == 12:
            return self.s["phase"]
        if k == 13:
            return self.s["slvl"]
        if k == 14:
            return self.s["soff"]
        if k in (15, 16):
            return self.reference_frequency()
        return 0.0

    def _snap(self, p: list[str]) -> str:
        if not 2 <= len(p) <= 3:
            raise err(-109)
        ks = [self._which([x]) for x in p]
        z = self.output()
        return ",".join(_e(self._param(k, z)) for k in ks)

    def _snapd(self) -> str:
        z = self.output()
        return ",".join(_e(self._param(self._cdsps[c], z)) for c in range(4))

    def _cdsp(self, p: list[str]) -> None:
        self._cdsps[self._int(p[:1], 0, 3)] = self._which(p[1:2])

    def _auxv(self, p: list[str]) -> None:
        self._aux[self._int(p[:1], 0, 3)] = self._float(p[1:2], -10.5, 10.5)

    def _preset(self, p: list[str]) -> None:
        self._int(p[:1], 0, 3)
        if len(p) < 2:
            raise err(-109)

    def _input_range(self) -> float:
        return (1.0, 0.3, 0.1, 0.03, 0.01)[int(self.s["irng"])]

    def _check_input(self) -> None:
        """Input range overload (LIAS bit 4): the peak input beyond the IRNG range."""
        if abs(self._u) * math.sqrt(2) > self._input_range():
            self.lias |= self.INPUT_RANGE

    def _current_overload(self) -> int:
        self._update()
        z = self._states[-1]
        fs = self.sensitivity()
        bits = self.OUTPUT_OVERLOAD if (abs(z.real) > fs or abs(z.imag) > fs) else 0
        if not self.excitation()[3]:
            bits |= self.UNLOCK
        if abs(self._u) * math.sqrt(2) > self._input_range():
            bits |= self.INPUT_RANGE
        return bits

    def _ilvl(self) -> str:
        r = abs(self.output())
        rng = (1.0, 0.3, 0.1, 0.03, 0.01)[int(self.s["irng"])]
        return str(min(4, max(0, int(5 * r / rng))))
