"""`potdep`: potentiation/depression — identical positive pulses, then identical negative ones.

One cycle is `pulses` pulses of +amplitude (long-term potentiation, LTP) followed by `pulses`
pulses of −depression_amplitude (LTD), a read after each; `step` is the pulse number within the
cycle (0 … 2·pulses − 1). LTP/LTD nonlinearity and asymmetry come from these curves.

Recipe `[parameters]` (SI):
    amplitude             A, > 0   potentiation pulse
    depression_amplitude  A, > 0   depression pulse magnitude (default: amplitude), sent negative
    pulses                int, >= 1 pulses per branch
    pulse_width           s, > 0
    read_current          A, != 0
    cycles                int, >= 1 (default 1)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from labspin.protocols.base import Demand, Protocol, Segment, at_least, nonzero, param, positive


@dataclass(frozen=True)
class PotDep(Protocol):
    kind: ClassVar[str] = "potdep"
    states_from_step: ClassVar[bool] = True
    analysis: ClassVar[str] = "labspin.analysis.potdep:analyze"     # LTP/LTD fits
    report: ClassVar[str] = "labspin.report:PotDepSection"

    amplitude: float = param(unit="A", check=positive)
    pulses: int = param(kind="int", check=at_least(1, 10**6))
    pulse_width: float = param(unit="s", check=positive)
    read_current: float = param(unit="A", check=nonzero)
    cycles: int = param(1, kind="int", check=at_least(1))
    depression_amplitude: float = param(None, unit="A", check=positive)

    def _segments(self) -> list[Segment]:
        dep = self.depression_amplitude if self.depression_amplitude is not None else self.amplitude
        one = np.concatenate([np.full(self.pulses, self.amplitude), np.full(self.pulses, -dep)])
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
        out = [Demand("amplitude", "pulse_current", self.amplitude)]
        if self.depression_amplitude is not None:
            out.append(Demand("depression_amplitude", "pulse_current", -self.depression_amplitude))
        out += [Demand("pulse_width", "pulse_width", self.pulse_width),
                Demand("read_current", "read_current", self.read_current)]
        return out
