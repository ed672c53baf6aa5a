"""CIFAR-10 images for evaluation and training: an ``.npz`` (x (N,32,32,3) uint8, y (N,)), a folder
holding ``cifar10_{split}.npz``, or a torchvision root (``cifar-10-batches-py``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from labspin.errors import FieldError, UserError

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@dataclass
class ImageSet:
    """uint8 NHWC images and int64 labels, kept compact; ``normalized`` makes the float batch."""

    x: torch.Tensor          # (N, 32, 32, 3) uint8
    y: torch.Tensor          # (N,) int64
    source: str = ""

    def __len__(self) -> int:
        return int(self.y.numel())

    def subset(self, k: int | None) -> "ImageSet":
        """The first k images (the official order: the same images run to run)."""
        if k is None or k <= 0 or k >= len(self):
            return self
        return ImageSet(self.x[:k], self.y[:k], f"{self.source}[:{k}]")


def normalize(x_uint8: torch.Tensor) -> torch.Tensor:
    """NHWC uint8 → NCHW float32 in [0,1] normalised with the CIFAR-10 mean/std, channels_last."""
    x = x_uint8.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def _from_arrays(x: np.ndarray, y: np.ndarray, src: str) -> ImageSet:
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise UserError(f"{src}: x must have shape (N, 32, 32, 3), got {x.shape}")
    if x.dtype != np.uint8:
        raise UserError(f"{src}: x must be uint8 pixels 0..255, got {x.dtype}")
    if y.shape[0] != x.shape[0]:
        raise UserError(f"{src}: x has {x.shape[0]} images but y has {y.shape[0]} labels")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise UserError(f"{src}: y must hold class labels 0..9")
    if x.shape[0] == 0:
        raise UserError(f"{src}: no images")
    return ImageSet(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)), src)


def load_npz(path: str | os.PathLike) -> ImageSet:
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as d:
            if "x" not in d or "y" not in d:
                raise UserError(f"{p}: expected arrays 'x' and 'y', found {sorted(d.files)}")
            return _from_arrays(d["x"], d["y"], str(p))
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip/format errors: the file is not a usable npz
        raise UserError(f"{p}: not a readable .npz ({type(exc).__name__})") from None


def load_cifar10(path: str | os.PathLike | None, split: str = "test") -> ImageSet:
    """Images of ``split`` ("test" or "train") from an npz file, an npz folder or a torchvision root."""
    if split not in ("test", "train"):
        raise ValueError(split)
    if path is None or str(path) == "":
        raise FieldError("data", "no data given (a path, or env LABSPIN_DATA)")
    p = Path(path)
    if p.is_file():
        return load_npz(p)
    if p.is_dir():
        npz = p / f"cifar10_{split}.npz"
        if npz.is_file():
            return load_npz(npz)
        if (p / "cifar-10-batches-py").is_dir():
            import torchvision
            try:
                ds = torchvision.datasets.CIFAR10(str(p), train=(split == "train"), download=False)
            except Exception as exc:  # noqa: BLE001
                raise UserError(f"{p}: torchvision CIFAR-10 root unreadable ({exc})") from None
            return _from_arrays(ds.data, np.asarray(ds.targets), f"{p} (torchvision {split})")
        raise UserError(f"{p}: no cifar10_{split}.npz and no torchvision 'cifar-10-batches-py' folder")
    raise UserError(f"{p}: data not found")
