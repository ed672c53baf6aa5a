"""Train the CIFAR-10 ResNet-18 the way the shared baseline was trained; checkpoint and resume.

Each epoch writes two files: ``CKPT`` — a plain state_dict with fp16 floats, the shared baseline's
format, so ``labspin evaluate --checkpoint CKPT`` takes it — and ``CKPT.state`` — fp32 weights,
optimizer, scheduler, epoch, config and history, for ``--resume``. Data order and augmentation of
epoch e come from a generator seeded by (seed, e), so a resumed run repeats a straight run exactly.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from labspin.errors import FieldError, OutputExists, UserError
from labspin.quant.data import ImageSet, load_cifar10, normalize
from labspin.quant.model import resnet18_cifar

STATE_SUFFIX = ".state"
STATE_FORMAT = "labspin-train/1"


def load_state(path: Path, fmt: str, what: str) -> dict:
    """A resumable run's saved state (`torch.load`, weights only), checked for its format."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{path}: unreadable {what} state ({type(exc).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != fmt:
        raise UserError(f"{path}: not a {fmt} {what} state")
    return saved


def check_settings(out: Path, epochs: int, batch_size: int, lr: float, device: str | None) -> torch.device:
    """The training settings every trainer checks, its output folder, and the device to use."""
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise FieldError(name, f"must be an integer >= 1, got {v!r}")
    if not lr > 0:
        raise FieldError("lr", f"must be > 0, got {lr}")
    if out.parent and not out.parent.exists():
        raise UserError(f"{out.parent}: output folder does not exist")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FieldError("device", "cuda requested but no CUDA device is available")
    return dev


def state_path(checkpoint: str | os.PathLike) -> Path:
    return Path(str(checkpoint) + STATE_SUFFIX)


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast only where the hardware does it natively (else it is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the 4-px reflect-padded batch and a random horizontal flip (vectorised)."""
    b = x.shape[0]
    p = F.pad(x, (4, 4, 4, 4), mode="reflect")
    oy = torch.randint(0, 9, (b,), generator=gen)
    ox = torch.randint(0, 9, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    ar = torch.arange(32)
    rows = oy[:, None] + ar
    cols = ox[:, None] + ar
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    dev = x.device
    return p[torch.arange(b, device=dev)[:, None, None, None], torch.arange(3, device=dev)[None, :, None, None],
             rows.to(dev)[:, None, :, None], cols.to(dev)[:, None, None, :]]


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only (not on BN parameters or biases)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def one_cycle(total_steps: int, warmup: float = 0.25, start: float = 1 / 25, end: float = 1e-4):
    """LR factor per step: linear warm-up from ``start`` to 1 over 25 % of the steps, then linear
    decay to ``end`` (OneCycleLR's linear schedule, but defined for any number of steps)."""
    warm = max(1, round(warmup * total_steps))
    rest = max(1, total_steps - warm)

    def factor(step: int) -> float:
        if step < warm:
            return start + (1 - start) * step / warm
        return max(end, 1 - (1 - end) * (step - warm) / rest)
    return factor


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def train(
    data: ImageSet | str | os.PathLike,
    output: str | os.PathLike,
    *,
    epochs: int = 12,
    batch_size: int = 256,
    lr: float = 0.2,
    subset: int | None = None,
    resume: str | os.PathLike | None = None,
    device: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    test_data: ImageSet | str | os.PathLike | None = None,
    stop_after: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    model_fn: Callable[[], nn.Module] = resnet18_cifar,
    weight_decay: float = 5e-4,
    label_smoothing: float = 0.1,
) -> dict:
    """SGD (momentum 0.9, Nesterov) with a one-cycle LR (25 % linear warm-up, linear decay).

    With ``resume`` (a checkpoint written here, or its ``.state``), the schedule-defining settings
    (epochs, batch size, lr, subset, seed) come from the saved state and training continues at the
    next epoch. ``stop_after`` ends this call after that many epochs (time-sliced training).
    ``progress(label, step, steps)`` is called after each step ("epoch 3/12", 1-based step).
    Returns {"checkpoint", "state", "epoch", "history"}.
    """
    out = Path(output)
    st_path = state_path(out)
    saved = None
    if resume is not None:
        rp = Path(resume)
        rs = rp if rp.name.endswith(STATE_SUFFIX) else state_path(rp)
        if not rs.is_file():
            raise UserError(f"{rp}: no training state {rs.name} next to it (was it written by labspin train?)")
        saved = load_state(rs, STATE_FORMAT, "training")
        cfg = saved["config"]
        epochs, batch_size, lr, subset, seed = (cfg["epochs"], cfg["batch_size"], cfg["lr"],
                                                cfg["subset"], cfg["seed"])
        same = rs.resolve() == st_path.resolve()
        if out.exists() and not overwrite and not same:
            raise OutputExists(out, then=", or write to the checkpoint you resume")
    elif (out.exists() or st_path.exists()) and not overwrite:
        raise OutputExists(out)
    dev = check_settings(out, epochs, batch_size, lr, device)
    if not isinstance(data, ImageSet):
        data = load_cifar10(data, "train")
    data = data.subset(subset)
    test = None
    if test_data is not None:
        test = test_data if isinstance(test_data, ImageSet) else load_cifar10(test_data, "test")

    torch.manual_seed(seed)
    model = model_fn().to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(_param_groups(model, weight_decay), lr=lr, momentum=0.9, nesterov=True)
    steps_per_epoch = (len(data) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.LambdaLR(opt, one_cycle(epochs * steps_per_epoch))
    start, history = 0, []
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        start, history = int(saved["epoch"]), list(saved["history"])
    use_bf16 = bf16_supported(dev)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    last = epochs if stop_after is None else min(epochs, start + int(stop_after))
    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, subset=subset, seed=seed,
                  weight_decay=weight_decay, label_smoothing=label_smoothing)

    for epoch in range(start, last):
        gen = _epoch_generator(seed, epoch)
        order = torch.randperm(len(data), generator=gen)
        model.train()
        t0, tot_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        label = f"epoch {epoch + 1}/{epochs}"
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb = augment(normalize(data.x[idx]), gen).to(dev, non_blocking=True)
            xb = xb.contiguous(memory_format=torch.channels_last)
            yb = data.y[idx].to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = model(xb)
                loss = loss_fn(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            if progress is not None:
                progress(label, i + 1, steps_per_epoch)
        rec = dict(epoch=epoch + 1, loss=tot_loss / seen, train_accuracy=100.0 * correct / seen,
                   test_accuracy=None, seconds=time.perf_counter() - t0, bf16=use_bf16)
        if test is not None:
            from labspin.quant.evaluate import accuracy, prepare
            model.eval()
            x, y = prepare(test, dev)
            rec["test_accuracy"] = accuracy(model, x, y, bf16=use_bf16)
        history.append(rec)
        sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        _atomic_save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, out)
        _atomic_save({"format": STATE_FORMAT, "epoch": epoch + 1, "config": config, "model": sd,
                      "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                      "history": history}, st_path)
    return {"checkpoint": out, "state": st_path, "epoch": len(history), "history": history}
