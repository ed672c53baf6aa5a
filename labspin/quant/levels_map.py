"""Device levels as a weight grid, and the snap of weights onto it.

A weight is programmed as ``w = s * (l_k - z)``: ``l_k`` is one of the K device levels, ``s`` and
``z`` are per tensor or per output channel (the observer's job). Measured levels are normalised to
[-1, 1] (the std with the same affine map), so one table fits every layer. The ideal reference
(``uniform``) is the integer grid ``-(K-1)//2 .. (K-1)//2`` — torch.ao's ``quant_min``/``quant_max``
— so that min-max on it reproduces torch's fake-quantization bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from labspin.errors import FieldError, UserError


@dataclass(frozen=True)
class DeviceLevels:
    """K sorted levels (float32) and their programming std, in the same units."""

    values: torch.Tensor
    std: torch.Tensor
    integer_grid: bool = False          # values are consecutive integers (the torch.ao grid)
    label: str = ""
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.values.numel())

    @property
    def lo(self) -> float:
        return float(self.values[0])

    @property
    def hi(self) -> float:
        return float(self.values[-1])

    @property
    def midpoints(self) -> torch.Tensor:
        return (self.values[1:] + self.values[:-1]) / 2

    @property
    def has_noise(self) -> bool:
        return bool((self.std > 0).any())

    def to(self, device: str | torch.device) -> "DeviceLevels":
        return DeviceLevels(self.values.to(device), self.std.to(device), self.integer_grid,
                            self.label, self.meta)


def uniform_levels(k: int, ctc: float = 0.0) -> DeviceLevels:
    """Ideal K-level grid ``-(K-1)//2 .. (K-1)//2``; ``ctc`` = std as a fraction of the window."""
    if not isinstance(k, (int, np.integer)) or k < 2 or k > 256:
        raise FieldError("uniform", f"number of levels must be an integer in 2..256, got {k!r}")
    if not (np.isfinite(ctc) and ctc >= 0):
        raise UserError(f"ctc: must be a finite number >= 0, got {ctc!r}")
    qmin, qmax = -(k - 1) // 2, (k - 1) // 2
    values = torch.arange(qmin, qmax + 1, dtype=torch.float32)
    std = torch.full_like(values, float(ctc) * (qmax - qmin))
    return DeviceLevels(values, std, integer_grid=True, label=f"uniform-{k}",
                        meta={"kind": "uniform", "k": int(k), "ctc": float(ctc)})


def levels_from_table(table, source: str = "level table") -> DeviceLevels:
    """Normalise a ``labspin.levels.LevelTable`` to [-1, 1]: l = 2(R - R_min)/(R_max - R_min) - 1."""
    mean = np.asarray(getattr(table, "mean", None), dtype=float).reshape(-1)
    std = np.asarray(getattr(table, "std", None), dtype=float).reshape(-1)
    if mean.size < 2:
        raise UserError(f"{source}: needs at least 2 levels, got {mean.size}")
    if mean.shape != std.shape:
        raise UserError(f"{source}: mean and std have different lengths")
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise UserError(f"{source}: levels contain NaN or infinite values")
    if (std < 0).any():
        raise UserError(f"{source}: std must be >= 0")
    if (np.diff(mean) <= 0).any():
        raise UserError(f"{source}: level means must be strictly increasing")
    span = mean[-1] - mean[0]
    values = 2.0 * (mean - mean[0]) / span - 1.0
    nstd = 2.0 * std / span
    device = dict(getattr(table, "device", {}) or {})
    meta = {"kind": "table", "k": int(mean.size), "device": device,
            "ctc_definition": getattr(table, "ctc_definition", "unknown"),
            "ctc_window": float(np.mean(std) / span),
            "quantity": getattr(table, "quantity", "hall_resistance"), "unit": getattr(table, "unit", "ohm"),
            "notes": list((getattr(table, "extra", {}) or {}).get("notes") or [])}
    label = str(device.get("id") or device.get("type") or f"table-{mean.size}")
    return DeviceLevels(torch.tensor(values, dtype=torch.float32),
                        torch.tensor(nstd, dtype=torch.float32), False, label, meta)


def differential(levels: DeviceLevels) -> DeviceLevels:
    """Two devices per weight (w ∝ G+ − G−, the idle one left at the lowest level): the 2K − 1
    signed levels ±(l_k − l_0), scaled to [−1, 1].

    Measured level sets are often lopsided (dense at one end), while weights are roughly
    symmetric about zero; the differential pair makes the grid symmetric and nearly doubles
    it. Programming noise is that of both devices: σ = sqrt(σ_k² + σ_0²).
    """
    if levels.integer_grid:
        raise FieldError("mapping", "differential needs a measured level table, not a uniform grid")
    v, sd = levels.values.double(), levels.std.double()
    d, var = v[1:] - v[0], sd[1:] ** 2 + sd[0] ** 2
    span = float(d[-1])
    values = torch.cat([-d.flip(0), torch.zeros(1, dtype=d.dtype), d]) / span
    std = torch.cat([var.flip(0), 2 * sd[:1] ** 2, var]).sqrt() / span
    meta = {**levels.meta, "mapping": "differential", "k_devices": len(levels), "k": int(values.numel())}
    return DeviceLevels(values.float(), std.float(), False, f"{levels.label} (differential)", meta)


def _rows(s: torch.Tensor, rows: int) -> torch.Tensor:
    """Per-row parameter as a (rows, 1) column (broadcast a per-tensor value)."""
    return s.reshape(-1, 1).expand(rows, 1) if s.numel() == 1 else s.reshape(rows, 1)


def snap(w2d: torch.Tensor, s: torch.Tensor, z: torch.Tensor, levels: DeviceLevels) -> torch.Tensor:
    """Index of the nearest level for every weight of a (rows, n) view; int64, same shape.

    On an integer grid with integral z this is torch's own arithmetic (``z + nearbyint(w/s)``,
    clamped); otherwise nearest level of ``w/s + z`` by bucketize on the level midpoints.
    """
    rows = w2d.shape[0]
    s_, z_ = _rows(s, rows).to(w2d.dtype), _rows(z, rows).to(w2d.dtype)
    inv = 1.0 / s_
    if levels.integer_grid and bool(torch.equal(z_, torch.round(z_))):
        q = torch.round(w2d * inv) + z_
        q = q.clamp_(levels.lo, levels.hi)
        return (q - levels.lo).to(torch.int64)
    u = w2d * inv + z_
    return torch.bucketize(u, levels.midpoints.to(u.device, u.dtype))


def dequantize(idx: torch.Tensor, s: torch.Tensor, z: torch.Tensor, levels: DeviceLevels,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Weights ``s * (l[idx] - z)``; with a generator, each weight draws its level's std once
    (``s * (l + sigma * xi - z)``, one programming event)."""
    rows = idx.shape[0]
    vals = levels.values.to(idx.device)
    s_, z_ = _rows(s, rows).to(vals.dtype), _rows(z, rows).to(vals.dtype)
    lvl = vals[idx]
    if generator is not None and levels.has_noise:
        xi = torch.randn(idx.shape, generator=generator, device=idx.device, dtype=vals.dtype)
        lvl = lvl + levels.std.to(idx.device)[idx] * xi
    return (lvl - z_) * s_          # on the integer grid l - z is exact: same rounding as torch


# --------------------------------------------------------------------------- parts of the ladder

LADDERS = ("full", "distinguishable", "fit")


def distinguishable_index(levels: DeviceLevels, k: float = 5.0) -> torch.Tensor:
    """Indices of the levels kept greedily from the lowest, each ≥ k·(σ_a + σ_b)/2 above the last
    kept one — DESIGN §5's rule (``labspin.analysis.distinguishable``), on the normalised ladder."""
    from labspin.levels import distinguishable_index as rule
    return torch.tensor(rule(levels.values.cpu().numpy(), levels.std.cpu().numpy(), k), dtype=torch.int64)


def sub_levels(levels: DeviceLevels, index: torch.Tensor, mirror: bool = False,
               source: str = "ladder") -> DeviceLevels:
    """The levels ``index`` (ascending) as a ladder of their own; ``mirror`` negates and reverses it
    (the periphery flips the sign of the scale digitally: w = -s (l - z))."""
    index = index.to(torch.int64).cpu()
    if index.numel() < 2:
        raise FieldError(source, f"fewer than 2 usable levels after selection ({index.numel()})")
    full = index.numel() == len(levels) and not mirror
    if full:
        return levels
    v, sd = levels.values[index.to(levels.values.device)], levels.std[index.to(levels.std.device)]
    if mirror:
        v, sd = -v.flip(0), sd.flip(0)
    return DeviceLevels(v, sd, False, levels.label, levels.meta)


def ladder_views(levels: DeviceLevels, ladder: str = "full", k: float = 5.0, max_trim: int = 1
                 ) -> list[tuple[torch.Tensor, bool]]:
    """The parts of the ladder an observer may choose from, as (level indices, mirrored).

    ``full``: every level, as measured. ``distinguishable``: the k·σ-separated subset only.
    ``fit``: every contiguous run that drops up to ``max_trim`` levels at one end (an isolated
    end level, a noisy dense end), the distinguishable subset, each also mirrored; the observer
    keeps, per row, the view with the lowest weight error.
    """
    if ladder not in LADDERS:
        raise FieldError("ladder", f"unknown {ladder!r} (choose from {', '.join(LADDERS)})")
    n = len(levels)
    full = torch.arange(n)
    if ladder == "full":
        return [(full, False)]
    dist = distinguishable_index(levels, k)
    if ladder == "distinguishable":
        if dist.numel() < 2:
            raise FieldError("ladder", f"distinguishable: fewer than 2 usable levels after selection "
                                       f"({dist.numel()} at k = {k:g})")
        return [(dist, False)]
    runs = [torch.arange(a, n - b) for a in range(max_trim + 1) for b in range(max_trim + 1)
            if (a == 0 or b == 0) and n - a - b >= 2]          # trimmed at one end at a time
    if dist.numel() >= 2 and dist.numel() < n:
        runs.append(dist)
    if levels.integer_grid:          # a symmetric integer grid mirrors onto itself
        return [(r, False) for r in runs]
    return [(r, m) for r in runs for m in (False, True)]
