"""What a first-day user reads: whose clock a duration is on, per-pulse vs total energy, and every
missing option of `labspin run` in one message."""
from __future__ import annotations

import re

import pytest

from labspin.dryrun import dry_run, format_summary
from labspin.protocols.recipe import load_recipe
from labspin.station import sim_station_spec
from labspin.store import read_run
from test_cli_run import cli


def test_info_says_a_simulated_duration_is_virtual_time(tmp_path, capsys):
    path = tmp_path / "t.h5"
    code, _, err = cli(capsys, "run", "staircase", "--sim", "tilted:1", "--set", "cycles=20", "-o", str(path),
                       "--no-progress")
    assert code == 0, err
    code, text, _ = cli(capsys, "info", str(path))
    line = next(ln for ln in text.splitlines() if ln.startswith("duration"))
    virtual = float(read_run(path).data["time"].iloc[-1])
    m = re.fullmatch(r"duration\s+([\d.]+) s of virtual time \(the simulator's clock; wall clock "
                     r"(under 1 s|\d+ s), start to end\)", line)
    assert m, line
    assert float(m.group(1)) == pytest.approx(virtual, rel=1e-5)
    assert virtual > 10          # 220 points at ~0.06 s of instrument time each: far above the wall time


def test_dry_run_energy_is_per_pulse_and_total():
    recipe = load_recipe("staircase", {"cycles": 10})
    s = dry_run(recipe, sim_station_spec("tilted:1"))
    line = next(ln for ln in format_summary(s).splitlines() if ln.startswith("pulse energy"))
    m = re.search(r"([\d.]+) (\S?)J per pulse \(mean\), ([\d.]+) (\S?)J total over (\d+) pulses", line)
    assert m, line
    scale = {"": 1, "m": 1e-3, "µ": 1e-6, "n": 1e-9, "p": 1e-12}
    per, total, n = float(m.group(1)) * scale[m.group(2)], float(m.group(3)) * scale[m.group(4)], int(m.group(5))
    assert n == recipe.protocol.n_pulses == 110
    assert total == pytest.approx(s.energy, rel=5e-3) and per == pytest.approx(s.energy / n, rel=5e-3)


def test_run_reports_every_missing_option_at_once(tmp_path, capsys):
    code, _, err = cli(capsys, "run", "staircase")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "--sim DEVICE[:SEED] or --station FILE" in line and "-o/--output" in line
    assert "RECIPE" not in line
    code, _, err = cli(capsys, "run", "staircase", "--sim", "tilted:1")
    assert code == 2 and "-o/--output" in err and "--station" not in err
