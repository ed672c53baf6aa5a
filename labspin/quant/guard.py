"""The guard: a configuration that has collapsed is flagged, with the likely cause, never silent.

A row is flagged when its top-1 agreement with FP32 falls below 90 % or its Δ is beyond 5 points.
The cause is read off the level ladder and the quantized weights: an isolated level that stretches
the range, weights crowding onto a few levels, a level range whose levels miss zero (every small
weight lands on a distant level), or CTC noise large against the level spacing.
"""
from __future__ import annotations

import math

import torch

from labspin.quant.levels_map import DeviceLevels
from labspin.quant.quantize import QuantizedWeights

AGREEMENT_MIN = 90.0
DELTA_MAX = 5.0


def ladder_causes(levels: DeviceLevels, isolated: float = 3.0) -> list[str]:
    """Properties of the ladder that make a collapse likely (an isolated level)."""
    v = levels.values.double()
    gaps = v.diff()
    if gaps.numel() < 2:
        return []
    med = float(gaps.median())
    out = []
    for i in range(len(v)):
        near = min(float(gaps[i - 1]) if i > 0 else math.inf, float(gaps[i]) if i < gaps.numel() else math.inf)
        if near > isolated * med:
            out.append(f"level {i} is isolated ({near / med:.1f}× the median spacing from its neighbour)")
    return out


def weight_causes(qw: QuantizedWeights) -> list[str]:
    """What the quantized weights show: crowding onto few levels, zero missed by the levels."""
    k = len(qw.levels)
    counts = torch.zeros(k, dtype=torch.float64)
    v = qw.levels.values.double().cpu()
    med = float(v.diff().median())
    miss, rows = 0, 0
    for lq in qw.layers.values():
        counts += torch.bincount(lq.idx.reshape(-1).long().cpu(), minlength=k).double()
        z = lq.z.double().cpu().reshape(-1, 1)                # the zero weight in level units
        d = (z - v[None, :]).abs()
        if lq.allowed is not None:
            d = torch.where(lq.allowed.cpu(), d, torch.full_like(d, math.inf))
        miss += int((d.min(dim=1).values > med).sum())
        rows += z.shape[0]
    out = []
    p = counts / counts.sum()
    used = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))      # effective number of levels
    top = int(p.argmax())
    if used < max(2.0, 0.35 * k):
        out.append(f"weights crowd onto ~{used:.1f} of {k} levels ({100 * float(p[top]):.0f} % on level {top})")
    if rows and miss / rows > 0.25:
        out.append(f"the level range misses zero: in {100 * miss / rows:.0f} % of rows the zero weight "
                   f"is more than a median spacing from every level")
    return out


def noise_cause(levels: DeviceLevels) -> str:
    gaps = levels.values.double().diff()
    ratio = float((levels.std.double()[1:] / gaps).max()) if gaps.numel() else 0.0
    return f"CTC noise up to {ratio:.2f}× the spacing of adjacent levels"


def flag(agreement: float, delta: float, causes: list[str]) -> str:
    """'' for a healthy row; else what tripped and the likely cause."""
    tripped = []
    if agreement < AGREEMENT_MIN:
        tripped.append(f"agreement {agreement:.1f} % < {AGREEMENT_MIN:.0f} %")
    if abs(delta) > DELTA_MAX:
        tripped.append(f"Δ {delta:+.1f} points beyond ±{DELTA_MAX:.0f}")
    if not tripped:
        return ""
    why = "; ".join(causes) if causes else "no single cause found in the levels or the weights"
    return ", ".join(tripped) + " — likely: " + why
