"""Simulated SR830 lock-in (scpi.md §4, §7.C, §7.D, §8.5); physics in lockin.py.

SRS syntax with or without a space (``SLVL1.000``, ``OUTP?1``, ``SNAP? 1,2``); several queries on
one line are answered individually. Out-of-range values set ESR bit 4 (EXE), unknown commands
bit 5 (CME).
"""
from __future__ import annotations

import cmath
import math

from .errors import err
from .lockin import LockIn

SENS = tuple(m * 10.0 ** e for e in range(-9, 0) for m in (2, 5, 10))[:26] + (1.0,)
TCS = tuple(m * 10.0 ** e for e in range(-5, 5) for m in (1, 3))


def slvl_2mv(v: float) -> float:
    """SR830 sine amplitude: 0.004 … 5.000 V rms, "rounded to 0.002 V" (SR830 manual, SLVL)."""
    return round(math.floor(v / 0.002 + 0.5) * 0.002, 3)


def _g(v: float) -> str:
    return f"{v:.6g}"


class SR830(LockIn):
    model = "SR830"
    idn = "Stanford_Research_Systems,SR830,s/n86027,ver1.07"
    SENSITIVITIES = SENS
    TIME_CONSTANTS = TCS

    @classmethod
    def _srs_commands(cls, d: dict) -> None:
        super()._srs_commands(d)
        I, F = cls._int, cls._float
        st = cls.srs_setting
        cls._defaults["internal"] = True
        st(d, "PHAS", "phase", lambda i, p: F(p, -360, 729.99), _g, 0.0)
        st(d, "FMOD", "fmod", lambda i, p: I(p, 0, 1), str, 1)
        st(d, "FREQ", "freq", lambda i, p: F(p, 1e-3, 102000), _g, 1000.0)
        st(d, "RSLP", "rslp", lambda i, p: I(p, 0, 2), str, 0)
        st(d, "HARM", "harm", lambda i, p: I(p, 1, 19999), str, 1)
        st(d, "SLVL", "slvl", lambda i, p: slvl_2mv(F(p, 0.004, 5.0)), lambda v: f"{v:.3f}", 1.0)
        st(d, "ISRC", "isrc", lambda i, p: I(p, 0, 3), str, 0)
        st(d, "IGND", "ignd", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "ICPL", "icpl", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "ILIN", "ilin", lambda i, p: I(p, 0, 3), str, 0)
        st(d, "SENS", "sens_idx", lambda i, p: I(p, 0, 26), str, 26)
        st(d, "RMOD", "rmod", lambda i, p: I(p, 0, 2), str, 1)
        st(d, "OFLT", "tc_idx", lambda i, p: I(p, 0, 19), str, 8)
        st(d, "OFSL", "slope_idx", lambda i, p: I(p, 0, 3), str, 1)
        st(d, "SYNC", "sync", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "SRAT", "srat", lambda i, p: I(p, 0, 14), str, 4)
        st(d, "SEND", "send", lambda i, p: I(p, 0, 1), str, 1)
        st(d, "TSTR", "tstr", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "OUTX", "outx", lambda i, p: I(p, 0, 1), str, 1)
        st(d, "OVRM", "ovrm", lambda i, p: I(p, 0, 1), str, 0)
        st(d, "LOCL", "locl", lambda i, p: I(p, 0, 2), str, 0)
        d["FREQ"] = (d["FREQ"][0], lambda i, p: _g(i.reference_frequency()))
        d["DDEF"] = (lambda i, p: i._ddef(p), lambda i, p: i._ddef_q(p))
        d["OUTP"] = (None, lambda i, p: _g(i._param(I(p, 1, 4))))
        d["OUTR"] = (None, lambda i, p: _g(i._param(9 + I(p, 1, 2))))
        d["SNAP"] = (None, lambda i, p: i._snap(p))
        d["OAUX"] = (None, lambda i, p: (I(p, 1, 4), "0.000")[1])
        d["AUXV"] = (lambda i, p: i._auxv(p), lambda i, p: f"{i._aux[I(p, 1, 4)]:.3f}")
        d["OEXP"] = (lambda i, p: None, lambda i, p: (I(p, 1, 3), "0.00,0")[1])
        d["AGAN"] = (lambda i, p: i.auto_gain(), None)
        d["ARSV"] = (lambda i, p: None, None)
        d["APHS"] = (lambda i, p: i.auto_phase(), None)
        d["AOFF"] = (lambda i, p: (I(p, 1, 3), None)[1], None)
        for m in ("STRT", "PAUS", "REST", "TRIG", "STRD"):
            d[m] = (lambda i, p: None, None)
        d["FAST"] = (lambda i, p: (I(p, 0, 2), None)[1], lambda i, p: "0")
        d["SPTS"] = (None, lambda i, p: "0")
        d["LIAS"] = (None, lambda i, p: i.read_lias(I(p, 0, 6) if p else None))
        d["ERRS"] = (None, lambda i, p: "0")
        d["SSET"] = (lambda i, p: (I(p, 1, 9), None)[1], None)
        d["RSET"] = (lambda i, p: (I(p, 1, 9), None)[1], None)

    def __init__(self, bench, address):
        self._aux = {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}
        self._ddefs = {1: (0, 0), 2: (0, 0)}
        super().__init__(bench, address)

    def _changed(self) -> None:
        self.s["internal"] = self.s["fmod"] == 1
        super()._changed()

    def _ddef(self, p: list[str]) -> None:
        ch = self._int(p[:1], 1, 2)
        self._ddefs[ch] = (self._int(p[1:2], 0, 4), self._int(p[2:3], 0, 2) if len(p) > 2 else 0)

    def _ddef_q(self, p: list[str]) -> str:
        j, k = self._ddefs[self._int(p, 1, 2)]
        return f"{j},{k}"

    def _auxv(self, p: list[str]) -> None:
        ch = self._int(p[:1], 1, 4)
        self._aux[ch] = self._float(p[1:2], -10.5, 10.5)

    def _param(self, k: int, z: complex | None = None) -> float:
        """SNAP?/OUTP? parameter k (1 X, 2 Y, 3 R, 4 θ, 5–8 aux in, 9 ref freq, 10/11 displays)."""
        if k in (1, 2, 3, 4, 10, 11):
            z = self.output() if z is None else z
            if k == 10:
                k = 1 if self._ddefs[1][0] == 0 else 3
            elif k == 11:
                k = 2 if self._ddefs[2][0] == 0 else 4
            return (z.real, z.imag, abs(z), math.degrees(cmath.phase(z)))[k - 1]
        if 5 <= k <= 8:
            return 0.0
        if k == 9:
            return self.reference_frequency()
        raise err(-222)

    def _snap(self, p: list[str]) -> str:
        if not 2 <= len(p) <= 6:
            raise err(-109)
        ks = [self._int([x], 1, 11) for x in p]
        z = self.output()   # X, Y, R, θ from one instant
        return ",".join(_g(self._param(k, z)) for k in ks)
