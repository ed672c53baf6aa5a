"""Evaluator mechanics on tiny synthetic models/data, CTC noise by seed, outputs, and CLI bad inputs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from labspin.cli import main as cli_main
from labspin.levels import LevelTable
from labspin.quant.data import ImageSet, load_cifar10
from labspin.quant.evaluate import evaluate_levels, observer_comparisons, paired_interval, trial_seeds, write_report
from labspin.quant.levels_map import levels_from_table, uniform_levels
from labspin.quant.model import fold_bn, load_model, quantizable_layers, resnet18_cifar
from labspin.quant.observers import make_observer
from labspin.quant.quantize import quantize_weights

TABLE = LevelTable(np.array([0.0, 0.08, 0.2, 0.35, 0.5, 0.62, 0.71, 0.8, 0.86, 0.93, 1.0]),
                   np.full(11, 0.02), np.full(11, 50), device={"id": "t11"}, ctc_definition="window")


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    for bn in (m[1], m[4]):   # non-trivial running statistics, so folding has something to do
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return m.eval()


def synthetic_images(n: int = 64, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (n,), generator=g), "synthetic")


def test_fold_bn_preserves_outputs():
    for model in (tiny_cnn(), resnet18_cifar().eval()):
        if not isinstance(model, nn.Sequential):
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        x = torch.randn(2, 3, 32, 32)
        folded = fold_bn(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        with torch.no_grad():
            assert torch.allclose(model(x), folded(x), atol=1e-4, rtol=1e-4)


def test_resnet_layers_default_all_conv_and_linear():
    names = quantizable_layers(fold_bn(resnet18_cifar()))
    assert len(names) == 21 and names[0] == "conv1" and names[-1] == "fc"
    assert "layer2.0.downsample.0" in names
    assert quantizable_layers(resnet18_cifar(), ["layer4.*"]) == [n for n in names if n.startswith("layer4")]


def test_quantized_weights_lie_on_the_level_grid():
    model = fold_bn(tiny_cnn())
    lv = levels_from_table(TABLE)
    qw = quantize_weights(model, lv, make_observer("mse", "channel"))
    for name, w in qw.weights().items():
        lq = qw.layers[name]
        u = w.reshape(w.shape[0], -1) / lq.s[:, None] + lq.z[:, None]      # back to level units
        d = (u[..., None] - lv.values).abs().min(dim=-1).values
        assert d.max() < 1e-4, name


def test_noise_reproducible_by_seed_and_has_the_level_std():
    model = fold_bn(tiny_cnn())
    lv = levels_from_table(LevelTable(TABLE.mean, np.full(11, 0.05), TABLE.n))
    qw = quantize_weights(model, lv, make_observer("minmax", "channel"))
    a = qw.weights(torch.Generator().manual_seed(7))
    b = qw.weights(torch.Generator().manual_seed(7))
    c = qw.weights(torch.Generator().manual_seed(8))
    clean = qw.weights()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    # noise in level units: (w_noisy - w_clean)/s has the normalised std 2*0.05/1.0 = 0.1
    xi = torch.cat([((a[k] - clean[k]).reshape(a[k].shape[0], -1) / qw.layers[k].s[:, None]).reshape(-1)
                    for k in a])
    assert xi.std().item() == pytest.approx(0.1, rel=0.15)
    assert len(set(trial_seeds(0, 5))) == 5 and trial_seeds(0, 5) == trial_seeds(0, 5)


def test_evaluate_grid_table_and_reproducibility(tmp_path):
    data = synthetic_images()
    kw = dict(observers="minmax,mse", granularities=("tensor", "channel"), noise=(False, True),
              trials=3, seed=3, batch_size=16)
    df = evaluate_levels(tiny_cnn(), TABLE, data, **kw)
    assert list(df["config"])[0] == "FP32" and len(df) == 1 + 2 * 2 * 2
    noisy = df[df["noise"]]
    assert (noisy["trials"] == 3).all() and (df[~df["noise"]]["trials"] == 1).all()
    assert np.allclose(df["delta"], df["accuracy"] - df["accuracy"].iloc[0])
    # MSE weight error <= min-max weight error for each granularity
    for gran in ("tensor", "channel"):
        sel = df[(df["granularity"] == gran) & ~df["noise"]].set_index("observer")
        assert sel.loc["mse", "weight_mse"] <= sel.loc["minmax", "weight_mse"]
    df2 = evaluate_levels(tiny_cnn(), TABLE, data, **kw)
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), df2.drop(columns="seconds"))
    assert df.attrs["layers"] == ["0", "3", "8"]

    paths = write_report(df, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"results.csv", "results.md", "accuracy.png", "config.json"}
    back = pd.read_csv(paths["results.csv"])
    assert len(back) == len(df) and "±" in paths["results.md"].read_text()
    assert json.loads(paths["config.json"].read_text())["layers"] == ["0", "3", "8"]
    from labspin.errors import UserError
    with pytest.raises(UserError, match="exists"):
        write_report(df, tmp_path / "out")


def test_table_reports_agreement_and_paired_interval():
    df = evaluate_levels(tiny_cnn(), TABLE, synthetic_images(48), observers="minmax,mse",
                         granularities="channel", noise=(False, True), trials=2, batch_size=16)
    fp = df.iloc[0]
    assert fp["agreement"] == 100.0 and fp["ci95"] == 0.0
    q = df.iloc[1:]
    assert ((q["agreement"] >= 0) & (q["agreement"] <= 100)).all() and (q["ci95"] >= 0).all()
    assert len(df.attrs["notes"]) == 2          # MSE vs min-max, without and with noise
    assert all("− min-max: accuracy" in n and "paired 95 % intervals over 48 images" in n for n in df.attrs["notes"])


def test_paired_interval_and_verdicts():
    a = np.array([1.0] * 60 + [0.0] * 40)
    d, half = paired_interval(a, a)
    assert d == 0.0 and half == 0.0
    b = a.copy()
    b[:30] = 0.0                                    # 30 of 100 images lost
    d, half = paired_interval(b, a)
    want = 1.96 * np.std(100 * (b - a), ddof=1) / 10
    assert d == -30.0 and abs(half - want) < 1e-9
    scores = {("minmax", "channel", False): (a, np.ones(100)), ("mse", "channel", False): (b, np.ones(100))}
    (note,) = observer_comparisons(scores)
    assert note.startswith("per-channel MSE − min-max: accuracy -30.00 ±")
    assert "(min-max higher), agreement with FP32 +0.00 ± 0.00 points (not resolved" in note
    gained = a.copy()
    gained[60] = 1.0                                # one image gained: not resolved by 100 images
    scores[("mse", "channel", False)] = (gained, np.r_[np.ones(99), 0.0])
    note = observer_comparisons(scores)[0]
    assert "(not resolved by these images), agreement" in note and note.endswith("over 100 images")


def test_uniform_levels_have_no_noise_rows_and_act_quant_runs():
    df = evaluate_levels(tiny_cnn(), uniform_levels(7), synthetic_images(32), observers="minmax",
                         granularities="channel", noise=(False, True), act_bits=8, batch_size=16)
    assert len(df) == 2 and not df["noise"].any() and df.attrs["notes"]
    assert df.attrs["act_bits"] == 8


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared_dir):
    d = tmp_path_factory.mktemp("quantcli")
    sd = resnet18_cifar().state_dict()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, d / "ck.pt")
    torch.save(tiny_cnn().state_dict(), d / "other.pt")
    (d / "garbled.pt").write_bytes(b"\x00not a checkpoint" * 10)
    test = load_cifar10(shared_dir / "data/cifar10", "test").subset(24)
    np.savez(d / "small.npz", x=test.x.numpy(), y=test.y.numpy().astype(np.uint8))
    TABLE.save_json(d / "levels.json")
    (d / "nan.csv").write_text("states,mean,std\n0,0.1,0.01\n1,nan,0.01\n")
    (d / "one.csv").write_text("states,mean,std\n0,0.1,0.01\n")
    return d


def run_cli(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli_main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_evaluate_runs_and_refuses_overwrite(files, capsys):
    args = ["evaluate", "--levels", str(files / "levels.json"), "--checkpoint", str(files / "ck.pt"),
            "--data", str(files / "small.npz"), "--subset", "16", "--observer", "minmax",
            "--granularity", "channel", "--trials", "2", "--batch-size", "8", "-o", str(files / "res")]
    code, out, _ = run_cli(args, capsys)
    assert code == 0, out
    df = pd.read_csv(files / "res/results.csv")
    assert list(df["trials"]) == [1, 1, 2] and (df["images"] == 16).all()
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("change, needle", [
    ({"--observer": "kl"}, "--observer"),
    ({"--granularity": "row"}, "--granularity"),
    ({"--levels": "nan.csv"}, "nan.csv"),
    ({"--levels": "one.csv"}, "one.csv"),
    ({"--levels": "missing.json"}, "not found"),
    ({"--checkpoint": "other.pt"}, "not a resnet18-cifar10 checkpoint"),
    ({"--checkpoint": "garbled.pt"}, "not a readable PyTorch checkpoint"),
    ({"--checkpoint": "nope.pt"}, "checkpoint not found"),
    ({"--data": "nodata.npz"}, "data not found"),
    ({"--data": "levels.json"}, "not a readable .npz"),
])
def test_cli_evaluate_bad_inputs_exit_2_one_line(files, capsys, change, needle):
    opts = {"--levels": "levels.json", "--checkpoint": "ck.pt", "--data": "small.npz",
            "--observer": "minmax", "--granularity": "channel"}
    opts.update(change)
    args = ["evaluate", "--no-noise", "--subset", "8", "-o", str(files / "bad_out")]
    for k, v in opts.items():
        args += [k, str(files / v) if k in ("--levels", "--checkpoint", "--data") else v]
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (files / "bad_out" / "results.csv").exists()


def test_load_model_real_layout_roundtrip(files):
    m = load_model(files / "ck.pt")
    assert m.conv1.kernel_size == (3, 3) and isinstance(m.maxpool, nn.Identity)


def test_bias_correction_removes_the_mean_output_shift():
    from labspin.quant.quantize import input_means
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 6, bias=False)).eval()
    x = torch.rand(256, 40) + 0.5                       # positive inputs (post-ReLU-like)
    qw = quantize_weights(model, uniform_levels(3), make_observer("minmax", "channel"))
    with torch.no_grad():
        ref = model(x)
        plain = copy_apply(model, qw, None)(x)
        fixed = copy_apply(model, qw, input_means(model, ["0"], x))(x)
    shift_plain = (plain - ref).mean(0).abs().max()
    shift_fixed = (fixed - ref).mean(0).abs().max()
    assert shift_plain > 0.05 and shift_fixed < 1e-4


def copy_apply(model, qw, means):
    import copy
    m = copy.deepcopy(model)
    return qw.apply(m, None, means)


def test_evaluate_with_bias_correction_runs():
    df = evaluate_levels(tiny_cnn(), TABLE, synthetic_images(32), observers="minmax",
                         granularities="channel", noise=(False, True), trials=2, bias_correction=True,
                         batch_size=16)
    assert len(df) == 3 and df.attrs["bias_correction"] is True


def test_differential_pair_levels_are_symmetric_with_both_devices_noise():
    from labspin.errors import UserError
    from labspin.quant.levels_map import differential
    lv = levels_from_table(TABLE)
    d = differential(lv)
    v, s = d.values.double(), d.std.double()
    assert len(d) == 2 * len(TABLE) - 1
    assert torch.allclose(v, -v.flip(0)) and float(v[0]) == -1.0 and float(v[len(TABLE) - 1]) == 0.0
    assert (v.diff() > 0).all()
    # the pair's noise: device at level k plus the idle device at level 0, in the pair's scale
    span = float(lv.values[-1] - lv.values[0])
    k = 4
    want = float(torch.sqrt(lv.std[k].double() ** 2 + lv.std[0].double() ** 2)) / span
    assert abs(float(s[len(TABLE) - 1 + k]) - want) < 1e-6
    with pytest.raises(UserError, match="differential"):
        differential(uniform_levels(11))


def test_differential_mapping_beats_direct_on_a_lopsided_table():
    """Dense-at-one-end levels waste resolution on roughly symmetric weights; a device pair doesn't."""
    lopsided = LevelTable(np.array([0.0, 0.02, 0.05, 0.1, 0.15, 0.22, 0.3, 0.39, 0.49, 0.59, 0.69]),
                          np.full(11, 0.01), np.full(11, 50), device={"id": "lop"})
    data = synthetic_images(32)
    kw = dict(observers="minmax", granularities="channel", noise=False, batch_size=16)
    direct = evaluate_levels(tiny_cnn(), lopsided, data, **kw)
    pair = evaluate_levels(tiny_cnn(), lopsided, data, mapping="differential", **kw)
    assert pair.attrs["mapping"] == "differential" and pair.attrs["k"] == 21
    assert pair["config"].iloc[1] == "differential per-channel min-max"
    assert pair["weight_mse"].iloc[1] < 0.5 * direct["weight_mse"].iloc[1]
