"""`labspin demo --resume` continues a partial output folder; what the demo says up front is honest."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import labspin.measure as measure_mod
from labspin import demo
from labspin.errors import UserError
from labspin.store import read_run

CYCLES = 4


def test_demo_resumes_a_failed_run_and_keeps_finished_ones(tmp_path, monkeypatch):
    out = tmp_path / "d"
    opened, count = measure_mod.open_station, []

    def faulty(spec, **kw):                       # the tilted staircase loses its 6221 half-way
        station = opened(spec, **kw)
        if spec.sim[0] == "tilted" and not count:
            count.append(1)
            station.bench.inject_fault(station.bench.addresses["keithley6221"], "disconnect", after=150)
        return station

    monkeypatch.setattr(measure_mod, "open_station", faulty)
    said: list[str] = []
    with pytest.raises(UserError, match=r"tilted_staircase\.h5: the staircase run on tilted ended failed.*"
                                        r"; continue with resume \(same options\)$") as err:
        demo.run_demo(demo.DemoConfig(out, cycles=CYCLES), say=said.append)
    assert err.value.key == "resume" and err.value.render("--resume").endswith(
        "continue with --resume (same options)")                # what the CLI prints
    assert re.search(r"expected about \d+ s on 2 CPU cores", said[0]) and "0 min" not in said[0]
    runs = out / "runs"
    kept = {p.name: p.read_bytes() for p in runs.glob("*.h5") if p.name != "tilted_staircase.h5"}
    assert set(kept) == {"orange_peel_staircase.h5", "orange_peel_loop.h5", "idmi_staircase.h5", "idmi_loop.h5"}
    partial = read_run(runs / "tilted_staircase.h5")
    assert partial.status == "failed" and 0 < len(partial.data) < CYCLES * 11

    monkeypatch.setattr(measure_mod, "open_station", opened)
    with pytest.raises(UserError, match=r"^resume: .*demo\.json: needs the options the folder was made with: "
                                        r"cycles 4 \(now 5\)") as err:     # the field; the CLI says --resume
        demo.run_demo(demo.DemoConfig(out, cycles=CYCLES + 1, resume=True), say=said.append)
    assert err.value.key == "resume"
    said.clear()
    res = demo.run_demo(demo.DemoConfig(out, cycles=CYCLES, resume=True), say=said.append)
    text = "\n".join(said)
    assert f"resumed at point {len(partial.data)} -> tilted_staircase.h5" in text
    assert text.count(", kept -> ") == 4
    for name, data in kept.items():                     # finished runs untouched
        assert (runs / name).read_bytes() == data
    done = read_run(runs / "tilted_staircase.h5")
    assert done.status == "completed" and len(done.data) == CYCLES * 11
    np.testing.assert_array_equal(done.data["pulse_index"], np.arange(CYCLES * 11))
    assert res.report.is_file() and set(res.devices["device"]) == {"orange_peel", "idmi", "tilted"}


def test_demo_resume_needs_a_demo_folder(tmp_path):
    with pytest.raises(UserError, match=r"^resume: .*demo\.json: not found"):
        demo.run_demo(demo.DemoConfig(tmp_path, resume=True))


def test_demo_report_says_ctc_without_reset_and_levels_measured(tmp_path):
    said: list[str] = []
    res = demo.run_demo(demo.DemoConfig(tmp_path / "d", cycles=CYCLES), say=said.append)
    md = res.report.read_text()
    assert "| CTC without reset state |" in md and "measured states (levels evaluated)" in md
    for r in res.devices.itertuples():
        assert f"| {r.device} | {r.states:.0f} | {r.levels_measured} |" in md
        assert r.ctc_without_reset > r.ctc
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert all("ctc_without_reset" in d for d in summary["devices"])
    assert any("without the reset state" in m for m in said)


def test_demo_progress_bars_name_the_device_and_step(tmp_path, capsys):
    demo.run_demo(demo.DemoConfig(tmp_path / "d", cycles=2), say=lambda m: None)
    err = capsys.readouterr().err
    for dev in ("orange_peel", "idmi", "tilted"):
        assert re.search(rf"\[1/4\] {dev}: staircase_?\w* on sim-{dev}-1 \[", err), dev
        assert re.search(rf"\[1/4\] {dev}: loop on sim-{dev}-1 \[", err), dev


def test_demo_resume_keeps_finished_evaluations(tmp_path, monkeypatch):
    """An evaluation is written per device once its grid is done; --resume evaluates only the rest."""
    import pandas as pd

    import labspin.quant.data
    import labspin.quant.evaluate
    from labspin.levels import LevelTable

    calls: list[int] = []

    def fake(ckpt, table, data, mapping="direct", **kw):
        calls.append(len(table))
        df = pd.DataFrame([dict(config="FP32", accuracy=90.0, std=0.0, trials=1, noise=False, images=10),
                           dict(config=f"{mapping} x", accuracy=80.0 + len(table), std=1.0, trials=2, noise=True,
                                images=10)])
        df.attrs.update(levels="t", k=len(table), images=10)
        return df

    monkeypatch.setattr(labspin.quant.data, "load_cifar10", lambda *a, **k: type("D", (), {"subset": lambda s, n: s})())
    monkeypatch.setattr(labspin.quant.evaluate, "evaluate_levels", fake)
    tables = {d: LevelTable.from_stats(np.linspace(0, 1, k), np.full(k, 0.01), np.full(k, 9))
              for d, k in (("orange_peel", 4), ("idmi", 6), ("tilted", 11))}
    (tmp_path / "accuracy").mkdir()
    first = demo._evaluate({"orange_peel": tables["orange_peel"]},
                           demo.DemoConfig(tmp_path, checkpoint="c", data="d"), tmp_path, say=lambda m: None)
    assert calls == [4, 4]
    calls.clear()
    said: list[str] = []
    acc = demo._evaluate(tables, demo.DemoConfig(tmp_path, checkpoint="c", data="d", resume=True), tmp_path,
                         say=said.append)
    assert calls == [6, 6, 11, 11]                      # orange_peel's grid was not run again
    assert "  orange_peel: 4 levels, evaluated before -> orange_peel.csv" in said
    kept = acc[acc.device == "orange_peel"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, first.reset_index(drop=True), check_dtype=False)


def test_demo_precision_auto_follows_the_hardware_and_reaches_the_evaluator(tmp_path, monkeypatch):
    import sys

    import pandas as pd

    import labspin.quant.data
    import labspin.quant.evaluate
    import labspin.quant.train  # noqa: F401  (the package exports a function of that name)
    from labspin import demo
    from labspin.errors import FieldError
    from labspin.levels import LevelTable

    with pytest.raises(FieldError, match="unknown 'fp16'"):
        demo.DemoConfig(tmp_path, precision="fp16")
    for native, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(sys.modules["labspin.quant.train"], "bf16_supported", lambda dev, n=native: n)
        assert demo.DemoConfig(tmp_path).resolve_precision() == want
    assert demo.DemoConfig(tmp_path, precision="fp32").resolve_precision() == "fp32"   # asked: kept
    fast = demo.DemoConfig(tmp_path, checkpoint="c", data="d", precision="bf16")
    assert demo.expected_seconds(fast) < demo.expected_seconds(demo.DemoConfig(tmp_path, checkpoint="c", data="d",
                                                                                precision="fp32")) / 3
    seen = []

    def fake(ckpt, table, data, mapping="direct", **kw):
        seen.append(kw["bf16"])
        df = pd.DataFrame([dict(config="FP32", accuracy=90.0, std=0.0, trials=1, noise=False, images=10)])
        return df

    monkeypatch.setattr(labspin.quant.data, "load_cifar10", lambda *a, **k: type("D", (), {"subset": lambda s, n: s})())
    monkeypatch.setattr(labspin.quant.evaluate, "evaluate_levels", fake)
    (tmp_path / "accuracy").mkdir()
    table = LevelTable.from_stats(np.linspace(0, 1, 4), np.full(4, 0.01), np.full(4, 9))
    demo._evaluate({"tilted": table}, fast, tmp_path, say=lambda m: None)
    assert seen == [True, True]
    assert fast.record()["precision"] == "bf16"


def test_demo_report_flags_what_the_guard_flags(tmp_path):
    """A collapsed configuration is marked in the side-by-side table and its cause listed under it."""
    import pandas as pd

    devices = pd.DataFrame([dict(device=d, states=s, levels_measured=s, ctc=0.02, ctc_without_reset=0.02,
                                 window=1.0, ic_plus=5e-3, ic_minus=-4e-3) for d, s in (("orange_peel", 4),
                                                                                        ("tilted", 11))])
    cause = "agreement 10.0 % < 90 %, Δ -81.8 points beyond ±5 — likely: weights crowd onto ~1.8 of 4 levels"
    rows = []
    for d, acc, flag in (("orange_peel", 10.0, cause), ("tilted", 91.1, "")):
        rows += [dict(device=d, config="FP32", observer="", granularity="", noise=False, accuracy=91.8, std=0.0,
                      delta=0.0, flag="", images=10000),
                 dict(device=d, config="per-channel min-max", observer="minmax", granularity="channel", noise=False,
                      accuracy=acc, std=0.0, delta=acc - 91.8, flag=flag, images=10000)]
    cfg = demo.DemoConfig(tmp_path, checkpoint="c", data="d", precision="bf16")
    report = demo._write_report(tmp_path, cfg, devices, pd.DataFrame(rows), [], 1.0).read_text()
    line = next(x for x in report.splitlines() if x.startswith("| per-channel min-max |"))
    assert "10.00 % (Δ -81.80) ⚠" in line and "91.10 % (Δ -0.70) |" in line   # only the collapsed cell
    assert f"- ⚠ orange_peel, per-channel min-max: {cause}" in report
    assert "tilted, per-channel min-max:" not in report
    assert "bfloat16 autocast" in report
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["precision"] == "bf16"
    assert [a["flag"] for a in summary["accuracy"] if a["config"] != "FP32"] == [cause, ""]
