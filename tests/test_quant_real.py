"""The shared checkpoint on 500 real CIFAR-10 test images: FP32 and 11-level PTQ accuracy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from labspin.levels import LevelTable
from labspin.quant.data import load_cifar10
from labspin.quant.evaluate import _eval_model, accuracy, prepare
from labspin.quant.levels_map import levels_from_table, uniform_levels
from labspin.quant.model import fold_bn, load_model
from labspin.quant.observers import make_observer
from labspin.quant.quantize import quantize_weights

# A realistic non-uniform 11-state staircase (compressed at both ends, like the simulated tilted
# device) with 2 % of the window as CTC std.
STAIRCASE = np.array([-0.8, -0.771, -0.713, -0.648, -0.559, -0.447, -0.321, -0.171, -0.012, 0.148, 0.3])


@pytest.mark.slow
def test_real_checkpoint_fp32_and_11_levels_per_channel(shared_dir):
    torch.manual_seed(0)
    model = load_model(shared_dir / "models/resnet18_cifar10.pt")
    data = load_cifar10(shared_dir / "data/cifar10", "test").subset(500)
    dev = torch.device("cpu")
    x, y = prepare(data, dev)
    fp = _eval_model(fold_bn(model), dev)
    acc_fp = accuracy(fp, x, y, batch_size=250)
    assert acc_fp > 85.0

    span = STAIRCASE[-1] - STAIRCASE[0]
    table = LevelTable(STAIRCASE, np.full(11, 0.02 * span), np.full(11, 200))
    results = {}
    for name, levels, observer in (("uniform-11 min-max", uniform_levels(11), "minmax"),
                                   ("staircase-11 min-max", levels_from_table(table), "minmax")):
        q = _eval_model(fold_bn(model), dev)
        quantize_weights(q, levels, make_observer(observer, "channel")).apply(q)
        assert not torch.equal(q.layer3[0].conv1.weight, fp.layer3[0].conv1.weight)   # really snapped
        results[name] = accuracy(q, x, y, batch_size=250)
    for name, acc in results.items():
        assert acc > acc_fp - 3.0, (name, acc, acc_fp)
