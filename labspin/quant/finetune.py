"""Hardware-aware fine-tuning: train the BN-folded network with its weights fake-quantized onto the
device levels (straight-through gradients) and the levels' CTC noise drawn in every forward pass
(aihwkit-style hardware-aware training), so the weights settle where programming them costs least.

The folded network is what the evaluator quantizes, so training sees exactly the weights that will
be programmed. The result is written back in the checkpoint's own layout (each BN set to the
identity plus the folded bias), which ``labspin evaluate --checkpoint`` folds again exactly.
Resumable per epoch; data order, augmentation and noise of epoch e come from (seed, e).
"""
from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from labspin.errors import OutputExists, UserError
from labspin.quant.calibrate import _brackets
from labspin.quant.data import ImageSet, load_cifar10, normalize
from labspin.quant.levels_map import DeviceLevels
from labspin.quant.model import fold_bn, load_model, quantizable_layers
from labspin.quant.observers import make_observer
from labspin.quant.quantize import LayerQuant, quantize_layer
from labspin.quant.train import _atomic_save, augment, bf16_supported, check_settings, load_state

STATE_FORMAT = "labspin-finetune/1"


class FakeQuant(nn.Module):
    """Weight → nearest allowed device level (+ one CTC draw while training); gradient straight
    through. The map (s, z) and the ladder part come from the observer every ``every`` steps."""

    def __init__(self, levels: DeviceLevels, observer, noise: bool, every: int = 50):
        super().__init__()
        self.levels, self.observer, self.noise, self.every = levels, observer, noise, every
        self.lq: LayerQuant | None = None
        self.calls = 0
        self.generator: torch.Generator | None = None

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            lv = self.levels.to(w.device)
            if self.lq is None or (self.training and self.calls % self.every == 0):
                self.lq = quantize_layer(w.detach(), lv, self.observer)
            if self.training:
                self.calls += 1
            w2d = w.detach().reshape(w.shape[0], -1)
            q_lo, q_hi, i_lo, i_hi = _brackets(self.lq, w2d, lv)
            up = (w2d - q_lo) > (q_hi - w2d)
            q = torch.where(up, q_hi, q_lo)
            if self.noise and self.training and lv.has_noise:
                idx = torch.where(up, i_hi, i_lo)
                s = self.lq.s.reshape(-1, 1).abs()
                xi = torch.randn(q.shape, generator=self.generator, device=q.device)
                q = q + s * lv.std[idx] * xi
        return w + (q.reshape(w.shape) - w).detach()


def unfold(original: nn.Module, folded: nn.Module) -> dict[str, torch.Tensor]:
    """State dict in ``original``'s layout holding ``folded``'s weights: each conv→BN pair becomes the
    folded conv and a BN that is the identity plus the folded bias (folding it again is exact)."""
    orig = copy.deepcopy(original).eval()
    om, fm = dict(orig.named_modules()), dict(folded.named_modules())
    order = list(om)
    with torch.no_grad():
        for i, name in enumerate(order):
            m, f = om[name], fm.get(name)
            if not isinstance(m, (nn.Conv2d, nn.Linear)) or f is None:
                continue
            m.weight.copy_(f.weight)
            bn = om[order[i + 1]] if i + 1 < len(order) else None
            if isinstance(m, nn.Conv2d) and m.bias is None and isinstance(bn, nn.BatchNorm2d) \
                    and isinstance(fm.get(order[i + 1]), nn.Identity):
                bn.weight.fill_(1.0)
                bn.bias.copy_(f.bias)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            elif m.bias is not None:
                m.bias.copy_(f.bias)
    return {k: v.detach().cpu().clone() for k, v in orig.state_dict().items()}


def finetune(
    checkpoint: str | os.PathLike,
    levels: DeviceLevels,
    data: ImageSet | str | os.PathLike,
    output: str | os.PathLike,
    *,
    epochs: int = 2,
    batch_size: int = 128,
    lr: float = 0.002,
    subset: int | None = None,
    observer: str = "minmax",
    granularity: str = "channel",
    ladder: str = "full",
    noise: bool = True,
    resume: bool = False,
    device: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Fine-tune ``checkpoint`` on the device ``levels``; write ``output`` (a ResNet-18 state_dict,
    fp32) and ``output.state`` (for ``resume``). SGD, momentum 0.9, cosine decay of ``lr``.
    ``progress(label, step, steps)`` is called after each step. Returns {"checkpoint", "state", "epoch",
    "history"}."""
    out = Path(output)
    st_path = Path(str(out) + ".state")
    saved = None
    if resume:
        if not st_path.is_file():
            raise UserError(f"{out}: nothing to resume ({st_path.name} not found)")
        saved = load_state(st_path, STATE_FORMAT, "fine-tuning")
        c = saved["config"]
        epochs, batch_size, lr, subset, seed = c["epochs"], c["batch_size"], c["lr"], c["subset"], c["seed"]
        observer, granularity, ladder, noise = c["observer"], c["granularity"], c["ladder"], c["noise"]
    elif (out.exists() or st_path.exists()) and not overwrite:
        raise OutputExists(out, then=", or resume it")
    dev = check_settings(out, epochs, batch_size, lr, device)
    obs = make_observer(observer, granularity, ladder)
    original = load_model(checkpoint)
    if not isinstance(data, ImageSet):
        data = load_cifar10(data, "train")
    data = data.subset(subset)

    model = fold_bn(original)
    if saved is not None:
        model.load_state_dict(saved["model"])
    model = model.to(dev)
    mods = dict(model.named_modules())
    quants = {}
    for name in quantizable_layers(model):
        quants[name] = FakeQuant(levels, obs, noise)
        parametrize.register_parametrization(mods[name], "weight", quants[name])
    model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    steps_per_epoch = (len(data) + batch_size - 1) // batch_size
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + torch.cos(torch.tensor(torch.pi * min(step, total) / total)).item()))
    start, history = 0, []
    if saved is not None:
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        start, history = int(saved["epoch"]), list(saved["history"])
    use_bf16 = bf16_supported(dev)
    last = epochs if stop_after is None else min(epochs, start + int(stop_after))
    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, subset=subset, seed=seed, observer=observer,
                  granularity=granularity, ladder=ladder, noise=noise, checkpoint=str(checkpoint),
                  levels=levels.label)
    for epoch in range(start, last):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        noise_gen = torch.Generator(device=dev).manual_seed(seed * 1_000_003 + epoch + 7)
        for q in quants.values():
            q.generator, q.calls, q.lq = noise_gen, 0, None
        order = torch.randperm(len(data), generator=gen)
        model.train()
        t0, tot, correct, seen = time.perf_counter(), 0.0, 0, 0
        label = f"finetune on {levels.label}: epoch {epoch + 1}/{epochs}"
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb = augment(normalize(data.x[idx]), gen).to(dev).contiguous(memory_format=torch.channels_last)
            yb = data.y[idx].to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            if progress is not None:
                progress(label, i + 1, steps_per_epoch)
        history.append(dict(epoch=epoch + 1, loss=tot / seen, train_accuracy=100.0 * correct / seen,
                            seconds=time.perf_counter() - t0, bf16=use_bf16))
        state = _plain_state(model)
        plain = fold_bn(original)
        plain.load_state_dict(state)
        _atomic_save(unfold(original, plain), out)
        _atomic_save({"format": STATE_FORMAT, "epoch": epoch + 1, "config": config, "model": state,
                      "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "history": history},
                     st_path)
    return {"checkpoint": out, "state": st_path, "epoch": len(history), "history": history}


def _plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trained FP32 weights under their plain names (without the fake-quant parametrization)."""
    key = ".parametrizations.weight.original"
    return {(k.replace(key, ".weight") if k.endswith(key) else k): v.detach().cpu().clone()
            for k, v in model.state_dict().items()}
