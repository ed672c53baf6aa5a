"""`compile=True` (torch.compile of the forward passes): the same predictions as eager, programmed
weights reach the compiled graph, and a machine that cannot compile falls back to eager, saying so."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from labspin.quant import evaluate as ev
from labspin.quant.data import ImageSet
from labspin.levels import LevelTable


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, stride=2),
                         nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


def _data(n: int = 64) -> ImageSet:
    rng = np.random.default_rng(1)
    return ImageSet(torch.from_numpy(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)),
                    torch.from_numpy(rng.integers(0, 10, n)), "random")


def _grid(**kw):
    table = LevelTable.from_stats(np.linspace(0.0, 1.0, 5), np.full(5, 0.1), np.full(5, 10))
    return ev.evaluate_levels(_tiny(), table, _data(), observers="minmax", granularities="channel",
                              trials=2, batch_size=32, seed=3, **kw)


def test_compiled_passes_equal_eager_including_noisy_trials():
    eager, compiled = _grid(), _grid(compile=True)
    cols = ["config", "accuracy", "std", "agreement"]
    assert eager[cols].equals(compiled[cols]), (eager[cols], compiled[cols])
    # each noisy trial programs new weights in place; had the compiled graph kept the first ones,
    # its noisy row would repeat its noiseless row, which eager's does not
    assert list(eager["config"]) == ["FP32", "per-channel min-max", "per-channel min-max + CTC noise"]
    assert eager["agreement"].iloc[2] != eager["agreement"].iloc[1]
    assert not any("torch.compile unavailable" in n for n in compiled.attrs["notes"])


def test_a_machine_that_cannot_compile_falls_back_to_eager(monkeypatch):
    def broken(model, **kw):
        def run(*a, **k):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")
        return run
    monkeypatch.setattr(torch, "compile", broken)
    df = _grid(compile=True)
    eager = _grid()
    assert df["accuracy"].tolist() == eager["accuracy"].tolist()
    assert ("torch.compile unavailable here (InvalidCxxCompiler: No working C++ compiler found): "
            "eager forward passes") in df.attrs["notes"]
