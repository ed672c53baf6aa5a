"""Numbers for people, one rule for every screen (CLI, GUI, reports): values with an SI prefix,
values at full precision, table cells, and durations.

Missing values (None, NaN) print as ``MISSING`` everywhere, so a blank never reads as zero.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

MISSING = "—"

_PREFIXES = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""),
             (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"), (1e15, "P")]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and bool(np.isnan(value)))


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """``digits`` significant digits with an SI prefix: 0.0075, "A" -> "7.5 mA".

    A value that rounds up to the next prefix takes it (0.99996 A -> "1 A", not "1e+03 mA")."""
    if _missing(value):
        return MISSING
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    mag = abs(value) / (1 - 0.5 * 10.0 ** -digits)
    scale, prefix = _PREFIXES[0]
    for s, p in _PREFIXES:
        if mag >= s:
            scale, prefix = s, p
    return f"{value / scale:.{digits}g} {prefix}{unit}"


def quantity(value: float | None, unit: str, digits: int = 6) -> str:
    """Full precision, no prefix: 1234.5678, "ohm" -> "1234.57 ohm" (values one compares or copies)."""
    if _missing(value) or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}g} {unit}"


def number(value: Any, digits: int = 4) -> str:
    """A table cell: a float to ``digits`` significant digits, anything else as ``str``."""
    if _missing(value) or (isinstance(value, (float, np.floating)) and not np.isfinite(value)):
        return MISSING
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}g}"
    return str(value)


def clock(seconds: float | None) -> str:
    """An elapsed time or ETA as a clock: "0:42", "12:05", "1:02:03"; "--:--" when unknown."""
    if _missing(seconds) or not math.isfinite(seconds):
        return "--:--"
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def duration(seconds: float) -> str:
    """A duration in words: "42.5 s" under a minute, then "3m05s", "1h02m03s"."""
    seconds = float(seconds)
    if not math.isfinite(seconds):
        return f"{seconds:g} s"
    if seconds < 60:
        return f"{seconds:.3g} s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
