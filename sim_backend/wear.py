"""Wear-out of a simulated Hall bar under repeated switching (endurance), docs/physics.md §Wear-out.

Two mechanisms, both counted in write pulses N that switch the device (|J| above `j_stress`·J_c0):

* **window closing**: the switching part of R_H shrinks towards its middle,
  ``R_H = R0 + R_AHE · m · w(N)`` with ``w(N) = 1`` for N <= `onset` and
  ``w(N) = exp(−((N − onset) / n_wear)^beta)`` after it (a Weibull-like loss of switchable area,
  e.g. intermixing at the heavy-metal/ferromagnet interface);
* **a level sticks**: at N_stick, drawn once per device (Weibull with scale `n_stick` and shape
  `stick_shape`, from the device seed on a stream of its own), pulses stop switching and the
  device stays in the state it is in (e.g. a pinned domain wall, electromigration).

Hooked into `hallbar.HallBar` at four places: `pulse` (count, skip when stuck), `hall_resistance`
(× window), `get_state`/`set_state` (the pulse count, so `--resume` continues the wear).

The default parameters are *accelerated* — a real SOT device lasts 10¹⁰–10¹² cycles — so that a
simulator run of 10⁵–10⁶ cycles shows both; below `onset` pulses the model changes nothing, so
every shorter run is bit-for-bit what it was without it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class WearParams:
    onset: float = 1e5            # pulses before the window starts closing
    n_wear: float = 5e5           # pulses (after onset) for the window to fall to 1/e
    beta: float = 1.5             # shape of the window loss
    n_stick: float = 3e6          # Weibull scale of the pulse count at which a level sticks
    stick_shape: float = 3.0      # Weibull shape of N_stick (device-to-device spread)
    j_stress: float = 0.5         # pulses below j_stress · J_c0 do not count (reads, weak pulses)

    def to_dict(self) -> dict:
        return asdict(self)


class Wear:
    """Pulse counter of one device, its window factor and whether its level has stuck."""

    def __init__(self, params: WearParams, seed: int) -> None:
        self.params = params
        rng = np.random.default_rng([int(seed), 0x57EA2])       # a stream of its own
        self.n_stick = float(params.n_stick * rng.weibull(params.stick_shape))
        self.pulses = 0

    def pulse(self, j_rel: float) -> bool:
        """Count one pulse of |J|/J_c0 = `j_rel`; True when the level has stuck (skip the pulse)."""
        if self.pulses >= self.n_stick:            # `stuck`, without a call: on every pulse
            return True
        if j_rel >= self.params.j_stress:
            self.pulses += 1
        return False

    @property
    def stuck(self) -> bool:
        return self.pulses >= self.n_stick

    @property
    def window(self) -> float:
        """Factor on the switching part of R_H: 1 until `onset`, then falling to 0."""
        p = self.params
        if self.pulses <= p.onset:
            return 1.0
        return math.exp(-(((self.pulses - p.onset) / p.n_wear) ** p.beta))

    def get_state(self) -> dict:
        return {"pulses": self.pulses}

    def set_state(self, state: dict) -> None:
        pulses = state.get("pulses", 0) if isinstance(state, dict) else 0
        if isinstance(pulses, bool) or not isinstance(pulses, int) or pulses < 0:
            raise ValueError("wear: pulses must be a non-negative integer")
        self.pulses = pulses
