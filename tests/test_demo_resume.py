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

    def faulty(spec):                       # the tilted staircase loses its 6221 half-way
        station = opened(spec)
        if spec.sim[0] == "tilted" and not count:
            count.append(1)
            station.bench.inject_fault(station.bench.addresses["keithley6221"], "disconnect", after=150)
        return station

    monkeypatch.setattr(measure_mod, "open_station", faulty)
    said: list[str] = []
    with pytest.raises(UserError, match=r"tilted_staircase\.h5: the staircase run on tilted ended failed.*"
                                        r"continue with labspin demo --resume"):
        demo.run_demo(demo.DemoConfig(out, cycles=CYCLES), say=said.append)
    assert re.search(r"expected about \d+ s on 2 CPU cores", said[0]) and "0 min" not in said[0]
    runs = out / "runs"
    kept = {p.name: p.read_bytes() for p in runs.glob("*.h5") if p.name != "tilted_staircase.h5"}
    assert set(kept) == {"orange_peel_staircase.h5", "orange_peel_loop.h5", "idmi_staircase.h5", "idmi_loop.h5"}
    partial = read_run(runs / "tilted_staircase.h5")
    assert partial.status == "failed" and 0 < len(partial.data) < CYCLES * 11

    monkeypatch.setattr(measure_mod, "open_station", opened)
    with pytest.raises(UserError, match=r"demo\.json: --resume needs the options the folder was made with: "
                                        r"cycles 4 \(now 5\)"):
        demo.run_demo(demo.DemoConfig(out, cycles=CYCLES + 1, resume=True), say=said.append)
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
    with pytest.raises(UserError, match="demo.json: not found"):
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
