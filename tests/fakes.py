"""Test doubles shared by the simulator tests."""
from __future__ import annotations

import numpy as np


class FixedHallBar:
    """Test double with the HallBar interface: fixed R_H, records every pulse it receives."""

    def __init__(self, r_h=0.5, r_xx=1000.0):
        self.hall_resistance = r_h
        self.longitudinal_resistance = r_xx
        self.readout_rng = np.random.default_rng(0)
        self.pulses: list[tuple[float, float]] = []

    def pulse(self, current, width):
        self.pulses.append((current, width))

    def read_resistance(self, t):
        return self.hall_resistance

    def apply_inplane_field(self, hx):
        return False


class RoundingHallBar(FixedHallBar):
    """Records pulses rounded to 1e-12 A / s, so lists of delivered pulses compare exactly."""

    def pulse(self, current, width):
        self.pulses.append((round(current, 12), round(width, 12)))


class Collect:
    """A runner listener that keeps every block of points and how the run ended."""

    def __init__(self):
        self.blocks, self.end, self.info = [], None, None

    def on_start(self, info):
        self.info = info

    def on_points(self, block):
        self.blocks.append({k: np.array(v) for k, v in block.items()})

    def on_end(self, status, error):
        self.end = (status, error)

    def column(self, key):
        return np.concatenate([b[key] for b in self.blocks])
