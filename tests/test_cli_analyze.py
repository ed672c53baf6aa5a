"""`labspin analyze` and `labspin levels` on run files written by labspin.store."""
from __future__ import annotations

import json

import numpy as np
import pytest

from labspin.cli import main
from labspin.levels import load_levels
from test_analysis import loop_frame, staircase_frame, write_run


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(map(str, argv)))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    return {
        "a1": write_run(d / "a1.h5", staircase_frame(ctc=0.018, seed=1, device="dev-A"),
                        sample={"id": "dev-A", "type": "tilted"}),
        "a2": write_run(d / "a2.h5", staircase_frame(ctc=0.018, seed=2, device="dev-A"),
                        sample={"id": "dev-A", "type": "tilted"}),
        "b": write_run(d / "b.h5", staircase_frame(n_states=6, ctc=0.05, seed=3, device="dev-B"),
                       sample={"id": "dev-B", "type": "orange_peel"}),
        "loop": write_run(d / "loop.h5", loop_frame(device="dev-B"), kind="loop",
                          sample={"id": "dev-B", "type": "orange_peel"}),
        "part": write_run(d / "part.h5", staircase_frame(n_states=5, cycles=10).iloc[:33],
                          total_points=50, interrupted=True),
    }


def test_levels_writes_json_and_csv(tmp_path, runs, capsys):
    out, csv = tmp_path / "levels.json", tmp_path / "mem_states.csv"
    code, stdout, err = run_cli(capsys, "levels", runs["a1"], "-o", out, "--csv", csv, "--ctc", "state")
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["format"] == "labspin-levels/1"
    assert doc["device"] == {"id": "dev-A", "type": "tilted"}
    assert doc["sources"] == [str(runs["a1"])]
    assert doc["ctc_definition"] == "state" and doc["k"] == 5
    assert len(doc["levels"]) == 11 and all(lv["n"] == 200 for lv in doc["levels"])
    t = load_levels(csv)
    np.testing.assert_allclose(t.mean, [lv["mean"] for lv in doc["levels"]])
    assert "11 levels of device dev-A" in stdout
    # a second time without --overwrite: refused, file untouched
    before = out.read_text()
    code, _, err = run_cli(capsys, "levels", runs["a1"], "-o", out)
    assert code == 2 and "exists" in err and err.count("\n") == 1
    assert out.read_text() == before


def test_levels_pools_one_device_and_refuses_two(tmp_path, runs, capsys):
    out = tmp_path / "pooled.json"
    code, _, err = run_cli(capsys, "levels", runs["a1"], runs["a2"], "-o", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert all(lv["n"] == 400 for lv in doc["levels"]) and len(doc["sources"]) == 2
    code, _, err = run_cli(capsys, "levels", runs["a1"], runs["b"], "-o", tmp_path / "x.json")
    assert code == 2 and "different devices" in err
    assert not (tmp_path / "x.json").exists()


def test_levels_refuses_a_loop_run(tmp_path, runs, capsys):
    code, _, err = run_cli(capsys, "levels", runs["loop"], "-o", tmp_path / "l.json")
    assert code == 2 and "no staircase/state data" in err
    # ...but clustering R_H of the loop finds its two saturated states
    code, _, err = run_cli(capsys, "levels", runs["loop"], "-o", tmp_path / "l.json", "--states", "auto")
    assert code == 0, err
    assert len(load_levels(tmp_path / "l.json")) == 2


def test_bad_inputs_are_one_line_exit_2(tmp_path, runs, capsys):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    for argv in (["levels", junk, "-o", tmp_path / "a.json"],
                 ["levels", tmp_path / "missing.h5", "-o", tmp_path / "a.json"],
                 ["analyze", runs["a1"], "-o", tmp_path / "r", "--ctc", "bogus"],
                 ["analyze", runs["a1"], "-o", tmp_path / "r", "--states", "many"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and err.startswith("labspin: error:") and err.count("\n") == 1, err
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    code, _, err = run_cli(capsys, "analyze", runs["a1"], "-o", full)
    assert code == 2 and "not empty" in err
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_analyze_writes_report(tmp_path, runs, capsys):
    out = tmp_path / "report"
    code, stdout, err = run_cli(capsys, "analyze", runs["a1"], runs["b"], runs["loop"], runs["part"],
                                "-o", out, "--k", "4")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ctc_definition"] == "window" and summary["k"] == 4
    by = {r["name"]: r for r in summary["runs"]}
    assert by["a1"]["n_states"] == 11 and by["a1"]["ctc"] == pytest.approx(0.018, rel=0.15)
    assert by["b"]["ctc"] > by["a1"]["ctc"]
    assert by["loop"]["loop"]["ic_plus"]["mean"] == pytest.approx(4e-3, abs=2e-4)
    assert by["part"]["progress"] == "analysed up to point 33 of 50, status interrupted"
    md = (out / "report.md").read_text()
    for r in summary["runs"]:
        for fig in r["figures"].values():
            assert (out / fig).stat().st_size > 10_000          # a real PNG, linked from the report
            assert f"]({fig})" in md
    assert {"a1_trace.png", "a1_states.png", "a1_ctc.png", "loop_loop.png", "devices.png",
            "devices.csv", "a1_states.csv"} <= {p.name for p in out.iterdir()}
    assert summary["devices"]["rows"][0]["device"] == "dev-A"
    assert "CTC" in stdout and "interrupted" in stdout
    # --overwrite replaces the report in place; --pool adds one pooled analysis per device
    code, _, err = run_cli(capsys, "analyze", runs["a1"], runs["a2"], "-o", out, "--overwrite",
                           "--ctc", "state", "--pool")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ctc_definition"] == "state"
    pooled = summary["runs"][-1]
    assert pooled["name"] == "dev-A-pooled" and pooled["sources"] == [str(runs["a1"]), str(runs["a2"])]
    assert all(s["n"] == 400 for s in pooled["states"])
