"""`loop`: a current-sweep switching loop, one pulse per current step and a read after each.

Recipe `[parameters]` (SI):
    max_current    A, > 0     sweep amplitude I_max
    current_steps  int, >= 1  pulses from 0 to I_max; a cycle is 0 → +I_max → −I_max → 0,
                              i.e. 4·current_steps points, the last one at 0 A (read, no pulse)
    pulse_width    s, > 0
    read_current   A, != 0
    cycles         int, >= 1  (default 1)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labspin.protocols.base import Demand, Protocol, Segment, at_least, nonzero, param, positive


@dataclass(frozen=True)
class Loop(Protocol):
    kind: ClassVar[str] = "loop"
    analysis: ClassVar[str] = "labspin.analysis.loop:analyze"      # I_c+ / I_c- per cycle
    report: ClassVar[str] = "labspin.report:LoopSection"

    max_current: float = param(unit="A", check=positive, doc="sweep amplitude I_max")
    current_steps: int = param(kind="int", check=at_least(1, 10**6), doc="pulses from 0 to I_max")
    pulse_width: float = param(unit="s", check=positive)
    read_current: float = param(unit="A", check=nonzero)
    cycles: int = param(1, kind="int", check=at_least(1))

    def branch(self) -> np.ndarray:
        """Pulse currents of one cycle: 0 → +I_max → −I_max → 0, starting one step above 0."""
        n, i = self.current_steps, self.max_current
        k = np.arange(1, 4 * n + 1)
        # triangle wave: up for k <= n, down to -I_max at k = 3n, back up to 0 at 4n
        frac = np.where(k <= n, k / n, np.where(k <= 3 * n, 2 - k / n, k / n - 4))
        return frac * i

    def _segments(self) -> list[Segment]:
        one = self.branch()
        m = len(one)
        return [Segment({
            "cycle": 0,
            "step": np.arange(m),
            "pulse_current": one,
            "pulse_width": self.pulse_width,
            "read_current": self.read_current,
            "wait": 0.0,
        }, self.cycles)]

    def demands(self) -> list[Demand]:
        return [Demand("max_current", "pulse_current", self.max_current),
                Demand("pulse_width", "pulse_width", self.pulse_width),
                Demand("read_current", "read_current", self.read_current)]
