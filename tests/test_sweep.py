"""`labspin sweep` on an embedded Dask LocalCluster: one run/result per task, a failed task does
not stop the others, results CSV/Parquet/Markdown, and a re-run skips finished tasks."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from labspin.cli import main
from labspin.errors import UserError
from labspin.store import read_run
from labspin.sweep import load_sweep, run_sweep

SWEEP = """
name = "t"
recipe = "staircase"
devices = ["tilted", "idmi"]
seeds = { start = 3, count = 2 }
[parameters]
cycles = [2]
reset_current = ["-9.64 mA", "-50 mA"]      # the second is over the sim station's 20 mA limit
"""


def test_sweep_runs_gathers_and_resumes(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    sw = load_sweep(f)
    assert len(sw.tasks) == 8 and {t.seed for t in sw.tasks} == {3, 4}
    out = tmp_path / "out"
    seen = []
    table = run_sweep(sw, out, workers=2, progress=False, on_result=seen.append)
    assert len(seen) == 8 and len(table) == 8
    ok = table[table["status"] == "completed"]
    bad = table[table["status"] == "failed"]
    assert len(ok) == 4 and len(bad) == 4
    assert bad["error"].str.contains("max_pulse_current").all()
    for row in ok.itertuples():
        rf = read_run(row.run)
        assert rf.status == "completed" and len(rf.data) == 22 and row.points == 22
        assert rf.sample["seed"] == row.seed and rf.sample["preset"] == row.device
        assert len(json.loads(row.state_means)) == row.n_states == 11
    # the same device and seed give the same run, different seeds different devices
    assert ok.groupby("seed")["window"].nunique().max() == 2        # tilted vs idmi
    assert set(pd.read_parquet(out / "results.parquet")["task"]) == set(table["task"])
    report = (out / "report.md").read_text()
    assert "| tilted |" in report and "| idmi |" in report and "## Failed tasks" in report
    # re-run: nothing is dispatched, the table is the same
    again = []
    t2 = run_sweep(sw, out, workers=1, progress=False, on_result=again.append)
    assert again == [] and list(t2["task"]) == list(table["task"])
    # the CLI: exit 1 because tasks failed, one summary line
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(f), "-o", str(out), "--no-progress"])
    assert exc.value.code == 1
    assert "4 of 8 tasks done, 4 failed" in capsys.readouterr().out


@pytest.mark.parametrize("text, needle", [
    ('name = "x"\nrecipe = "nosuch"\n', "nosuch"),
    ('name = "x"\nrecipe = "loop"\ndevices = ["marble"]\n', "marble"),
    ('name = "x"\nrecipe = "loop"\nseeds = {start = -1, count = 3}\n', "seeds"),
    ('name = "x"\nrecipe = "loop"\n[parameters]\ncycles = ["many"]\n', "cycles"),
    ('name = "x"\nrecipe = "loop"\n[parameters]\nmax_current = ["5 V"]\n', "voltage"),
    ('name = "x"\nrecipe = "loop"\ncolour = 1\n', "colour"),
    ('name = "x"\nrecipe = "loop"\n[analysis]\nctc = "median"\n', "analysis.ctc"),
    ('name = "x"\nrecipe = "loop"\n[evaluate]\nlevels = ["uniform:4"]\n', "either measures"),
    ('name = "x"\n[evaluate]\nlevels = ["uniform:1"]\n', "uniform:K needs K >= 2"),
    ('name = "x"\n[evaluate]\nlevels = ["marble:1"]\n', "no such level file"),
    ('name = "x"\n[evaluate]\nlevels = ["uniform:4"]\nobservers = ["kl"]\n', "evaluate.observers"),
    ('name = "x"\n[evaluate]\nlevels = ["uniform:4"]\nnoise_trials = [-1]\n', "evaluate.noise_trials"),
    ('name = "x"\n[evaluate]\nlevels = ["uniform:4"]\nbatch = 3\n', "evaluate.batch: unknown key"),
])
def test_bad_sweep_files_are_one_line(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(UserError, match=needle):
        load_sweep(f)
    assert not (tmp_path / "out").exists()


def test_shipped_examples_validate():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "docs" / "sweeps"
    d2d = load_sweep(root / "d2d.toml")
    assert len(d2d.tasks) == 64 and {t.device for t in d2d.tasks} == {"tilted"}
    assert len(load_sweep(root / "loop_width.toml").tasks) == 24
    grid = load_sweep(root / "eval_grid.toml")
    assert [t.kind for t in grid.tasks].count("levels") == 4
    assert [t.kind for t in grid.tasks].count("evaluate") == 5 * 2 * 2 * 2


EVAL_SWEEP = """
name = "eval"
description = "two level sources, with and without noise"
[evaluate]
levels = ["tilted:2", "uniform:11"]
observers = "minmax"
granularity = "channel"
noise_trials = [0, 2]
subset = 16
checkpoint = "ck.pt"
data = "small.npz"
cycles = 2
"""


@pytest.fixture(scope="module")
def eval_files(tmp_path_factory, shared_dir):
    import numpy as np
    import torch

    from labspin.levels import LevelTable
    from labspin.quant.data import load_cifar10
    from labspin.quant.model import resnet18_cifar

    d = tmp_path_factory.mktemp("evalsweep")
    torch.manual_seed(0)
    torch.save(resnet18_cifar().state_dict(), d / "ck.pt")
    test = load_cifar10(shared_dir / "data/cifar10", "test").subset(16)
    np.savez(d / "small.npz", x=test.x.numpy(), y=test.y.numpy().astype(np.uint8))
    LevelTable(np.linspace(0, 1, 6), np.full(6, 0.01), np.full(6, 10)).save_json(d / "table.json")
    return d


def test_evaluator_grid_sweep(eval_files, capsys):
    """Level sources (a simulated device measured first, uniform, a file) x observers x noise:
    one row per configuration, the report's accuracy table, resumable like a measuring sweep."""
    f = eval_files / "eval.toml"
    f.write_text(EVAL_SWEEP)
    sw = load_sweep(f)
    kinds = [t.kind for t in sw.tasks]
    assert kinds.count("levels") == 1 and kinds.count("evaluate") == 2 * 2
    out = eval_files / "out"
    table = run_sweep(sw, out, workers=2, progress=False)
    assert (table["status"] == "completed").all(), table["error"].tolist()
    ev = table[table["kind"] == "evaluate"]
    assert len(ev) == 4 and (ev["images"] == 16).all() and ev["fp32"].nunique() == 1
    assert set(ev.loc[ev["levels"] == "uniform:11", "n_levels"]) == {11}
    sim = ev[ev["levels"] == "tilted:2"]
    lev = table[table["kind"] == "levels"].iloc[0]
    assert set(sim["n_levels"]) == {lev["n_levels"]} and (out / "levels" / "tilted-s2.json").is_file()
    noisy = ev[ev["noise_trials"] == 2]
    assert (noisy["accuracy_std"] >= 0).all() and (ev[ev["noise_trials"] == 0]["accuracy_std"] == 0).all()
    assert "## Accuracy" in (out / "report.md").read_text()
    again = []
    run_sweep(sw, out, workers=1, progress=False, on_result=again.append)
    assert again == []
    # a level file is a source too, checked when the sweep is read
    (eval_files / "file.toml").write_text(EVAL_SWEEP.replace('"uniform:11"', '"table.json"'))
    assert {t.evaluate.get("source") for t in load_sweep(eval_files / "file.toml").tasks} >= {"file"}
