"""`staircase`: the cycle-to-cycle (CTC) benchmark — reset, then an amplitude ladder, repeated.

Each cycle is one reset pulse (`reset_current`, usually negative) followed by the ladder rungs in
order, with a read after every pulse including the reset: `step` 0 is the reset state, `step` k
the state after the k-th rung, so a cycle with M states has M points. Reading the same step across
cycles gives the CTC spread of that state.

Recipe `[parameters]` (SI), the ladder given either explicitly or as a linear ramp:
    reset_current  A, != 0, opposite in sign to the ladder
    reset_width    s, > 0 (default: pulse_width)
    amplitudes     [A, ...] explicit rungs, same sign, increasing in magnitude
      — or —
    start, stop    A, first and last rung (same sign, |stop| > |start|)
    states         int, >= 2: states per cycle including the reset state (rungs = states − 1)
    pulse_width    s, > 0
    read_current   A, != 0
    cycles         int, >= 1
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labspin.protocols.base import (Demand, ParameterError, Protocol, Segment, at_least, nonzero, param,
                                    positive)


@dataclass(frozen=True)
class Staircase(Protocol):
    kind: ClassVar[str] = "staircase"
    states_from_step: ClassVar[bool] = True
    analysis: ClassVar[str] = "labspin.analysis.staircase:analyze"  # CTC without the reset state

    reset_current: float = param(unit="A", check=nonzero)
    pulse_width: float = param(unit="s", check=positive)
    read_current: float = param(unit="A", check=nonzero)
    cycles: int = param(kind="int", check=at_least(1))
    amplitudes: tuple = param(None, kind="floats", unit="A", check=nonzero)
    start: float = param(None, unit="A", check=nonzero)
    stop: float = param(None, unit="A", check=nonzero)
    states: int = param(None, kind="int", check=at_least(2, 10**6))
    reset_width: float = param(None, unit="s", check=positive)

    def _check(self) -> None:
        ramp = {"start": self.start, "stop": self.stop, "states": self.states}
        given = [k for k, v in ramp.items() if v is not None]
        if self.amplitudes is not None:
            if given:
                raise ParameterError(given[0], "give either amplitudes or start/stop/states, not both")
        elif len(given) < 3:
            missing = next(k for k in ramp if ramp[k] is None)
            raise ParameterError(missing, "missing (the ladder needs amplitudes, or start, stop and states)")
        ladder = self.ladder()
        sign = np.sign(ladder[0])
        for i, a in enumerate(ladder):
            if np.sign(a) != sign:
                raise ParameterError(self._rung_name(i), "all rungs must have the same sign")
        if len(ladder) > 1 and not np.all(np.diff(np.abs(ladder)) > 0):
            key = "amplitudes" if self.amplitudes is not None else "stop"
            raise ParameterError(key, "the ladder must increase in magnitude")
        if np.sign(self.reset_current) == sign:
            raise ParameterError("reset_current", "must have the opposite sign to the ladder")

    def _rung_name(self, i: int) -> str:
        if self.amplitudes is not None:
            return f"amplitudes[{i}]"
        return "stop" if i == self.states - 2 else "start"

    def ladder(self) -> np.ndarray:
        """Rung currents of one cycle (A), reset excluded."""
        if self.amplitudes is not None:
            return np.asarray(self.amplitudes, dtype=float)
        if self.states == 2:
            return np.array([self.stop], dtype=float)
        return np.linspace(self.start, self.stop, self.states - 1)

    @property
    def n_states(self) -> int:
        """States per cycle, the reset state included (= points per cycle)."""
        return len(self.ladder()) + 1

    def _segments(self) -> list[Segment]:
        m = self.n_states
        one = np.concatenate([[self.reset_current], self.ladder()])
        widths = np.full(m, self.pulse_width)
        widths[0] = self.reset_width if self.reset_width is not None else self.pulse_width
        return [Segment({
            "cycle": 0,
            "step": np.arange(m),
            "pulse_current": one,
            "pulse_width": widths,
            "read_current": self.read_current,
            "wait": 0.0,
        }, self.cycles)]

    def demands(self) -> list[Demand]:
        out = [Demand("reset_current", "pulse_current", self.reset_current)]
        ladder = self.ladder()
        ends = range(len(ladder)) if self.amplitudes is not None else {0, len(ladder) - 1}
        out += [Demand(self._rung_name(i), "pulse_current", float(ladder[i])) for i in sorted(ends)]
        out.append(Demand("pulse_width", "pulse_width", self.pulse_width))
        if self.reset_width is not None:
            out.append(Demand("reset_width", "pulse_width", self.reset_width))
        out.append(Demand("read_current", "read_current", self.read_current))
        return out
