"""Post-training quantization of a (BN-folded) model's weights onto device levels.

Quantize once (observer → (s, z), snap → level index per weight); a Monte-Carlo trial then only
draws the programming noise and writes the weights back into the same FP32 graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from labspin.quant.levels_map import DeviceLevels, dequantize, snap
from labspin.quant.model import quantizable_layers
from labspin.quant.observers import Observer


@dataclass
class LayerQuant:
    """One layer: level index per weight (rows, n), and the per-row map (s, z)."""

    idx: torch.Tensor
    s: torch.Tensor
    z: torch.Tensor
    shape: tuple[int, ...]
    allowed: torch.Tensor | None = None     # (rows, K) bool: the part of the ladder each row uses

    def weight(self, levels: DeviceLevels, generator: torch.Generator | None = None) -> torch.Tensor:
        return dequantize(self.idx.long(), self.s, self.z, levels, generator).reshape(self.shape)


@dataclass
class QuantizedWeights:
    levels: DeviceLevels
    observer: str
    granularity: str
    layers: dict[str, LayerQuant] = field(default_factory=dict)
    reference: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)   # per layer: what auto/learned chose

    def weights(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Programmed weights by layer name; with a generator, one CTC draw per weight."""
        return {n: lq.weight(self.levels, generator) for n, lq in self.layers.items()}

    @torch.no_grad()
    def apply(self, model: nn.Module, generator: torch.Generator | None = None,
              input_means: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """Write the programmed weights into ``model`` (a BN-folded copy) in place.

        ``input_means`` (per layer, mean input per channel; see ``input_means``) turns on bias
        correction: b = b_fp32 - (W_q - W_fp32) @ E[x] for the *deterministic* quantization error
        only (the programming noise of a trial is unknown to the periphery).
        """
        mods = dict(model.named_modules())
        for name, w in self.weights(generator).items():
            p = mods[name].weight
            p.copy_(w.to(p.device, p.dtype))
        if input_means:
            for name, (w_fp, b_fp) in self.reference.items():
                mod = mods[name]
                dw = self.layers[name].weight(self.levels).to(w_fp.device) - w_fp
                mu = input_means[name].to(dw.device, dw.dtype)
                corr = dw.sum(dim=(2, 3)) @ mu if dw.dim() == 4 else dw @ mu
                base = b_fp if b_fp is not None else torch.zeros_like(corr)
                if mod.bias is None:
                    mod.bias = nn.Parameter(torch.zeros_like(corr), requires_grad=False)
                mod.bias.copy_(base - corr)
        return model

    def squared_error(self, model: nn.Module) -> float:
        """Σ (w − q(w))² over the quantized layers of the (folded) FP32 ``model``."""
        mods = dict(model.named_modules())
        return float(sum((mods[n].weight.detach().float() - w.to(mods[n].weight.device)).square().sum()
                         for n, w in self.weights().items()))


@torch.no_grad()
def quantize_weights(model: nn.Module, levels: DeviceLevels, observer: Observer,
                     layers: list[str] | None = None) -> QuantizedWeights:
    """Observe and snap every chosen conv/linear weight of ``model`` (default: all of them)."""
    mods = dict(model.named_modules())
    names = layers if layers is not None else quantizable_layers(model)
    out = QuantizedWeights(levels, observer.name, observer.granularity)
    for name in names:
        w = mods[name].weight.detach()
        out.layers[name] = quantize_layer(w, levels, observer)
        b = mods[name].bias
        out.reference[name] = (w.float().clone(), None if b is None else b.detach().float().clone())
    return out


def quantize_layer(w: torch.Tensor, levels: DeviceLevels, observer: Observer) -> LayerQuant:
    """One weight tensor onto the levels: (s, z) and the nearest level on the observer's ladder."""
    w2d = observer.rows(w)
    lv = levels.to(w.device)
    if observer.ladder == "full":          # the plain path: torch.ao's arithmetic on an integer grid
        s, z = observer.observe_rows(w2d, lv)
        return LayerQuant(snap(w2d, s, z, lv).to(torch.int16), s, z, tuple(w.shape))
    s, z, idx, allowed = observer.fit_rows(w2d, lv)
    return LayerQuant(idx.to(torch.int16), s, z, tuple(w.shape), allowed)


@torch.no_grad()
def input_means(model: nn.Module, layers: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean input per channel of each layer on a calibration batch (for bias correction)."""
    mods = dict(model.named_modules())
    means: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(_m, args):
            a = args[0].float()
            means[name] = a.mean(dim=(0, 2, 3)) if a.dim() == 4 else a.mean(dim=0)
        return fn
    handles = [mods[n].register_forward_pre_hook(hook(n)) for n in layers]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {k: v.clone() for k, v in means.items()}
