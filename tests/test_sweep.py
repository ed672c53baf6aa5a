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
