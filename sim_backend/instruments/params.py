"""Parameter kinds of the command tables: parse(str) -> value (ScpiError on bad input),
fmt(value) -> reply text."""
from __future__ import annotations

import math

from ..scpi import unquote
from .errors import err


def nr3(v: float) -> str:
    """Keithley NR3 reply, e.g. ``1.000000E-03``."""
    return f"{v:.6E}"


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
