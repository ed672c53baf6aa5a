"""Auto observer and learned rounding on calibration images; full-precision results.csv written as
configurations finish; --precision, --device cuda without a GPU, tables in other quantities."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from labspin.cli import main as cli_main
from labspin.levels import LevelTable
from labspin.quant.calibrate import _each_layer, learn_rounding, output_error, quantize_auto
from labspin.quant.evaluate import evaluate_levels, prepare
from labspin.quant.levels_map import levels_from_table
from labspin.quant.model import fold_bn, resnet18_cifar
from labspin.quant.observers import make_observer
from labspin.quant.quantize import quantize_layer
from test_quant_evaluate import TABLE, synthetic_images, tiny_cnn

TILTED = LevelTable(np.array([0.0, 0.026, 0.08, 0.14, 0.22, 0.325, 0.445, 0.577, 0.726, 0.87, 1.0]),
                    np.array([0.0, .005, .01, .013, .017, .02, .024, .025, .028, .028, .022]),
                    np.full(11, 200), device={"id": "tilted-like"})


def _layer_and_input(seed=0):
    torch.manual_seed(seed)
    conv = nn.Conv2d(16, 24, 3, padding=1)
    x = torch.relu(torch.randn(64, 16, 8, 8))
    return conv, x


def test_learned_rounding_lowers_the_output_error_and_stays_on_the_levels():
    conv, x = _layer_and_input()
    lv = levels_from_table(TILTED)
    w = conv.weight.detach()
    for ladder in ("full", "fit"):
        near = quantize_layer(w, lv, make_observer("minmax", "channel", ladder))
        learned = learn_rounding(conv, x, near, lv, iterations=300, batch=32,
                                 generator=torch.Generator().manual_seed(0))
        e_near = output_error(conv, x, near.weight(lv) - w)
        e_learned = output_error(conv, x, learned.weight(lv) - w)
        assert e_learned < (0.9 if ladder == "full" else 0.97) * e_near, ladder
        assert torch.equal(learned.s, near.s) and torch.equal(learned.z, near.z)
        moved = (learned.idx != near.idx)
        assert 0 < int(moved.sum()) < 0.5 * moved.numel()
        if near.allowed is not None:                     # only levels of the row's part of the ladder
            rows = torch.arange(learned.idx.shape[0])[:, None].expand_as(learned.idx)
            assert near.allowed[rows, learned.idx.long()].all()
        # never more than one level step away from nearest rounding
        assert (learned.idx.long() - near.idx.long()).abs().max() <= 1 or ladder == "fit"
    noisy = learn_rounding(conv, x, near, lv, iterations=40, noise=True,
                           generator=torch.Generator().manual_seed(0))
    assert noisy.idx.shape == near.idx.shape


def test_auto_picks_the_lowest_output_error_per_layer():
    model = fold_bn(tiny_cnn())
    lv = levels_from_table(TABLE)
    x, _ = prepare(synthetic_images(32), torch.device("cpu"))
    qa = quantize_auto(model, lv, "channel", ["0", "3", "8"], x)
    assert set(qa.choices) == {"0", "3", "8"}
    inputs = {}
    _each_layer(model, ["0", "3", "8"], x, lambda n, m, a: inputs.__setitem__(n, a))
    mods = dict(model.named_modules())
    for name, choice in qa.choices.items():
        w = mods[name].weight.detach()
        err = output_error(mods[name], inputs[name], qa.layers[name].weight(lv) - w)
        for obs in ("minmax", "mse"):
            other = quantize_layer(w, lv, make_observer(obs, "channel"))
            assert err <= output_error(mods[name], inputs[name], other.weight(lv) - w) * (1 + 1e-6)


def test_evaluate_auto_learned_and_csv_precision(tmp_path):
    from labspin.quant.evaluate import write_report
    data = synthetic_images(40)
    df = evaluate_levels(tiny_cnn(), TILTED, data, observers="minmax,auto", granularities="channel",
                         noise=False, rounding="learned", rounding_iterations=30, calibration=synthetic_images(64, 5),
                         batch_size=20, bias_correction=True)
    assert list(df["config"]) == ["FP32", "per-channel min-max + learned rounding",
                                  "per-channel auto + learned rounding"]
    assert set(df.attrs["choices"]) == {"per-channel min-max + learned rounding",
                                        "per-channel auto + learned rounding"}
    assert "flag" in df and df.attrs["calibration"] == "synthetic"
    paths = write_report(df, tmp_path / "o")
    back = pd.read_csv(paths["results.csv"])
    q = df["weight_mse"].iloc[1]
    assert 0 < q < 1e-3 and back["weight_mse"].iloc[1] == pytest.approx(q, rel=1e-12)   # not 0.0000


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, shared_dir):
    from labspin.quant.data import load_cifar10
    d = tmp_path_factory.mktemp("calcli")
    sd = resnet18_cifar().state_dict()
    torch.save(sd, d / "ck.pt")
    test = load_cifar10(shared_dir / "data/cifar10", "test").subset(16)
    np.savez(d / "small.npz", x=test.x.numpy(), y=test.y.numpy())
    TILTED.save_json(d / "levels.json")
    us = LevelTable(TILTED.mean * 37.5 + 12.0, TILTED.std * 37.5, TILTED.n, quantity="conductance",
                    unit="uS", device={"id": "tilted-like"})
    us.save_csv(d / "levels_uS.csv")
    return d


def _run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _base(d, out):
    return ["evaluate", "--checkpoint", d / "ck.pt", "--data", d / "small.npz", "--observer", "minmax,mse",
            "--granularity", "channel", "--no-noise", "--batch-size", 8, "-o", d / out]


def test_ctrl_c_keeps_the_finished_configurations(cli_files, capsys, monkeypatch):
    import labspin.quant.evaluate as ev
    real = ev.quantize_weights
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(ev, "quantize_weights", interrupted)
    code, _, err = _run(_base(cli_files, "cc") + ["--levels", cli_files / "levels.json"], capsys)
    assert code == 130 and ("interrupted" in err or "aborted" in err)
    df = pd.read_csv(cli_files / "cc/results.csv")
    assert list(df["config"]) == ["FP32", "per-channel min-max"]


def test_other_quantities_precision_and_cuda(cli_files, capsys):
    code, _, err = _run(_base(cli_files, "ohm") + ["--levels", cli_files / "levels.json"], capsys)
    assert code == 0, err
    code, _, err = _run(_base(cli_files, "us") + ["--levels", cli_files / "levels_uS.csv"], capsys)
    assert code == 0, err
    a, b = (pd.read_csv(cli_files / f"{o}/results.csv") for o in ("ohm", "us"))
    assert np.allclose(a["accuracy"], b["accuracy"]) and np.allclose(a["weight_mse"], b["weight_mse"], rtol=1e-4)
    code, _, err = _run(_base(cli_files, "bf") + ["--levels", cli_files / "levels.json", "--precision", "bf16"],
                        capsys)
    assert code == 0, err
    bf = pd.read_csv(cli_files / "bf/results.csv")
    assert len(bf) == 3 and bf["accuracy"].between(0, 100).all()
    if not torch.cuda.is_available():
        code, _, err = _run(_base(cli_files, "cu") + ["--levels", cli_files / "levels.json", "--device", "cuda"],
                            capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "cuda" in err
        assert not (cli_files / "cu").exists()
    code, _, err = _run(_base(cli_files, "few") + ["--levels", cli_files / "levels.json", "--ladder",
                                                   "distinguishable"], capsys)
    assert code == 0, err       # 11 levels at 2 %: all distinguishable
    blur = LevelTable(np.array([0.0, 0.1, 0.2]), np.full(3, 0.4), np.full(3, 9))
    blur.save_csv(cli_files / "blur.csv")
    code, _, err = _run(_base(cli_files, "blur") + ["--levels", cli_files / "blur.csv", "--ladder",
                                                    "distinguishable"], capsys)
    assert code == 2 and "fewer than 2 usable levels" in err and len(err.strip().splitlines()) == 1
