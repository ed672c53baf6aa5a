"""Observers: a weight tensor and a level set in, the affine map (s, z) of ``w ~ s (l - z)`` out.

Each observer does one job (``observe_rows`` on a (rows, n) view); the granularity — one row per
tensor or one per output channel, like torch.ao's ``MinMaxObserver`` / ``PerChannelMinMaxObserver``
— is a constructor argument of the same class, so every observer works both ways.

An ``Observer`` subclass with its own ``name`` registers itself under that name, with ``label``
(how result tables name it); ``make_observer``, ``labspin evaluate --observer NAME`` and the
evaluator's table then know it: a new observer is one class. Observers defined outside labspin
register when their module is imported, or when an installed distribution names the module in
the entry-point group ``labspin.observers`` (docs/internals.md §9).
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch

from labspin.errors import FieldError, UserError
from labspin.quant.levels_map import LADDERS, DeviceLevels, dequantize, ladder_views, snap, sub_levels

GRANULARITIES = ("tensor", "channel")
_EPS = torch.tensor([torch.finfo(torch.float32).eps])  # torch.ao's default ``eps`` buffer


# the registry (below: lookups); here because defining a subclass registers it
GROUP = "labspin.observers"
_REGISTRY: dict[str, type[Observer]] = {}


def _key(name: str) -> str:
    """How names are compared: "min-max", "MinMax" and "min_max" are one observer."""
    return name.strip().lower().replace("-", "").replace("_", "")


def register(cls: type[Observer], *, replace: bool = False) -> type[Observer]:
    """Add an observer class under ``cls.name`` (``Observer.__init_subclass__`` calls this); a name
    taken by another class is refused unless ``replace`` (the same class defined again is fine)."""
    old = next((c for c in _REGISTRY.values() if _key(c.name) == _key(cls.name)), None)
    if old is not None and not replace and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"observer {cls.name!r} is already registered (by {old.__module__}.{old.__qualname__})")
    if old is not None:
        del _REGISTRY[old.name]
    _REGISTRY[cls.name] = cls
    return cls


class Observer:
    """Base: reshape to rows, call ``observe_rows``; returns (s, z) of shape (rows,).

    A subclass sets ``name`` (registers it) and ``label``, and implements ``observe_rows``; its
    constructor takes ``(granularity, ladder)`` as the base's does (other arguments need defaults).
    """

    name = "base"
    label = ""                  # as result tables and plots name it ("min-max"); default: name

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            register(cls)

    def __init__(self, granularity: str = "channel", ladder: str = "full"):
        if granularity not in GRANULARITIES:
            raise FieldError("granularity", f"unknown {granularity!r} (choose from {', '.join(GRANULARITIES)})")
        if ladder not in LADDERS:
            raise FieldError("ladder", f"unknown {ladder!r} (choose from {', '.join(LADDERS)})")
        self.granularity = granularity
        self.ladder = ladder

    def rows(self, w: torch.Tensor) -> torch.Tensor:
        w = w.detach().float()
        return w.reshape(w.shape[0], -1) if self.granularity == "channel" else w.reshape(1, -1)

    def __call__(self, w: torch.Tensor, levels: DeviceLevels) -> tuple[torch.Tensor, torch.Tensor]:
        return self.observe_rows(self.rows(w), levels)

    def observe_rows(self, w2d: torch.Tensor, levels: DeviceLevels) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def fit_rows(self, w2d: torch.Tensor, levels: DeviceLevels
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(s, z, level index per weight, allowed levels per row) on the part of the ladder this
        observer may use.

        The observer keeps its definition on each candidate view of the ladder (``ladder_views``);
        per row the view with the lowest weight error wins. A mirrored view comes back as a
        negative scale on the measured ladder (w = s (l - z), s < 0), so the indices always refer
        to the device's own levels.
        """
        best = None
        views = ladder_views(levels, self.ladder)
        if len(views) > 3 and not isinstance(self, MinMaxObserver):
            views = _likely_views(w2d, levels, views, self.granularity)
        for index, mirror in views:
            lv = sub_levels(levels, index, mirror)
            s, z = self.observe_rows(w2d, lv)
            err, idx = row_error(w2d, s, z, lv)
            if mirror:
                s, z, idx = -s, -z, (len(index) - 1) - idx
            dev_idx = index.to(idx.device)[idx]
            mask = torch.zeros(w2d.shape[0], len(levels), dtype=torch.bool, device=w2d.device)
            mask[:, index.to(w2d.device)] = True
            if best is None:
                best = [err, s, z, dev_idx, mask]
                continue
            better = err < best[0]
            best[0] = torch.where(better, err, best[0])
            best[1] = torch.where(better, s, best[1])
            best[2] = torch.where(better, z, best[2])
            best[3] = torch.where(better[:, None], dev_idx, best[3])
            best[4] = torch.where(better[:, None], mask, best[4])
        return best[1], best[2], best[3], best[4]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(granularity={self.granularity!r}, ladder={self.ladder!r})"


def range_to_qparams(lo: torch.Tensor, hi: torch.Tensor, levels: DeviceLevels
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Map [min(lo,0), max(hi,0)] onto [l_0, l_K-1] — torch.ao's ``_calculate_qparams`` (affine).

    On the integer grid z is rounded and clamped to an integer exactly as torch does (so zero is a
    level); on measured levels z stays continuous (no level need be exactly zero).
    """
    min_neg = torch.minimum(lo, torch.zeros_like(lo))
    max_pos = torch.maximum(hi, torch.zeros_like(hi))
    scale = (max_pos - min_neg) / float(levels.hi - levels.lo)
    scale = torch.maximum(scale, _EPS.to(scale.device))
    if levels.integer_grid:
        zp = int(levels.lo) - torch.round(min_neg / scale).to(torch.int)
        zp = torch.clamp(zp, int(levels.lo), int(levels.hi))
        return scale, zp.to(torch.float32)
    return scale, levels.lo - min_neg / scale


def _likely_views(w2d, levels, views, granularity, keep: int = 3):
    """The ``keep`` views where min-max fits best (summed weight error): the costly observers
    search only those."""
    mm = MinMaxObserver(granularity)
    errs = []
    for index, mirror in views:
        lv = sub_levels(levels, index, mirror)
        errs.append(float(row_error(w2d, *mm.observe_rows(w2d, lv), lv)[0].sum()))
    order = sorted(range(len(views)), key=errs.__getitem__)
    return [views[i] for i in sorted(order[:keep])]


class MinMaxObserver(Observer):
    """Full range of the weights onto the full range of the levels."""

    name = "minmax"
    label = "min-max"

    def observe_rows(self, w2d, levels):
        return range_to_qparams(w2d.amin(dim=1), w2d.amax(dim=1), levels)


class PercentileObserver(Observer):
    """Clip the tails: the [100-p, p] percentile range onto the levels (p = 99.9 by default)."""

    name = "percentile"
    label = "percentile"

    def __init__(self, granularity: str = "channel", ladder: str = "full", percentile: float = 99.9):
        super().__init__(granularity, ladder)
        if not 50.0 < percentile <= 100.0:
            raise UserError(f"percentile: must be in (50, 100], got {percentile}")
        self.percentile = float(percentile)

    def observe_rows(self, w2d, levels):
        q = torch.tensor([1.0 - self.percentile / 100.0, self.percentile / 100.0], device=w2d.device)
        lo, hi = torch.quantile(w2d, q, dim=1)
        return range_to_qparams(lo, hi, levels)


def row_error(w2d: torch.Tensor, s: torch.Tensor, z: torch.Tensor, levels: DeviceLevels
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared error per row of snapping to the levels, and the level indices used."""
    idx = snap(w2d, s, z, levels)
    err = (dequantize(idx, s, z, levels) - w2d).square_().sum(dim=1)
    return err, idx


class MSEObserver(Observer):
    """Minimise ||w - q(w)||^2 per row over (s, z) on the (non-uniform) level set.

    Grid search over shrink factors of the min-max range, then alternating refinement (Lloyd:
    assign each weight to its nearest level, then the least-squares (s, z) of w ~ s l - s z for
    that assignment). Every step is batched over rows; the min-max point is a candidate, so the
    result is never worse than min-max.
    """

    name = "mse"
    label = "MSE"

    def __init__(self, granularity: str = "channel", ladder: str = "full", grid: int = 24,
                 shrink_min: float = 0.3, iterations: int = 8):
        super().__init__(granularity, ladder)
        self.grid, self.shrink_min, self.iterations = int(grid), float(shrink_min), int(iterations)

    def observe_rows(self, w2d, levels):
        s0, z0 = MinMaxObserver.observe_rows(self, w2d, levels)
        best_s, best_z = s0.clone(), z0.clone()
        best_err, idx = row_error(w2d, s0, z0, levels)
        for beta in torch.linspace(self.shrink_min, 1.0, self.grid)[:-1].tolist():
            s = s0 * beta                       # shrink the range about zero: z is unchanged
            err, _ = row_error(w2d, s, z0, levels)
            better = err < best_err
            best_s = torch.where(better, s, best_s)
            best_err = torch.where(better, err, best_err)
        _, idx = row_error(w2d, best_s, best_z, levels)
        vals = levels.values.to(w2d.device)
        n = w2d.shape[1]
        for _ in range(self.iterations):
            lvl = vals[idx]
            ml, mw = lvl.mean(dim=1), w2d.mean(dim=1)
            var = (lvl * lvl).mean(dim=1) - ml * ml
            cov = (lvl * w2d).mean(dim=1) - ml * mw
            ok = (var > 1e-12 * (levels.hi - levels.lo) ** 2) & (cov > 0) & (n > 1)
            a = torch.where(ok, cov / torch.where(ok, var, torch.ones_like(var)), best_s)
            b = mw - a * ml
            s = a.clamp_min(float(_EPS))
            z = torch.where(ok, -b / s, best_z)
            err, idx_new = row_error(w2d, s, z, levels)
            better = err < best_err
            if not bool(better.any()):
                break
            best_s = torch.where(better, s, best_s)
            best_z = torch.where(better, z, best_z)
            best_err = torch.where(better, err, best_err)
            idx = torch.where(better[:, None], idx_new, idx)
        return best_s, best_z


# --------------------------------------------------------------------------- the registry

def unregister(name: str) -> None:
    """Remove an observer (tests that register a toy observer clean up with this)."""
    for n in [n for n in _REGISTRY if _key(n) == _key(name)]:
        del _REGISTRY[n]


def observer_class(name: str) -> type[Observer] | None:
    """The class registered as ``name`` (any spelling of it); entry points are loaded on a miss."""
    for _ in range(2):
        for n, cls in _REGISTRY.items():
            if _key(n) == _key(name):
                return cls
        from labspin.plugins import load_entry_points
        if not load_entry_points(GROUP):
            break
    return None


def observer_label(name: str) -> str:
    """How tables name observer ``name`` ("min-max", "MSE"); ``auto`` and unknown names as given."""
    cls = observer_class(name) if name != "auto" else None
    return (cls.label or cls.name) if cls is not None else name


class ObserverView(Mapping):
    """name -> Observer class of every registered observer, shipped and installed, by name; live."""

    def __getitem__(self, name: str) -> type[Observer]:
        cls = observer_class(name)
        if cls is None:
            raise KeyError(name)
        return cls

    def __iter__(self) -> Iterator[str]:
        from labspin.plugins import load_entry_points
        load_entry_points(GROUP)
        return iter(sorted(_REGISTRY))

    def __len__(self) -> int:
        return sum(1 for _ in self)


OBSERVERS: Mapping[str, type[Observer]] = ObserverView()


def make_observer(name: str, granularity: str = "channel", ladder: str = "full") -> Observer:
    """Observer by name; UserError for an unknown name, granularity or ladder."""
    cls = observer_class(name)
    if cls is None:
        raise FieldError("observer", f"unknown {name!r} (choose from {', '.join(OBSERVERS)}, auto)")
    return cls(granularity, ladder)
