"""Observers and the snap onto device levels: torch.ao equality, nearest level, MSE <= min-max."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.ao.quantization import MinMaxObserver as AoMinMax
from torch.ao.quantization import PerChannelMinMaxObserver as AoPerChannel

from labspin.errors import UserError
from labspin.levels import LevelTable
from labspin.quant.levels_map import dequantize, levels_from_table, snap, uniform_levels
from labspin.quant.observers import make_observer, row_error


def _random_weights() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    conv = torch.randn(16, 8, 3, 3, generator=g) * 0.05 + 0.01
    conv[3] = conv[3].abs() + 0.02          # an all-positive channel (zero outside the range)
    conv[5] = -conv[5].abs()                # an all-negative channel
    conv[7] = 0.0                           # a constant channel (scale falls to eps)
    lin = torch.rand(10, 64, generator=g) - 0.3
    return [conv, lin]


@pytest.fixture(scope="module")
def real_weights(shared_dir) -> list[torch.Tensor]:
    sd = torch.load(shared_dir / "models/resnet18_cifar10.pt", weights_only=True)
    return [sd[k].float() for k in ("conv1.weight", "layer2.0.downsample.0.weight",
                                     "layer4.1.conv2.weight", "fc.weight")]


def _torch_ao(w: torch.Tensor, k: int, granularity: str) -> torch.Tensor:
    qmin, qmax = -(k - 1) // 2, (k - 1) // 2
    if granularity == "tensor":
        ob = AoMinMax(dtype=torch.qint8, qscheme=torch.per_tensor_affine, quant_min=qmin, quant_max=qmax)
        ob(w)
        s, z = ob.calculate_qparams()
        return torch.fake_quantize_per_tensor_affine(w, float(s), int(z), qmin, qmax)
    ob = AoPerChannel(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_affine,
                      quant_min=qmin, quant_max=qmax)
    ob(w)
    s, z = ob.calculate_qparams()
    return torch.fake_quantize_per_channel_affine(w, s, z.to(torch.int32), 0, qmin, qmax)


def _ours(w: torch.Tensor, levels, observer: str, granularity: str) -> torch.Tensor:
    ob = make_observer(observer, granularity)
    s, z = ob(w, levels)
    rows = ob.rows(w)
    return dequantize(snap(rows, s, z, levels), s, z, levels).reshape(w.shape)


@pytest.mark.parametrize("k", [3, 7, 11, 15])
def test_minmax_uniform_is_torch_ao_bit_for_bit(k, real_weights):
    levels = uniform_levels(k)
    assert levels.values[0] == -(k - 1) // 2 and levels.values[-1] == (k - 1) // 2   # -5..5, not -6..4
    for w in _random_weights() + real_weights:
        for gran in ("tensor", "channel"):
            ours, ref = _ours(w, levels, "minmax", gran), _torch_ao(w, k, gran)
            assert torch.equal(ours, ref), (k, gran, tuple(w.shape), int((ours != ref).sum()))
            assert ours.unique().numel() <= (k if gran == "tensor" else k * w.shape[0])


def _nonuniform_levels(k: int = 11, seed: int = 0):
    rng = np.random.default_rng(seed)
    mean = np.cumsum(rng.uniform(0.3, 1.5, k))           # irregular spacing
    return levels_from_table(LevelTable(mean, np.full(k, 0.02), np.full(k, 100)))


def test_levels_normalised_to_unit_window():
    table = LevelTable(np.array([1.0, 1.5, 3.0]), np.array([0.1, 0.2, 0.4]), np.array([5, 5, 5]))
    lv = levels_from_table(table)
    assert torch.allclose(lv.values, torch.tensor([-1.0, -0.5, 1.0]))
    assert torch.allclose(lv.std, torch.tensor([0.1, 0.2, 0.4]))       # 2/(R_max-R_min) = 1 here


@pytest.mark.parametrize("bad, why", [
    (LevelTable(np.array([1.0, np.nan]), np.array([0.1, 0.1]), np.array([1, 1])), "NaN"),
    (LevelTable(np.array([1.0]), np.array([0.1]), np.array([1])), "at least 2"),
    (LevelTable(np.array([2.0, 1.0]), np.array([0.1, 0.1]), np.array([1, 1])), "increasing"),
])
def test_bad_level_tables_refused(bad, why):
    with pytest.raises(UserError, match=why):
        levels_from_table(bad)


def test_snap_is_nearest_level_on_nonuniform_levels():
    lv = _nonuniform_levels()
    w = _random_weights()[0]
    ob = make_observer("minmax", "channel")
    s, z = ob(w, lv)
    rows = ob.rows(w)
    idx = snap(rows, s, z, lv)
    grid = s[:, None, None] * (lv.values[None, None, :] - z[:, None, None])   # (C, 1, K) weights
    brute = (rows[:, :, None] - grid).abs().argmin(dim=2)
    q = dequantize(idx, s, z, lv)
    qb = dequantize(brute, s, z, lv)
    # same weight value (ties may pick either index with identical distance)
    assert torch.allclose((q - rows).abs(), (qb - rows).abs(), atol=1e-7)


@pytest.mark.parametrize("levels", [uniform_levels(3), uniform_levels(11), _nonuniform_levels(11),
                                    _nonuniform_levels(5, seed=3)], ids=["u3", "u11", "nu11", "nu5"])
def test_mse_never_worse_than_minmax(levels, real_weights):
    for w in _random_weights() + [real_weights[1], real_weights[3]]:   # 8k and 5k real weights
        for gran in ("tensor", "channel"):
            mm, mse = make_observer("minmax", gran), make_observer("mse", gran)
            rows = mm.rows(w)
            e_mm, _ = row_error(rows, *mm(w, levels), levels)
            e_mse, _ = row_error(rows, *mse(w, levels), levels)
            assert (e_mse <= e_mm * (1 + 1e-6) + 1e-12).all()
            if gran == "channel" and w.numel() >= 5000:
                assert e_mse.sum() < 0.9 * e_mm.sum()        # a real improvement, not just a tie


def test_percentile_clips_inside_minmax():
    w = torch.cat([torch.randn(4, 2000, generator=torch.Generator().manual_seed(0)),
                   torch.full((4, 1), 25.0)], dim=1)        # one outlier per channel
    lv = uniform_levels(7)
    s_mm, _ = make_observer("minmax", "channel")(w, lv)
    s_p, _ = make_observer("percentile", "channel")(w, lv)
    assert (s_p < 0.5 * s_mm).all()


def test_per_tensor_vs_per_channel_shapes():
    w = _random_weights()[0]
    lv = _nonuniform_levels()
    for obs in ("minmax", "mse", "percentile"):
        s, z = make_observer(obs, "tensor")(w, lv)
        assert s.shape == z.shape == (1,)
        s, z = make_observer(obs, "channel")(w, lv)
        assert s.shape == z.shape == (w.shape[0],)


def test_unknown_observer_or_granularity():
    for call, key in ((lambda: make_observer("kl"), "observer"),       # the field, not a CLI flag
                      (lambda: make_observer("mse", "group"), "granularity"),
                      (lambda: uniform_levels(1), "uniform")):
        with pytest.raises(UserError, match=f"^{key}: ") as err:
            call()
        assert err.value.key == key
