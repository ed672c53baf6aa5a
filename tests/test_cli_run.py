"""`labspin run / dry-run / info` end to end on the simulator, kill -9 and --resume, bad input."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from labspin.cli import main
from labspin.protocols.recipe import load_recipe, shipped_recipes
from labspin.store import COLUMNS, UNITS, read_run

PRESETS = ("orange_peel", "idmi", "tilted")
# per protocol kind: overrides that keep a shipped recipe to a few hundred points
SHRINK = {"staircase": ["cycles=2"], "loop": ["cycles=1", "current_steps=10"],
          "potdep": ["cycles=1", "pulses=10"], "retention": ["reads=5"],
          "endurance": ["cycles=2000", "read_every=100"]}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `labspin ARGV` in-process; a traceback would escape as an exception and fail the test."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labspin: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def validate_run_file(path, expected_points: int) -> None:
    with h5py.File(path, "r") as f:
        assert f.attrs["file_format"] == "labspin-run/1"
        assert f["entry"].attrs["NX_class"] == "NXentry"
        d = f["entry/data"]
        for name in COLUMNS:
            assert d[name].shape == (expected_points,) and d[name].attrs["units"] == UNITS[name]
        np.testing.assert_array_equal(d["pulse_index"][:], np.arange(expected_points))
        assert np.all(np.isfinite(d["hall_resistance"][:]))
        assert np.all(np.diff(d["time"][:]) >= 0)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_shipped_recipe_runs_on_each_device(tmp_path, capsys, preset):
    for name in shipped_recipes():
        kind = load_recipe(name).kind
        sets = [a for s in SHRINK[kind] for a in ("--set", s)]
        out = tmp_path / f"{name}.h5"
        code, _, err = cli(capsys, "run", name, "--sim", f"{preset}:2", "-o", str(out),
                           "--no-progress", *sets)
        assert code == 0, err
        n = len(load_recipe(name, dict(s.split("=") for s in SHRINK[kind])).protocol)
        validate_run_file(out, n)
        rf = read_run(out)
        assert rf.status == "completed" and rf.sample["seed"] == 2 and rf.sample["type"] == preset
        assert rf.protocol["name"] == load_recipe(name).name
    code, text, _ = cli(capsys, "info", str(tmp_path / "staircase.h5"))
    assert code == 0 and "completed" in text and "22 of 22" in text and "ohm" in text


def test_dry_run_summary_and_violation(capsys):
    code, out, err = cli(capsys, "dry-run", "staircase", "--sim", "tilted")
    assert code == 0 and "staircase" in out and "2200" in out
    code, out, err = cli(capsys, "dry-run", "staircase", "--sim", "tilted", "--set", "reset_current=-0.05")
    assert_user_error(code, err, "max_pulse_current")


def write(path, text):
    path.write_text(text)
    return str(path)


STATION_BAD_ADDRESS = """
[sample]
id = "D1"
width = 10e-6
thickness = 5e-9
[instruments.k6221]
driver = "keithley6221"
address = "GPIB0::99::INSTR"
[roles]
pulse_source = "k6221"
hall_reader = { mode = "dc_delta", instrument = "k6221" }
"""


def test_bad_inputs_exit_2_one_line_nothing_touched(tmp_path, capsys, monkeypatch):
    import labspin.station

    opened = []                         # refused before any instrument is opened: no SCPI at all
    monkeypatch.setattr(labspin.station.StationSpec, "open", lambda self, *a, **k: opened.append(self))
    garbled = write(tmp_path / "garbled.toml", 'name = "x"\nkind = [\n')
    unknown = write(tmp_path / "unknown.toml",
                    'name = "x"\nkind = "staircase"\ncolour = "red"\n[parameters]\ncycles = 2\n')
    station = write(tmp_path / "station.toml", STATION_BAD_ADDRESS)
    existing = tmp_path / "exists.h5"
    existing.write_bytes(b"keep me")
    noth5 = tmp_path / "notes.h5"
    noth5.write_bytes(b"just text")
    out = str(tmp_path / "new.h5")
    cases = [
        (["run", garbled, "--sim", "tilted", "-o", out], ["garbled.toml"]),
        (["run", unknown, "--sim", "tilted", "-o", out], ["unknown.toml", "colour"]),
        (["run", "staircase", "--sim", "tilted", "-o", out, "--set", "bogus=1"], ["bogus"]),
        (["run", "staircase", "--station", station, "-o", out], ["station.toml", "address"]),
        (["run", "staircase", "--sim", "nosuchdevice", "-o", out], ["nosuchdevice"]),
        (["run", "staircase", "-o", out], ["--sim"]),
        (["run", "staircase", "--sim", "tilted", "-o", out, "--set", "reset_current=-1"],
         ["max_pulse_current"]),
        (["run", "staircase", "--sim", "tilted", "-o", str(existing), "--set", "cycles=1"],
         ["exists.h5", "--overwrite"]),
        (["info", str(noth5)], ["notes.h5", "HDF5"]),
        (["info", str(tmp_path / "missing.h5")], ["missing.h5"]),
        (["run", "--resume", str(noth5)], ["notes.h5"]),
    ]
    for argv, needles in cases:
        code, _, err = cli(capsys, *argv)
        assert_user_error(code, err, *needles)
        assert not os.path.exists(out), argv
    assert existing.read_bytes() == b"keep me" and noth5.read_bytes() == b"just text"
    assert opened == []


def start_run(path, cycles, min_points=300):
    """`labspin run` in a subprocess; returns it once `min_points` are readable in the file."""
    cmd = [sys.executable, "-m", "labspin", "run", "staircase", "--sim", "tilted:5",
           "--set", f"cycles={cycles}", "-o", str(path), "--flush-interval", "0.05", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    n = 0
    while time.monotonic() < deadline and n < min_points:
        time.sleep(0.05)
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()}")
        if path.exists():
            try:
                n = len(read_run(path).data)
            except Exception:              # file still being created
                n = 0
    assert n >= min_points, "run did not get going"
    return proc, n


def test_info_while_running_then_ctrl_c_aborts(tmp_path, capsys):
    path = tmp_path / "run.h5"
    proc, _ = start_run(path, 2000, min_points=100)
    code, text, _ = cli(capsys, "info", str(path))
    assert code == 0 and "being written" in text and "of 22000" in text
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "aborted" in err and "Traceback" not in err
    rf = read_run(path)
    assert rf.status == "aborted" and not rf.interrupted and 100 <= len(rf.data) < 22000


def test_kill9_interrupted_then_resume_completes(tmp_path, capsys):
    path = tmp_path / "run.h5"
    cycles = 300
    total = len(load_recipe("staircase", {"cycles": cycles}).protocol)
    proc, n = start_run(path, cycles)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    with h5py.File(path, "r", libver="latest", swmr=True) as f:        # opens in plain h5py
        assert f["entry/status"][()].rstrip(b"\0") == b"running"
        idx = f["entry/data/pulse_index"][:]
    idx = idx[idx >= 0]
    np.testing.assert_array_equal(idx, np.arange(len(idx)))          # monotonic, no gaps
    rf = read_run(path)
    assert rf.interrupted and n <= len(rf.data) < total
    code, text, _ = cli(capsys, "info", str(path))
    assert code == 0 and "interrupted" in text

    code, _, err = cli(capsys, "run", "--resume", str(path), "--no-progress")
    assert code == 0, err
    validate_run_file(path, total)
    rf = read_run(path)
    assert rf.status == "completed" and len(rf.data) == total
    assert rf.data["cycle"].iloc[-1] == cycles - 1
    # the device state was restored at the resume point: same switching history as a run
    # that was never interrupted. Read noise is drawn afresh after the resume, so allow it
    # (µΩ-0.1 mΩ), far below the device's CTC (~30 mΩ); a fresh device differs by ~0.1 ohm.
    ref = tmp_path / "ref.h5"
    code, _, err = cli(capsys, "run", "staircase", "--sim", "tilted:5", "--set", f"cycles={cycles}",
                       "-o", str(ref), "--no-progress")
    assert code == 0, err
    ref_r = read_run(ref).data["hall_resistance"].to_numpy()
    np.testing.assert_allclose(rf.data["hall_resistance"].to_numpy(), ref_r, rtol=0, atol=2e-3)


# --- Pulse Delta reads: hardware-timed blocks ------------------------------------------------
STATION_PULSE_DELTA = """
name = "bench-6221-pulse-delta"
[sample]
id = "D17-3"
type = "tilted"
width = 10e-6
thickness = 5e-9
[instruments.k6221]
driver = "keithley6221"
address = "GPIB0::12::INSTR"
[roles]
pulse_source = "k6221"
hall_reader = { mode = "pulse_delta", instrument = "k6221" }
"""


@pytest.fixture
def station_on_sim(monkeypatch):
    """`--station FILE` runs against SimBench("tilted", seed=1) instead of a real bus."""
    import labspin.station
    from labspin.sim_backend import SimBench

    orig = labspin.station.StationSpec.open
    monkeypatch.setattr(labspin.station.StationSpec, "open",
                        lambda self, *a, **k: orig(self, bench=SimBench("tilted", seed=1)))


def _per_step(path):
    d = read_run(path).data
    g = d.groupby("step")["hall_resistance"]
    return g.mean().to_numpy(), g.std().to_numpy(), g.size().to_numpy()


def test_pulse_delta_station_run_agrees_with_dc_delta(tmp_path, capsys, station_on_sim, monkeypatch):
    from labspin.sim_backend import physics
    # the heating read-back depends on the time since the reset pulse, ms in a Pulse Delta list
    # sweep and ~s with Delta reads: compare the modes on the device without it
    monkeypatch.setitem(physics.PRESETS, "tilted", physics.PRESETS["tilted"].replace(readback=0.0))
    station = write(tmp_path / "pd.toml", STATION_PULSE_DELTA)
    code, out, err = cli(capsys, "dry-run", "staircase", "--station", station, "--set", "cycles=20")
    assert code == 0 and "pulse_delta" in out, err
    pd, dc = tmp_path / "pd.h5", tmp_path / "dc.h5"
    code, _, err = cli(capsys, "run", "staircase", "--station", station, "-o", str(pd),
                       "--set", "cycles=20", "--no-progress")
    assert code == 0, err
    validate_run_file(pd, 220)
    rf = read_run(pd)
    assert rf.status == "completed" and rf.station["roles"]["hall_reader"]["mode"] == "pulse_delta"
    code, _, err = cli(capsys, "run", "staircase", "--sim", "tilted:1", "-o", str(dc),
                       "--set", "cycles=20", "--no-progress")
    assert code == 0, err
    (m_pd, s_pd, n), (m_dc, s_dc, _) = _per_step(pd), _per_step(dc)
    # same device (seed 1), same pulses: per-state R_H agrees within the cycle-to-cycle noise
    tol = np.maximum(4 * np.sqrt((s_pd ** 2 + s_dc ** 2) / n), 5e-3)
    assert np.all(np.abs(m_pd - m_dc) < tol), (m_pd - m_dc, tol)
    assert np.all(np.diff(m_pd) > 0)                     # the staircase climbs state by state


def test_pulse_delta_sim_hall_mode_and_resume(tmp_path, capsys, monkeypatch):
    import labspin.store
    from labspin.measure import execute, invocation
    from labspin.station import sim_station_spec
    from labspin.store import RunWriter

    recipe = load_recipe("staircase", {"cycles": 40})
    spec = sim_station_spec("tilted:4", hall_mode="pulse_delta")
    path = tmp_path / "cut.h5"
    writer = RunWriter(path, flush_interval=0.001, invocation=invocation(recipe, spec))

    class Cut:                                  # the process "dies" after ~150 points
        def on_start(self, info): pass
        def on_end(self, status, error): pass
        def on_points(self, block):
            if block["pulse_index"][-1] >= 150:
                writer.close()                  # the file stays "running", as after kill -9

    status, _ = execute(recipe, spec, writer, listeners=[Cut()])
    assert status == "failed"
    rf = read_run(path)
    assert rf.status == "running" and 150 <= len(rf.data) < 440
    monkeypatch.setattr(labspin.store, "_writer_gone", lambda entry: True)
    code, _, err = cli(capsys, "run", "--resume", str(path), "--no-progress")
    assert code == 0, err
    validate_run_file(path, 440)
    assert read_run(path).station["roles"]["hall_reader"]["mode"] == "pulse_delta"
    ref = tmp_path / "ref.h5"
    code, _, err = cli(capsys, "run", "staircase", "--sim", "tilted:4", "--hall-mode", "pulse_delta",
                       "--set", "cycles=40", "-o", str(ref), "--no-progress")
    assert code == 0, err
    # the device state was restored at the resume point: the same switching history. Pulse
    # Delta read noise (~0.6 mΩ at 100 µA) is drawn afresh after the resume; the CTC is ~30 mΩ
    np.testing.assert_allclose(read_run(path).data["hall_resistance"].to_numpy(),
                               read_run(ref).data["hall_resistance"].to_numpy(), rtol=0, atol=5e-3)


def test_hall_mode_bad_input(tmp_path, capsys):
    station = write(tmp_path / "pd.toml", STATION_PULSE_DELTA)
    out = str(tmp_path / "x.h5")
    code, _, err = cli(capsys, "run", "staircase", "--station", station, "--hall-mode", "pulse_delta",
                       "-o", out)
    assert_user_error(code, err, "--hall-mode")
    other = write(tmp_path / "two.toml", STATION_PULSE_DELTA.replace(
        'instrument = "k6221" }', 'instrument = "k2" }') + '[instruments.k2]\ndriver = "keithley6221"\n'
        'address = "GPIB0::13::INSTR"\n')
    code, _, err = cli(capsys, "dry-run", "staircase", "--station", other)
    assert_user_error(code, err, "two.toml", "roles.hall_reader.instrument", "pulse_source")
    assert not os.path.exists(out)
