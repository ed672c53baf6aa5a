"""Data-driven PTQ: per-layer decisions from the layer's own FP32 output on calibration images.

``auto`` picks, per layer, the (observer × part of the ladder) whose quantized weights change the
layer's output least; ``learned`` rounding (AdaRound, Nagel et al., ICML 2020) then chooses, per
weight, between the two levels around it so that the layer reproduces its FP32 output, starting
soft and annealed to a hard choice. Both see each layer's FP32 input, captured by a forward
pre-hook during one FP32 forward pass over the calibration images (no activations are stored).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from labspin.quant.levels_map import DeviceLevels
from labspin.quant.observers import make_observer
from labspin.quant.quantize import LayerQuant, QuantizedWeights, quantize_layer

AUTO_CANDIDATES = (("minmax", "full"), ("minmax", "fit"), ("mse", "full"), ("mse", "fit"), ("percentile", "full"))


def layer_output(mod: nn.Module, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The layer's output for weight ``w`` without its bias (conv or linear)."""
    if isinstance(mod, nn.Conv2d):
        return F.conv2d(x, w, None, mod.stride, mod.padding, mod.dilation, mod.groups)
    return F.linear(x, w)


def _centre(e: torch.Tensor) -> torch.Tensor:
    """Remove each output channel's mean: the part bias correction takes away anyway."""
    dims = (0, 2, 3) if e.dim() == 4 else (0,)
    return e - e.mean(dim=dims, keepdim=True)


def output_error(mod: nn.Module, x: torch.Tensor, dw: torch.Tensor, centred: bool = False) -> float:
    """Mean squared change of the layer's output caused by the weight change ``dw``."""
    e = layer_output(mod, x, dw)
    return float((_centre(e) if centred else e).square().mean())


def _each_layer(model: nn.Module, names: list[str], x: torch.Tensor,
                fn: Callable[[str, nn.Module, torch.Tensor], None]) -> None:
    """One FP32 forward pass over ``x``; ``fn(name, module, its input)`` for every named layer."""
    mods = dict(model.named_modules())
    handles = [mods[n].register_forward_pre_hook(lambda m, a, n=n: fn(n, m, a[0].detach().float()))
               for n in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()


def quantize_auto(model: nn.Module, levels: DeviceLevels, granularity: str, names: list[str],
                  calib: torch.Tensor, *, centred: bool = False,
                  candidates=AUTO_CANDIDATES) -> QuantizedWeights:
    """Per layer, the candidate with the lowest output error on ``calib`` (prepared images).

    ``centred``: judge the error after removing each channel's mean (with bias correction on).
    """
    out = QuantizedWeights(levels, "auto", granularity)
    lv = levels.to(calib.device)

    def pick(name: str, mod: nn.Module, x: torch.Tensor) -> None:
        w = mod.weight.detach().float()
        best = None
        for obs, ladder in candidates:
            lq = quantize_layer(w, lv, make_observer(obs, granularity, ladder))
            err = output_error(mod, x, lq.weight(lv) - w, centred)
            if best is None or err < best[0]:
                best = (err, lq, f"{obs}/{ladder}")
        out.layers[name], out.choices[name] = best[1], best[2]
        b = mod.bias
        out.reference[name] = (w.clone(), None if b is None else b.detach().float().clone())

    _each_layer(model, names, calib, pick)
    return out


def _rect_sigmoid(alpha: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(alpha) * 1.2 - 0.1, 0.0, 1.0)


def _brackets(lq: LayerQuant, w2d: torch.Tensor, levels: DeviceLevels):
    """Per weight, the allowed levels just below and above it in weight units, and their indices."""
    rows, k = w2d.shape[0], len(levels)
    vals = levels.values.to(w2d.device)
    s, z = lq.s.reshape(-1, 1).expand(rows, 1), lq.z.reshape(-1, 1).expand(rows, 1)
    g = s * (vals[None, :] - z)                                   # (rows, K) level values as weights
    allowed = lq.allowed if lq.allowed is not None else torch.ones(rows, k, dtype=torch.bool,
                                                                    device=w2d.device)
    g = torch.where(allowed, g, torch.full_like(g, math.inf))
    gs, order = g.sort(dim=1)
    m = allowed.sum(dim=1, keepdim=True)
    p = torch.searchsorted(gs.contiguous(), w2d.contiguous())
    lo = torch.minimum((p - 1).clamp_min(0), m - 1)
    hi = torch.minimum(p, m - 1)
    q_lo, q_hi = gs.gather(1, lo), gs.gather(1, hi)
    return q_lo, q_hi, order.gather(1, lo), order.gather(1, hi)


def learn_rounding(mod: nn.Module, x: torch.Tensor, lq: LayerQuant, levels: DeviceLevels, *,
                   iterations: int = 200, batch: int = 32, lr: float = 0.05, reg: float = 1.0,
                   noise: bool = False, centred: bool = False,
                   generator: torch.Generator | None = None) -> LayerQuant:
    """AdaRound for one layer on its FP32 input ``x``: same (s, z), new level per weight.

    Each weight's value is ``q_lo + h(α)(q_hi − q_lo)`` between the allowed levels around it; α
    minimises the output error relative to nearest rounding's (plus, with ``noise``, a fresh CTC
    draw of both levels each step) and a regulariser ``Σ 1 − |2h − 1|^β`` with β annealed from 20 to 2, which ends every h at 0
    or 1. Starts at nearest rounding (h = the weight's position between the two levels).
    """
    w = mod.weight.detach().float()
    w2d = w.reshape(w.shape[0], -1)
    q_lo, q_hi, i_lo, i_hi = _brackets(lq, w2d, levels)
    gap = q_hi - q_lo
    r = torch.where(gap > 0, (w2d - q_lo) / torch.where(gap > 0, gap, torch.ones_like(gap)),
                    torch.zeros_like(gap)).clamp(0.0, 1.0)
    alpha = torch.logit(((r + 0.1) / 1.2).clamp(1e-4, 1 - 1e-4)).requires_grad_(True)
    std = levels.std.to(w.device)
    scale = lq.s.reshape(-1, 1).abs().expand_as(w2d) if lq.s.numel() > 1 else lq.s.abs().expand_as(w2d)
    s_lo, s_hi = scale * std[i_lo], scale * std[i_hi]
    opt = torch.optim.Adam([alpha], lr=lr, eps=1e-12)
    scale0 = None
    gen = generator or torch.Generator(device=x.device).manual_seed(0)
    warm = int(0.2 * iterations)
    n = x.shape[0]
    with torch.enable_grad():
        for it in range(iterations):
            sel = torch.randint(0, n, (min(batch, n),), generator=gen, device=x.device)
            xb = x[sel]
            with torch.no_grad():
                target = layer_output(mod, xb, w)
            h = _rect_sigmoid(alpha)
            ws = q_lo + h * gap
            if noise:
                xi = torch.randn(w2d.shape, generator=gen, device=x.device)
                ws = ws + xi * (s_lo + h * (s_hi - s_lo))
            e = layer_output(mod, xb, ws.reshape(w.shape)) - target
            loss = (_centre(e) if centred else e).square().mean()
            if scale0 is None:                # the loss relative to nearest rounding's: O(1) gradients
                with torch.no_grad():
                    near = q_lo + (r >= 0.5).float() * gap
                    e0 = layer_output(mod, xb, near.reshape(w.shape)) - target
                    scale0 = (_centre(e0) if centred else e0).square().mean().clamp_min(1e-20)
            loss = loss / scale0
            if it >= warm:
                beta = 20.0 + (2.0 - 20.0) * (it - warm) / max(1, iterations - warm)
                loss = loss + reg * (1 - (2 * h - 1).abs().pow(beta)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    up = _rect_sigmoid(alpha.detach()) >= 0.5
    idx = torch.where(up, i_hi, i_lo)
    return LayerQuant(idx.to(torch.int16), lq.s, lq.z, lq.shape, lq.allowed)


def quantize_learned(model: nn.Module, base: QuantizedWeights, calib: torch.Tensor, *,
                     iterations: int = 200, batch: int = 32, noise: bool = False, centred: bool = False,
                     seed: int = 0, progress: Callable[[str], None] | None = None) -> QuantizedWeights:
    """Learned rounding of every layer of ``base`` (its (s, z) and ladder kept), on ``calib``."""
    out = QuantizedWeights(base.levels, base.observer, base.granularity, dict(base.layers),
                           dict(base.reference), dict(base.choices))
    lv = base.levels.to(calib.device)
    gen = torch.Generator(device=calib.device).manual_seed(seed)

    def fit(name: str, mod: nn.Module, x: torch.Tensor) -> None:
        t0 = time.perf_counter()
        out.layers[name] = learn_rounding(mod, x, base.layers[name], lv, iterations=iterations,
                                          batch=batch, noise=noise, centred=centred, generator=gen)
        changed = float((out.layers[name].idx != base.layers[name].idx).float().mean())
        out.choices[name] = (base.choices.get(name, base.observer) + f" + learned rounding "
                             f"({100 * changed:.1f} % of weights moved)")
        if progress:
            progress(f"learned rounding {name}: {100 * changed:.1f} % moved, {time.perf_counter() - t0:.1f} s")

    _each_layer(model, list(base.layers), calib, fit)
    return out
