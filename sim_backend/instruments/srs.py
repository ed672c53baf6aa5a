"""SRS lock-ins' message model: bare mnemonics (``FREQ 1000``, ``OUTP? 1``), no error queue, bad
input reported only in the event status register."""
from __future__ import annotations

from typing import ClassVar

from ..scpi import ScpiError, parse_srs
from .errors import err
from .instrument import SimInstrument


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
