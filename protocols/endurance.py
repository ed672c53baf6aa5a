"""`endurance`: up to 10⁹ alternating write pulses (+I, −I) with sparse reads, until the window closes.

One cycle is a +write_current pulse then a −write_current pulse. A *read cycle* reads after both
(step 0: the state after +I, step 1: after −I; their difference is the window); the cycles in
between are not read: they go out as one burst of alternating pulses before the next read
(`Step.burst`), which the runner hands to the instrument as a hardware-timed train where it can.
Reads come every `read_every` cycles, or `reads_per_decade` log-spaced read cycles (cycle 0 and
the last cycle are always read).

The run stops early (status "completed", the reason in /entry/error as "stopped: ...") when the
window has been below `min_window` × the first window for `patience` read cycles in a row: the
window closed, or a level stuck (both states read at one of the first levels).

Recipe `[parameters]` (SI):
    write_current     A, > 0    amplitude of the alternating write pulses
    pulse_width       s, > 0
    read_current      A, != 0
    cycles            int, >= 1 (pulses = 2 × cycles)
    read_every        int, >= 0 (read cycles every N cycles; default 0 = log-spaced)
    reads_per_decade  int, >= 1 (log-spaced read cycles when read_every = 0; default 10)
    min_window        0 <= x < 1 (default 0.5; 0 = never stop early)
    patience          int, >= 1 (default 3)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labspin.protocols.base import Demand, Protocol, Segment, at_least, nonzero, param, positive


def _fraction(v: float) -> str | None:
    return None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v!r}"


@dataclass(frozen=True)
class Endurance(Protocol):
    kind: ClassVar[str] = "endurance"
    analysis: ClassVar[str] = "labspin.analysis.endurance:analyze"   # window, CTC vs cycles, failure
    report: ClassVar[str] = "labspin.report:EnduranceSection"

    write_current: float = param(unit="A", check=positive, doc="amplitude of the ± write pulses")
    pulse_width: float = param(unit="s", check=positive)
    read_current: float = param(unit="A", check=nonzero)
    cycles: int = param(kind="int", check=at_least(1), doc="write cycles (+I, −I)")
    read_every: int = param(0, kind="int", check=at_least(0), doc="read every N cycles; 0 = log-spaced")
    reads_per_decade: int = param(10, kind="int", check=at_least(1, 10**4), doc="log-spaced reads (read_every = 0)")
    min_window: float = param(0.5, check=_fraction, doc="stop below this × the first window")
    patience: int = param(3, kind="int", check=at_least(1), doc="read cycles below min_window")

    def read_cycles(self) -> np.ndarray:
        """Cycles after which both states are read (log-spaced kind only; small)."""
        last = self.cycles - 1
        if self.read_every:
            raise ValueError("read_cycles: periodic reads are not materialised; see _segments")
        decades = np.log10(max(self.cycles, 1))
        n = max(2, int(np.ceil(decades * self.reads_per_decade)) + 1)
        r = np.unique(np.floor(np.logspace(0, decades, n)).astype(np.int64) - 1)
        return np.unique(np.concatenate([[0], r[(r >= 0) & (r <= last)], [last]]))

    def _pair(self, gap, cycle) -> dict:
        """Rows of read cycles after `gap` unread cycles: +I (burst 2·gap + 1, read), −I (read)."""
        gap = np.atleast_1d(np.asarray(gap, dtype=np.int64))
        cycle = np.atleast_1d(np.asarray(cycle, dtype=np.int64))
        i = self.write_current
        return {"cycle": np.repeat(cycle, 2), "step": np.tile([0, 1], len(gap)),
                "pulse_current": np.tile([i, -i], len(gap)),
                "burst": np.stack([2 * gap + 1, np.ones_like(gap)], axis=1).ravel(),
                "pulse_width": self.pulse_width, "read_current": self.read_current, "wait": 0.0}

    def _segments(self) -> list[Segment]:
        if not self.read_every:
            r = self.read_cycles()
            gaps = np.diff(np.concatenate([[-1], r])) - 1
            return [Segment(self._pair(gaps, r), 1)]
        n, last = self.read_every, self.cycles - 1
        segs = [Segment(self._pair(0, 0), 1)]                 # the first window, at cycle 0
        k = last // n
        if k:
            segs.append(Segment(self._pair(n - 1, n - 1), k))   # reads at n, 2n, ..., k·n
        rest = last - k * n
        if rest:
            segs.append(Segment(self._pair(rest - 1, rest - 1), 1))   # the last cycle
        return segs

    def demands(self) -> list[Demand]:
        return [Demand("write_current", "pulse_current", self.write_current),
                Demand("write_current", "pulse_current", -self.write_current),
                Demand("pulse_width", "pulse_width", self.pulse_width),
                Demand("read_current", "read_current", self.read_current)]

    def stop_rule(self) -> "WindowStop | None":
        """What the runner asks after every block whether to stop (None: run to the end)."""
        return WindowStop(self.min_window, self.patience) if self.min_window > 0 else None


def verdict(high: float, low: float, high0: float, low0: float) -> str:
    """Why a closed window is closed: a level stuck near one of the first levels, or closing."""
    w0 = abs(high0 - low0)
    mid = (high + low) / 2
    if abs(mid - high0) < 0.25 * w0:
        return "level stuck high"
    if abs(mid - low0) < 0.25 * w0:
        return "level stuck low"
    return "window closed"


class WindowStop:
    """Streaming stop condition: the window (R after +I − R after −I) of each read cycle against
    `min_window` × the first one, `patience` read cycles in a row."""

    def __init__(self, min_window: float, patience: int) -> None:
        self.min_window, self.patience = float(min_window), int(patience)
        self.first: tuple[float, float] | None = None
        self._high: tuple[int, float] | None = None
        self._bad = 0

    def update(self, block: dict) -> str | None:
        for cycle, step, r in zip(block["cycle"].tolist(), block["step"].tolist(),
                                  block["hall_resistance"].tolist()):
            if step == 0:
                self._high = (cycle, r)
                continue
            if self._high is None or self._high[0] != cycle:
                continue
            high, low = self._high[1], r
            if self.first is None:
                self.first = (high, low)
                continue
            w0 = abs(self.first[0] - self.first[1])
            self._bad = self._bad + 1 if abs(high - low) < self.min_window * w0 else 0
            if self._bad >= self.patience:
                return (f"{verdict(high, low, *self.first)} at cycle {cycle}: window "
                        f"{high - low:.4g} ohm < {self.min_window:g} × first window {w0:.4g} ohm")
        return None
