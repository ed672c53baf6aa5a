"""The CIFAR-10 ResNet-18 (DESIGN §6), its checkpoint, BN folding and the layers to quantize."""
from __future__ import annotations

import copy
import fnmatch
import os
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from labspin.errors import FieldError, UserError

ARCH = "resnet18-cifar10"


def resnet18_cifar(num_classes: int = 10) -> nn.Module:
    """torchvision ResNet-18 with a 3x3 stride-1 stem and no max-pool (32x32 inputs)."""
    m = torchvision.models.resnet18(num_classes=num_classes)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` with one-line errors for missing or garbled files."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: checkpoint not found")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip/weights_only errors all mean "not usable"
        msg = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{p}: not a readable PyTorch checkpoint ({msg})") from None
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):   # a training-state file
        sd = sd["model"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{p}: expected a state_dict (name -> tensor), got {type(sd).__name__}")
    return sd


def load_model(path: str | os.PathLike) -> nn.Module:
    """The CIFAR ResNet-18 with the checkpoint's weights (fp16 stored → fp32), in eval mode."""
    sd = load_state_dict_file(path)
    model = resnet18_cifar()
    ref = model.state_dict()
    missing = [k for k in ref if k not in sd]
    unexpected = [k for k in sd if k not in ref]
    if missing or unexpected:
        what = (f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}")
        raise UserError(f"{path}: not a {ARCH} checkpoint ({what}; {len(missing)} missing, "
                        f"{len(unexpected)} unexpected keys)")
    for k, v in ref.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise UserError(f"{path}: not a {ARCH} checkpoint ({k}: shape {tuple(sd[k].shape)}, "
                            f"expected {tuple(v.shape)})")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    return model.eval()


def _parent(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    parts = name.split(".")
    mod = root
    for p in parts[:-1]:
        mod = getattr(mod, p)
    return mod, parts[-1]


def fold_bn(model: nn.Module) -> nn.Module:
    """A copy with every Conv2d→BatchNorm2d pair folded into one conv with bias (eval semantics).

    A pair is a conv whose next registered sibling is a BN of matching width — the ResNet layout
    (conv1/bn1, conv2/bn2, downsample.0/.1) and plain Sequential stacks. Uses torch's own
    ``fuse_conv_bn_eval``.
    """
    model = copy.deepcopy(model).eval()
    names = dict(model.named_modules())
    order = list(names)
    for i, name in enumerate(order[:-1]):
        conv = names[name]
        if not isinstance(conv, nn.Conv2d):
            continue
        nxt = order[i + 1]
        same_parent = nxt.rpartition(".")[0] == name.rpartition(".")[0]
        cands = [nxt] if same_parent else []
        for bn_name in cands:
            bn = names.get(bn_name)
            if isinstance(bn, nn.BatchNorm2d) and bn.num_features == conv.out_channels:
                fused = fuse_conv_bn_eval(conv, bn)
                p, attr = _parent(model, name)
                setattr(p, attr, fused)
                p, attr = _parent(model, bn_name)
                setattr(p, attr, nn.Identity())
                names[bn_name] = None
                break
    return model


def quantizable_layers(model: nn.Module, patterns: list[str] | None = None) -> list[str]:
    """Names of Conv2d/Linear modules to quantize; ``patterns`` are fnmatch globs (default: all)."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not patterns:
        return names
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    for p in patterns:
        if not any(fnmatch.fnmatchcase(n, p) for n in names):
            raise FieldError("layers", f"{p!r} matches no conv/linear layer (e.g. {names[0]!r}, 'layer4.*')")
    return chosen
