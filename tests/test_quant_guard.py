"""The guard on the shared checkpoint: a table of seven even levels and one far below collapses
per-channel min-max (flagged, with the isolated level named); auto does far better."""
from __future__ import annotations

import numpy as np
import pytest

from labspin.levels import LevelTable
from labspin.quant.data import load_cifar10
from labspin.quant.evaluate import evaluate_levels, markdown
from labspin.quant.guard import flag

ISOLATED = LevelTable(np.array([-10.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.full(8, 0.02),
                      np.full(8, 100), device={"id": "iso8"})


def test_flag_text():
    assert flag(95.0, -1.0, ["x"]) == ""
    f = flag(40.0, -50.0, ["level 0 is isolated"])
    assert "agreement 40.0 % < 90 %" in f and "Δ -50.0 points" in f and "level 0 is isolated" in f
    assert "Δ +6.0" in flag(99.0, 6.0, [])


@pytest.mark.slow
def test_isolated_level_min_max_flagged_auto_avoids_the_collapse(shared_dir):
    data = load_cifar10(shared_dir / "data/cifar10", "test").subset(300)
    calib = load_cifar10(shared_dir / "data/cifar10", "train").subset(128)
    df = evaluate_levels(shared_dir / "models/resnet18_cifar10.pt", ISOLATED, data, observers="minmax,auto",
                         granularities="channel", noise=False, calibration=calib, batch_size=150,
                         bias_correction=True)
    fp, mm, auto = (df.iloc[i] for i in range(3))
    assert mm["config"] == "per-channel min-max" and auto["config"] == "per-channel auto"
    assert mm["flag"] and "isolated" in mm["flag"]
    assert mm["agreement"] < 90 or mm["delta"] < -5
    # auto avoids the collapse (the target, within 3 points of FP32, is not reached yet:
    # about -5.7 on these 300 images); whatever it reaches, the guard's verdict matches it
    assert auto["accuracy"] > mm["accuracy"] + 5 and auto["agreement"] > mm["agreement"]
    assert bool(auto["flag"]) == (auto["agreement"] < 90 or abs(auto["delta"]) > 5)
    assert any(n.startswith("⚠ per-channel min-max") for n in df.attrs["notes"])
    assert "⚠" in markdown(df)
