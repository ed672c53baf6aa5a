"""`labspin run --resume` continues an aborted run (Ctrl-C) and a failed one once the cause is gone,
and says which it is; a completed run has nothing to resume."""
from __future__ import annotations

import signal

import numpy as np

import labspin.measure as measure_mod
from labspin.protocols.recipe import load_recipe
from labspin.station import sim_station_spec
from labspin.store import read_run
from test_cli_run import cli, start_run


def test_ctrl_c_then_resume_completes_with_the_same_history(tmp_path, capsys):
    path = tmp_path / "run.h5"
    cycles = 300
    total = len(load_recipe("staircase", {"cycles": cycles}).protocol)
    proc, _ = start_run(path, cycles, min_points=300)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    rf = read_run(path)
    assert rf.status == "aborted" and len(rf.data) < total
    done = len(rf.data)
    code, text, _ = cli(capsys, "info", str(path))
    assert code == 0 and "aborted (continue with labspin run --resume)" in text

    code, _, err = cli(capsys, "run", "--resume", str(path), "--no-progress")
    assert code == 0, err
    assert f"resuming aborted run {path} at point {done} of {total}" in err
    rf = read_run(path)
    assert rf.status == "completed" and len(rf.data) == total
    np.testing.assert_array_equal(rf.data["pulse_index"].to_numpy(), np.arange(total))
    ref = tmp_path / "ref.h5"
    code, _, err = cli(capsys, "run", "staircase", "--sim", "tilted:5", "--set", f"cycles={cycles}",
                       "-o", str(ref), "--no-progress")
    assert code == 0, err
    # device state restored at the abort point, its clock continued: the history of an uninterrupted
    # run (the drift and read-back go on from the last read; 0.5 mΩ: the bench clock's float sums)
    np.testing.assert_allclose(rf.data["hall_resistance"].to_numpy(),
                               read_run(ref).data["hall_resistance"].to_numpy(), rtol=0, atol=5e-4)


def test_failed_run_resumes_once_the_cause_is_gone(tmp_path, capsys, monkeypatch):
    path = tmp_path / "f.h5"
    opened = measure_mod.open_station

    def faulty(spec, **kw):                         # the 6221 stops answering 120 commands in
        station = opened(spec, **kw)
        bench = station.bench
        bench.inject_fault(bench.addresses["keithley6221"], "disconnect", after=120)
        return station

    monkeypatch.setattr(measure_mod, "open_station", faulty)
    recipe = load_recipe("staircase", {"cycles": 20})
    status, runner = measure_mod.measure(recipe, sim_station_spec("tilted:2"), path)
    assert status == "failed"
    rf = read_run(path)
    assert rf.status == "failed" and 0 < len(rf.data) < len(recipe.protocol)
    code, text, _ = cli(capsys, "info", str(path))
    assert "once fixed, continue with labspin run --resume" in text

    monkeypatch.setattr(measure_mod, "open_station", opened)      # the cable is back
    code, _, err = cli(capsys, "run", "--resume", str(path), "--no-progress")
    assert code == 0, err
    assert f"resuming failed ({rf.error}) run" in err
    rf = read_run(path)
    assert rf.status == "completed" and len(rf.data) == len(recipe.protocol) and rf.error in (None, "")


def test_completed_run_has_nothing_to_resume(tmp_path, capsys):
    path = tmp_path / "c.h5"
    code, _, err = cli(capsys, "run", "staircase", "--sim", "tilted:1", "--set", "cycles=2", "-o", str(path),
                       "--no-progress")
    assert code == 0, err
    before = path.read_bytes()
    code, _, err = cli(capsys, "run", "--resume", str(path))
    assert code == 2 and err.strip() == f"labspin: error: {path}: run is completed; nothing to resume"
    assert path.read_bytes() == before
