"""`retention`: does a state hold? Repeated reads, no pulses, `interval` seconds apart.

With `set_current` != 0 the run starts with one set pulse (step 0, read at once); then come
`reads` read-only points (steps 1 …), each after `interval` s (Step.wait, virtual on the
simulator; the run file's `time` column timestamps them). Without it, steps are 0 … reads − 1.
All points are cycle 0.

Recipe `[parameters]` (SI):
    reads         int, >= 1
    interval      s, >= 0
    read_current  A, != 0
    set_current   A (default 0 = no set pulse)
    pulse_width   s, > 0 (width of the set pulse; default 100e-6)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labspin.protocols.base import Demand, Protocol, at_least, non_negative, nonzero, param, positive


@dataclass(frozen=True)
class Retention(Protocol):
    kind: ClassVar[str] = "retention"
    analysis: ClassVar[str] = "labspin.analysis.retention:analyze"  # drift per decade per state
    report: ClassVar[str] = "labspin.report:RetentionSection"

    reads: int = param(kind="int", check=at_least(1, 10**7))
    interval: float = param(unit="s", check=non_negative)
    read_current: float = param(unit="A", check=nonzero)
    set_current: float = param(0.0, unit="A")
    pulse_width: float = param(100e-6, unit="s", check=positive)

    def _build(self) -> dict[str, np.ndarray]:
        pulse = np.zeros(self.reads)
        wait = np.full(self.reads, self.interval)
        if self.set_current != 0.0:
            pulse = np.concatenate([[self.set_current], pulse])
            wait = np.concatenate([[0.0], wait])
        n = len(pulse)
        return {
            "cycle": np.zeros(n, dtype=np.int64),
            "step": np.arange(n),
            "pulse_current": pulse,
            "pulse_width": self.pulse_width,
            "read_current": self.read_current,
            "wait": wait,
        }

    def demands(self) -> list[Demand]:
        out = []
        if self.set_current != 0.0:
            out += [Demand("set_current", "pulse_current", self.set_current),
                    Demand("pulse_width", "pulse_width", self.pulse_width)]
        out.append(Demand("read_current", "read_current", self.read_current))
        return out
