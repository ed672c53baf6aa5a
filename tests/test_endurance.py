"""Endurance-length schedules: the schedule streams, and its checks and counts cost the same for
10 or 10⁹ pulses; the per-segment arithmetic agrees with the materialised arrays."""
from __future__ import annotations

import json

import math
import tracemalloc

import numpy as np
import pytest
from fakes import Collect

from labspin.drivers.roles import Limits
from labspin.dryrun import dry_run
from labspin.errors import UserError
from labspin.protocols import load_recipe
from labspin.protocols.base import STEP_FIELDS
from labspin.runner import check_schedule
from labspin.station import sim_station_spec

def row(step) -> tuple:
    return tuple(getattr(step, k) for k in STEP_FIELDS)


SMALL = [("potdep", {"cycles": 3, "pulses": 4}), ("loop", {"cycles": 2, "current_steps": 3}),
         ("staircase", {"cycles": 3}), ("retention", {"reads": 5})]


@pytest.mark.parametrize("name, overrides", SMALL)
def test_streamed_steps_and_counts_equal_the_arrays(name, overrides):
    p = load_recipe(name, overrides=overrides).protocol
    a = p.arrays()
    rows = list(zip(*(a[k].tolist() for k in STEP_FIELDS)))
    assert [row(s) for s in p.steps()] == [tuple(r) for r in rows]
    for start in (0, 1, len(p) // 2, len(p) - 1, len(p)):
        assert [row(s) for s in p.steps(start)] == [tuple(r) for r in rows[start:]]
    pulsed = a["pulse_current"] != 0
    assert len(p) == len(a["cycle"]) and p.n_pulses == int(pulsed.sum())
    assert p.n_cycles == int(a["cycle"].max()) + 1
    assert p.duration(0.1) == pytest.approx(a["pulse_width"].sum() + a["wait"].sum() + 0.1 * len(p))
    assert p.energy(100.0) == pytest.approx(np.sum(a["pulse_current"] ** 2 * a["pulse_width"]) * 100.0)
    if pulsed.any():
        assert p.pulse_width_range() == (a["pulse_width"][pulsed].min(), a["pulse_width"][pulsed].max())


def test_billion_pulse_schedule_is_checked_and_counted_without_materialising():
    r = load_recipe("potdep", overrides={"cycles": 10_000_000})       # 100 pulses per cycle
    p = r.protocol
    tracemalloc.start()
    s = dry_run(r, sim_station_spec("tilted"))
    check_schedule(r, Limits())
    tail = list(p.steps(len(p) - 3))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6                                    # a materialised column alone is 8 GB
    assert s.points == s.pulses == 10**9 and s.cycles == 10**7 and s.ok
    assert s.duration == pytest.approx(10**9 * (100e-6 + s.overhead))
    assert [(t.cycle, t.step) for t in tail] == [(10**7 - 1, 97), (10**7 - 1, 98), (10**7 - 1, 99)]
    assert tail[-1].pulse_current == pytest.approx(-6.2e-3)


def test_limit_check_still_finds_the_one_bad_pulse():
    r = load_recipe("staircase", overrides={"cycles": 1_000_000})
    peak = r.protocol.peak_current                  # the reset pulse of every cycle
    with pytest.raises(UserError, match="max_pulse_current"):
        check_schedule(r, Limits(max_pulse_current=0.99 * peak))
    check_schedule(r, Limits(max_pulse_current=peak))
    # resumed past the reset of the last cycle: the remaining rungs still need checking
    start = len(r.protocol) - 2
    top = max(abs(s.pulse_current) for s in r.protocol.steps(start))
    assert top < 0.9 * peak
    with pytest.raises(UserError, match="max_pulse_current"):
        check_schedule(r, Limits(max_pulse_current=0.99 * top), start_index=start)
    check_schedule(r, Limits(max_pulse_current=top), start_index=start)


# --- the endurance protocol ------------------------------------------------------------------

from labspin.endurance import ctc_vs_cycles, cycles_to_failure, plot, window_table  # noqa: E402
from labspin.protocols.endurance import WindowStop  # noqa: E402
from labspin.runner import Runner  # noqa: E402
from labspin.sim_backend.wear import Wear, WearParams  # noqa: E402
from labspin.store import RunWriter, read_run  # noqa: E402


def endurance(**kw):
    return load_recipe("endurance", overrides=kw)


@pytest.mark.parametrize("cycles, every", [(1, 5), (25, 10), (30, 10), (31, 10), (7, 1), (10**9, 1000)])
def test_periodic_reads_cover_every_cycle_with_bursts(cycles, every):
    p = endurance(cycles=cycles, read_every=every).protocol
    assert p.n_pulses == 2 * cycles and p.n_cycles == cycles
    if len(p) > 10**4:
        steps = list(p.steps(len(p) - 4))
        assert steps[-1].cycle == cycles - 1
        return
    steps = list(p.steps())
    reads = [s.cycle for s in steps if s.step == 0]
    assert reads[0] == 0 and reads[-1] == cycles - 1
    assert all(b - a == every for a, b in zip(reads[:-2], reads[1:-1]))
    # the burst before each read covers exactly the unread cycles: pulses add up, signs alternate
    assert sum(s.burst for s in steps) == 2 * cycles
    assert [s.pulse_current > 0 for s in steps] == [True, False] * len(reads)
    assert all(s.burst % 2 == 1 for s in steps)      # +I ... +I: odd, so the read sees +I last


def test_log_spaced_reads():
    p = endurance(cycles=10**6, reads_per_decade=5).protocol
    reads = [s.cycle for s in p.steps() if s.step == 0]
    assert reads[0] == 0 and reads[-1] == 10**6 - 1 and len(reads) < 40
    assert p.n_pulses == 2 * 10**6
    per_decade = np.histogram(np.log10(np.array(reads[1:]) + 1), bins=np.arange(0, 7))[0]
    assert per_decade[2:].min() >= 4 and per_decade.max() <= 6


def test_shipped_recipe_dry_runs_a_billion_cycles():
    r = load_recipe("endurance")
    s = dry_run(r, sim_station_spec("tilted"))
    assert s.cycles == 10**9 and s.pulses == 2 * 10**9 and s.points < 400 and s.ok
    with pytest.raises(UserError, match="max_pulse_current"):     # the −I pulses are checked too
        check_schedule(r, Limits(max_pulse_current=0.009))


def test_window_stop_rule_streams_over_blocks():
    rule = WindowStop(0.5, 2)
    blocks = [(0, 0, 1.0), (0, 1, -1.0), (5, 0, 0.9), (5, 1, -0.9), (9, 0, 0.3), (9, 1, -0.3),
              (20, 0, 0.28)]
    col = lambda i: np.array([b[i] for b in blocks])    # noqa: E731
    assert rule.update({"cycle": col(0), "step": col(1), "hall_resistance": col(2)}) is None
    reason = rule.update({"cycle": np.array([20]), "step": np.array([1]),
                          "hall_resistance": np.array([-0.25])})
    assert reason.startswith("window closed at cycle 20")


@pytest.mark.parametrize("hall_mode", ["pulse_delta", "dc_delta"])
def test_simulated_device_wears_out_and_the_run_stops(tmp_path, hall_mode):
    """Accelerated wear on a simulated device: the window closes, the stop rule ends the run,
    and the stored data give the same cycles to failure."""
    st = sim_station_spec("tilted:2", hall_mode=hall_mode).open()
    st.bench.hallbar.wear = Wear(WearParams(onset=200, n_wear=1500, n_stick=1e12), 2)
    r = endurance(cycles=100_000, read_every=50, min_window=0.5, patience=2)
    path = tmp_path / "e.h5"
    writer = RunWriter(path)
    runner = Runner(st, r, [writer], block_points=4)
    assert runner.run() == "completed"
    assert runner.stop_reason.startswith("window closed at cycle")
    rf = read_run(path)
    assert rf.status == "completed" and rf.error.startswith("stopped: window closed")
    table = window_table(rf)
    assert table["window_rel"].iloc[0] == pytest.approx(1.0)
    failure, why = cycles_to_failure(table, 0.5, 2)
    assert why == "window closed" and 200 // 2 < failure < table["cycle"].iloc[-1] < 3000
    assert st.bench.hallbar.wear.pulses < 3000 * 2 + 10    # stopped, not run to 100k cycles
    ctc = ctc_vs_cycles(table)
    assert ctc["reads"].sum() == len(table)
    assert plot(table, ctc, tmp_path / "e.png", failure=failure).stat().st_size > 1000
    # labspin analyze: the endurance kind's section (registry) gives the same cycles to failure
    from labspin.cli import main
    with pytest.raises(SystemExit) as e:
        main(["analyze", str(path), "-o", str(tmp_path / "an")])
    assert e.value.code == 0
    summary = json.loads((tmp_path / "an" / "summary.json").read_text())["runs"][0]
    assert summary["endurance"]["cycles_to_failure"] == failure
    assert summary["endurance"]["read_cycles"] == len(table)
    report = (tmp_path / "an" / "report.md").read_text()
    assert "e_endurance.png" in report and f"failed at cycle {failure}" in report
    assert (tmp_path / "an" / "e_ctc_vs_cycles.csv").is_file()


def test_stuck_level_is_named():
    st = sim_station_spec("tilted:3").open()
    hb = st.bench.hallbar
    hb.wear = Wear(WearParams(onset=1e9, n_stick=1.0), 3)
    hb.wear.n_stick = 300                          # sticks after 300 counted pulses
    r = endurance(cycles=5000, read_every=20, min_window=0.5, patience=2)
    c = Collect()
    runner = Runner(st, r, [c], block_points=4)
    assert runner.run() == "completed"
    assert "level stuck" in runner.stop_reason
    assert hb.wear.stuck and hb.wear.pulses == 300


def test_wear_state_is_saved_and_restored():
    from labspin.sim_backend.physics import HallBar, preset
    a = HallBar(preset("tilted"), 4)
    a.wear.pulses = 123_456
    b = HallBar(preset("tilted"), 4)
    b.set_state(a.get_state())
    assert b.wear.pulses == 123_456 and b.hall_resistance == a.hall_resistance
    w = Wear(WearParams(), 4)
    assert w.window == 1.0
    w.pulses = int(WearParams().onset + WearParams().n_wear)
    assert w.window == pytest.approx(math.exp(-1.0))


def test_long_bursts_fit_the_6221_list_and_the_readme_command_completes(tmp_path, capsys):
    """Bursts between log-spaced reads outgrow one list sweep: they go out in chunks of at most
    65534 pulses (the 6221's custom list holds 65535 points), so the README's endurance command
    completes on the strict simulator."""
    from labspin.cli import main
    from labspin.drivers.hall import MAX_BLOCK_POINTS

    assert MAX_BLOCK_POINTS <= 65535 and MAX_BLOCK_POINTS % 2 == 0
    out = tmp_path / "endurance.h5"
    with pytest.raises(SystemExit) as e:
        main(["run", "endurance", "--sim", "tilted:1", "--hall-mode", "pulse_delta",
              "--set", "cycles=200000", "-o", str(out), "--no-progress"])
    assert e.value.code == 0, capsys.readouterr().err
    rf = read_run(out)
    assert rf.status == "completed" and np.diff(rf.data["cycle"].unique()).max() > 65534 // 2
