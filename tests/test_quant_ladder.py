"""The part of the ladder an observer uses (contiguous runs, the distinguishable subset, mirrored),
the auto observer, the guard, and `labspin levels --select distinguishable`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from labspin.errors import UserError
from labspin.levels import LevelTable, select_levels
from labspin.quant.levels_map import (distinguishable_index, ladder_views, levels_from_table, snap,
                                      sub_levels, uniform_levels)
from labspin.quant.observers import make_observer, row_error
from labspin.quant.quantize import quantize_layer

# seven even levels and one far below them (a real multi-level table often looks like this)
ISOLATED = LevelTable(np.array([-10.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.full(8, 0.05),
                      np.full(8, 100), device={"id": "iso8"})


def _weights(seed=0, rows=32, n=300):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, n, generator=g) * 0.05


def _on_grid(lq, w, levels):
    """Every programmed weight is s (l_k - z) for a level l_k the row may use."""
    q = lq.weight(levels).reshape(w.shape[0], -1)
    grid = lq.s[:, None, None] * (levels.values[None, None, :] - lq.z[:, None, None])
    d = (q[..., None] - grid).abs()
    if lq.allowed is not None:
        d = torch.where(lq.allowed[:, None, :], d, torch.full_like(d, float("inf")))
    return float(d.min(dim=-1).values.max())


def test_full_ladder_is_the_plain_observer():
    lv = levels_from_table(ISOLATED)
    w = _weights()
    lq = quantize_layer(w, lv, make_observer("minmax", "channel"))
    s, z = make_observer("minmax", "channel").observe_rows(w, lv)
    assert torch.equal(lq.s, s) and torch.equal(lq.idx.long(), snap(w, s, z, lv)) and lq.allowed is None
    (index, mirrored), = ladder_views(lv, "full")
    assert index.tolist() == list(range(8)) and not mirrored


def test_fit_ladder_drops_the_isolated_level_and_keeps_the_definition():
    lv = levels_from_table(ISOLATED)
    w = _weights()
    for obs in ("minmax", "mse", "percentile"):
        full = quantize_layer(w, lv, make_observer(obs, "channel"))
        fit = quantize_layer(w, lv, make_observer(obs, "channel", "fit"))
        e_full = (full.weight(lv) - w).square().sum()
        e_fit = (fit.weight(lv) - w).square().sum()
        assert e_fit < 0.4 * e_full, obs
        assert not fit.allowed[:, 0].any()                  # level 0 (the isolated one) unused
        assert (fit.idx != 0).all()
        assert _on_grid(fit, w, lv) < 1e-5
    # min-max keeps its definition on the chosen levels: the row's extremes land on its end levels
    fit = quantize_layer(w, lv, make_observer("minmax", "channel", "fit"))
    q = fit.weight(lv)
    assert torch.allclose(q.amax(1), w.amax(1), rtol=1e-4) or torch.allclose(q.amin(1), w.amin(1), rtol=1e-4)


def test_mirrored_ladder_is_a_negative_scale_on_the_device_levels():
    # dense at the low end; weights dense just below zero: mirroring puts the dense end there
    table = LevelTable(np.array([0.0, 0.05, 0.1, 0.16, 0.23, 0.4, 0.7, 1.0]), np.full(8, 0.001), np.full(8, 9))
    lv = levels_from_table(table)
    g = torch.Generator().manual_seed(3)
    w = 0.01 - torch.rand(16, 400, generator=g).pow(3) * 0.1      # mostly small negative weights
    views = ladder_views(lv, "fit")
    assert any(m for _, m in views) and any(not m for _, m in views)
    mm = make_observer("mse", "channel", "fit")
    s, z, idx, allowed = mm.fit_rows(w, lv)
    assert (s < 0).any()
    lq = quantize_layer(w, lv, mm)
    assert _on_grid(lq, w, lv) < 1e-5
    plain = quantize_layer(w, lv, make_observer("mse", "channel"))
    assert (lq.weight(lv) - w).square().sum() < (plain.weight(lv) - w).square().sum()
    mirrored = sub_levels(lv, torch.arange(len(lv)), mirror=True)
    assert torch.allclose(mirrored.values, -lv.values.flip(0))


def test_distinguishable_subset_and_too_few_levels():
    noisy = LevelTable(np.array([0.0, 0.1, 0.2, 0.3, 0.4, 1.0]), np.full(6, 0.03), np.full(6, 9))
    lv = levels_from_table(noisy)
    idx = distinguishable_index(lv, 5.0)
    assert idx.tolist() == [0, 2, 4, 5]           # 0.15 apart needed: 0, 0.2, 0.4, 1.0
    assert ladder_views(lv, "distinguishable")[0][0].tolist() == [0, 2, 4, 5]
    assert select_levels(noisy, "distinguishable").mean.tolist() == [0.0, 0.2, 0.4, 1.0]
    blur = LevelTable(np.array([0.0, 0.1, 0.2]), np.full(3, 0.5), np.full(3, 9))
    with pytest.raises(UserError, match="fewer than 2 usable levels"):
        ladder_views(levels_from_table(blur), "distinguishable")
    with pytest.raises(UserError, match="fewer than 2 usable levels"):
        select_levels(blur, "distinguishable")
    with pytest.raises(UserError, match="^ladder: unknown 'half'") as err:
        make_observer("mse", "channel", "half")
    assert err.value.key == "ladder"


def test_uniform_full_ladder_unchanged_fit_never_worse():
    lv = uniform_levels(11)
    w = _weights(1)
    for obs in ("minmax", "mse"):
        a = quantize_layer(w, lv, make_observer(obs, "channel"))
        b = quantize_layer(w, lv, make_observer(obs, "channel", "fit"))
        ea, _ = row_error(w, a.s, a.z, lv)
        eb = (b.weight(lv) - w).square().sum(1)
        assert (eb <= ea * (1 + 1e-5) + 1e-12).all()


def test_levels_select_distinguishable_cli(tmp_path, capsys):
    from test_analysis import staircase_frame, write_run
    from labspin.cli import main
    run = write_run(tmp_path / "n.h5", staircase_frame(ctc=0.06, seed=1, device="dev-N"),
                    sample={"id": "dev-N", "type": "tilted"})
    outs = {}
    for sel in ("all", "distinguishable"):
        out = tmp_path / f"{sel}.json"
        with pytest.raises(SystemExit) as e:
            main(["levels", str(run), "-o", str(out), "--select", sel])
        assert e.value.code == 0, capsys.readouterr().err
        outs[sel] = json.loads(out.read_text())
    full, dist = outs["all"], outs["distinguishable"]
    assert 2 <= len(dist["levels"]) < len(full["levels"]) == 11
    assert dist["selection"]["states"] == distinguishable_index(
        levels_from_table(load(tmp_path / "all.json")), 5.0).tolist()
    m = [lv["mean"] for lv in dist["levels"]]
    s = [lv["std"] for lv in dist["levels"]]
    assert all(b - a >= 5 * (sa + sb) / 2 for a, b, sa, sb in zip(m, m[1:], s, s[1:]))


def load(p):
    from labspin.levels import load_levels
    return load_levels(p)
