"""Dry run: numbers from the recipe and the station, and refusal before any instrument is touched."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from labspin.dryrun import DryRunSummary, check, dry_run, format_summary
from labspin.errors import UserError
from labspin.protocols import load_recipe, shipped_recipes
from labspin.station import load_station_spec, sim_station_spec

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "station_example.toml"

RECIPE = """
name = "small"
kind = "staircase"
[parameters]
reset_current = -8e-3
amplitudes = [2e-3, 4e-3, 6e-3]
pulse_width = 200e-6
read_current = 1e-4
cycles = 10
"""


@pytest.fixture(autouse=True)
def no_visa(monkeypatch):
    """Every test here must pass without a VISA resource manager ever being created."""
    import pyvisa
    import pyvisa.highlevel

    def boom(*a, **k):
        raise AssertionError("a VISA resource manager was created")
    monkeypatch.setattr(pyvisa, "ResourceManager", boom)
    monkeypatch.setattr(pyvisa.highlevel, "ResourceManager", boom)


@pytest.fixture
def spec():
    return load_station_spec(EXAMPLE)   # 10 µm × 5 nm, R_xx 1500 ohm, 15 mA, 20 V


def recipe_file(tmp_path, text=RECIPE):
    p = tmp_path / "small.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_numbers(tmp_path, spec):
    r = load_recipe(recipe_file(tmp_path))
    s = dry_run(r, spec, overhead=0.1)
    assert isinstance(s, DryRunSummary) and s.ok
    assert s.points == 40 and s.pulses == 40 and s.cycles == 10
    assert s.peak_current == pytest.approx(8e-3)
    cross = spec.sample["width"] * spec.sample["thickness"]
    assert s.cross_section == pytest.approx(cross)
    assert s.peak_current_density == pytest.approx(8e-3 / cross)          # 1.6e11 A/m²
    expect_energy = 10 * (64e-6 + 4e-6 + 16e-6 + 36e-6) * 1500.0 * 200e-6
    assert s.energy == pytest.approx(expect_energy)
    assert s.peak_voltage == pytest.approx(8e-3 * 1500.0)
    assert s.duration == pytest.approx(40 * 200e-6 + 40 * 0.1)
    assert s.min_pulse_width == s.max_pulse_width == pytest.approx(200e-6)
    json.dumps(s.as_dict())


def test_density_follows_geometry(tmp_path, spec):
    r = load_recipe(recipe_file(tmp_path))
    wider = replace(spec, sample={**spec.sample, "width": 2 * spec.sample["width"]})
    assert dry_run(r, wider).peak_current_density == pytest.approx(dry_run(r, spec).peak_current_density / 2)


def test_no_r_xx_means_no_energy(tmp_path, spec):
    r = load_recipe(recipe_file(tmp_path))
    bare = replace(spec, sample={k: v for k, v in spec.sample.items() if k != "r_xx"})
    s = dry_run(r, bare)
    assert s.energy is None and s.peak_voltage is None and s.ok
    assert "n/a" in format_summary(s)


@pytest.mark.parametrize("name", ["loop", "potdep", "retention", "staircase", "staircase_idmi",
                                  "staircase_orange_peel"])
def test_shipped_recipes_pass_the_example_station(name, spec):
    s = check(load_recipe(name), spec)
    assert s.ok and s.points == len(load_recipe(name).protocol)


def test_shipped_recipes_pass_the_sim_station():
    spec = sim_station_spec("tilted:1")
    for name in shipped_recipes():
        s = check(load_recipe(name), spec)
        assert s.simulated and s.energy > 0 or s.pulses == 0


def test_over_limit_current_is_refused(tmp_path, spec):
    p = recipe_file(tmp_path, RECIPE.replace("6e-3]", "16e-3]"))
    r = load_recipe(p)
    s = dry_run(r, spec)
    assert not s.ok
    assert {(v.parameter, v.limit) for v in s.violations} >= {("amplitudes[2]", "max_pulse_current"),
                                                              ("amplitudes[2]", "compliance_voltage")}
    with pytest.raises(UserError) as e:
        check(r, spec)
    msg = str(e.value)
    assert msg.startswith(str(p)) and "parameters.amplitudes[2]" in msg
    assert "limits.max_pulse_current" in msg and "\n" not in msg
    assert "VIOLATION" in format_summary(s)


def test_pulse_width_and_read_limits(tmp_path, spec):
    r = load_recipe(recipe_file(tmp_path), overrides={"pulse_width": 20e-6, "read_current": 2e-3})
    s = dry_run(r, spec)
    limits = {(v.parameter, v.limit) for v in s.violations}
    assert ("pulse_width", "min_pulse_width") in limits and ("read_current", "max_read_current") in limits
    with pytest.raises(UserError, match=r"parameters\.pulse_width \(override\).*limits\.min_pulse_width"):
        check(r, spec)
    r = load_recipe(recipe_file(tmp_path), overrides={"pulse_width": 20e-3})
    with pytest.raises(UserError, match=r"limits\.max_pulse_width"):
        check(r, spec)


def test_compliance_alone(tmp_path, spec):
    # 12 mA is under the 15 mA limit, but 12 mA × 1500 ohm = 18 V … and 14 mA → 21 V > 20 V
    r = load_recipe(recipe_file(tmp_path, RECIPE.replace("-8e-3", "-14e-3")))
    with pytest.raises(UserError, match=r"parameters\.reset_current: \|I\|·R_xx = 21 V exceeds "
                                        r"limits\.compliance_voltage"):
        check(r, spec)


def test_loop_limit_names_max_current(spec):
    r = load_recipe("loop", overrides={"max_current": 0.05})
    with pytest.raises(UserError, match=r"loop\.toml: parameters\.max_current \(override\)"):
        check(r, spec)


def test_format_summary_has_the_numbers(tmp_path, spec):
    out = format_summary(dry_run(load_recipe(recipe_file(tmp_path)), spec))
    assert "40" in out and "8 mA" in out and "1.6e+11 A/m²" in out and "OK" in out
    assert len(out.splitlines()) < 20


def test_schedule_matches_counts(spec):
    r = load_recipe("loop")
    s = dry_run(r, spec)
    a = r.protocol.arrays()
    assert s.pulses == int(np.count_nonzero(a["pulse_current"])) < s.points


def test_dry_run_imports_no_instrument_code():
    """The gate runs before any driver is even imported: no pymeasure, no resource manager."""
    import subprocess
    import sys

    code = (
        "import sys, pyvisa, pyvisa.highlevel\n"
        "def boom(*a, **k): raise AssertionError('a VISA resource manager was created')\n"
        "pyvisa.ResourceManager = pyvisa.highlevel.ResourceManager = boom\n"
        "from labspin.protocols import load_recipe\n"
        "from labspin.station import load_station_spec, sim_station_spec\n"
        "from labspin.dryrun import dry_run, check, format_summary\n"
        f"spec = load_station_spec({str(EXAMPLE)!r})\n"
        "format_summary(dry_run(load_recipe('staircase'), spec))\n"
        "format_summary(dry_run(load_recipe('loop'), sim_station_spec('tilted:2')))\n"
        "try:\n"
        "    check(load_recipe('loop', {'max_current': 1.0}), spec)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('pymeasure', 'labspin.drivers.pulse'"
        ", 'labspin.drivers.hall', 'labspin.drivers.common', 'labspin.drivers.k6221_role'"
        ", 'labspin.drivers.smu', 'labspin.sim_backend.visalib')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["UserError", "[]"]


def test_pulse_delta_mode_in_the_summary_and_estimate():
    recipe = load_recipe("staircase")
    dc = dry_run(recipe, sim_station_spec("tilted:1"))
    pd = dry_run(recipe, sim_station_spec("tilted:1", hall_mode="pulse_delta"))
    assert pd.hall_mode == "pulse_delta" and pd.ok
    # line-synchronised cycles: 2 × 5 PLC = 0.2 s per point at 50 Hz; Delta: 2 arms + 4 cycles
    assert pd.overhead == pytest.approx(0.2) and dc.overhead == pytest.approx(0.606)
    assert pd.duration < dc.duration / 2.5
    assert "pulse_delta" in format_summary(pd) and "list sweep" in format_summary(pd)
    json.dumps(pd.as_dict())
