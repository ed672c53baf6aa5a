"""Analysis: states, CTC definitions, distinguishable states, windows, LTP/LTD, I_c, device spread.

Synthetic runs are drawn with known σ and spacing, so each number is checked against the value the
data were generated with (and against an independent numpy recomputation), not a stored result.
The simulator check at the end runs the shipped `staircase` recipe on the simulated bench.
"""
from __future__ import annotations

import math

import h5py
import numpy as np
import pandas as pd
import pytest

from labspin import analysis
from labspin.errors import UserError

COLUMNS = ("pulse_index", "cycle", "step", "pulse_current", "pulse_width",
           "read_current", "hall_voltage", "hall_resistance", "time")


# --------------------------------------------------------------------------- synthetic runs

def staircase_frame(n_states=11, cycles=200, window=1.0, ctc=0.02, r0=-0.5, seed=0,
                    device="dev-A", reads=1) -> pd.DataFrame:
    """Staircase data: evenly spaced states, σ = ctc·window at every state."""
    rng = np.random.default_rng(seed)
    means = r0 + np.linspace(0, window, n_states)
    step = np.tile(np.repeat(np.arange(n_states), reads), cycles)
    cycle = np.repeat(np.arange(cycles), n_states * reads)
    # one programmed value per (cycle, step); repeated reads add tiny instrument noise
    prog = means[None, :] + rng.normal(0, ctc * window, (cycles, n_states))
    r = np.repeat(prog.reshape(-1), reads) + rng.normal(0, 1e-6, step.size)
    cur = np.where(step == 0, -8e-3, 1e-3 + step * 0.5e-3)
    df = _frame(cycle, step, cur, r)
    df.attrs.update(path=f"{device}.h5", status="completed", interrupted=False,
                    protocol={"name": "staircase", "kind": "staircase", "parameters": {}},
                    sample={"id": device, "type": "tilted"})
    return df


def _frame(cycle, step, cur, r) -> pd.DataFrame:
    n = r.size
    read = np.full(n, 100e-6)
    return pd.DataFrame({
        "pulse_index": np.arange(n, dtype=np.int64), "cycle": cycle.astype(np.int32),
        "step": step.astype(np.int32), "pulse_current": cur, "pulse_width": np.full(n, 1e-3),
        "read_current": read, "hall_voltage": r * read, "hall_resistance": r,
        "time": np.arange(n) * 0.01,
    })


def write_run(path, df: pd.DataFrame, *, status="completed", kind="staircase", name=None,
              sample=None, total_points=None, interrupted=False):
    """A run file written through labspin.store.RunWriter (the runner's own listener)."""
    from types import SimpleNamespace

    from labspin.store import COLUMNS as STORE_COLUMNS, RunWriter

    protocol = {"name": name or kind, "kind": kind, "recipe": f'name = "{name or kind}"\n',
                "recipe_path": None, "parameters": {}}
    info = SimpleNamespace(protocol=protocol, station={}, sample=sample or {"id": "dev-A", "type": "tilted"},
                           total_points=total_points or len(df), start_index=0,
                           start_time="2026-01-01T00:00:00+00:00", software_version="test")
    w = RunWriter(path, overwrite=True)
    w.on_start(info)
    w.on_points({c: df[c].to_numpy() for c in STORE_COLUMNS})
    if interrupted:                          # a killed writer: no final status, stale heartbeat
        w.close()
        with h5py.File(path, "r+") as f:
            f["entry/heartbeat"][()] = 0.0
    else:
        w.on_end(status, None if status == "completed" else "stopped by test")
    return path


# --------------------------------------------------------------------------- building blocks

def test_state_stats_matches_pandas_groupby():
    df = staircase_frame(n_states=5, cycles=30, reads=3, seed=3)
    st = analysis.state_stats(df["hall_resistance"].to_numpy(), df["step"].to_numpy(),
                              df["cycle"].to_numpy())
    per_cycle = df.groupby(["step", "cycle"])["hall_resistance"].mean()
    ref = per_cycle.groupby(level=0).agg(["mean", "std", "count"])
    st = st.set_index("state").sort_index()
    np.testing.assert_allclose(st["mean"], ref["mean"], rtol=1e-12)
    np.testing.assert_allclose(st["std"], ref["std"], rtol=1e-9)
    assert (st["n"].to_numpy() == 30).all()          # n counts cycles, not the 3 reads per cycle


def test_staircase_recovers_states_and_ctc():
    df = staircase_frame(n_states=11, cycles=400, ctc=0.018, seed=1)
    a = analysis.analyze_run(df)
    assert len(a.states) == 11
    assert a.ctc_definition == "window"
    assert a.ctc == pytest.approx(0.018, rel=0.1)
    assert a.distinguishable == 11                   # spacing 0.1 ≥ 5·0.018
    assert a.window["window"] == pytest.approx(1.0, rel=0.02)
    assert a.window["on_off_ratio"] is None          # signed R_H: a ratio means nothing
    assert list(a.states["mean"]) == sorted(a.states["mean"])
    # independent recomputation from the raw arrays, plain numpy
    r = df["hall_resistance"].to_numpy().reshape(400, 11)
    sig = r.std(axis=0, ddof=1)
    mu = r.mean(axis=0)
    assert a.ctc == pytest.approx(np.mean(sig / (mu.max() - mu.min())), rel=1e-9)


def test_larger_ctc_gives_fewer_distinguishable_states():
    small = analysis.analyze_run(staircase_frame(ctc=0.018, seed=2))
    large = analysis.analyze_run(staircase_frame(ctc=0.055, seed=2))
    assert large.ctc > 2 * small.ctc
    # k·σ = 0.275 of the window: every third rung (0.3 apart) is kept -> 4 = floor(1 + 1/(k·CTC))
    assert large.distinguishable == 4 == math.floor(1 + 1 / (5 * 0.055))
    assert large.distinguishable_states == [0, 3, 6, 9]
    # a smaller separation k keeps more states
    assert analysis.analyze_run(staircase_frame(ctc=0.055, seed=2), k=2).distinguishable > 4


def test_distinguishable_is_greedy_from_lowest():
    st = pd.DataFrame({"state": [0, 1, 2, 3], "mean": [0.0, 0.4, 1.0, 1.1], "std": [0.1] * 4, "n": [9] * 4})
    # k=5 needs 0.5 spacing: 0 -> (0.4 too close) -> 1.0 kept -> 1.1 too close
    assert analysis.distinguishable(st, 5) == [0, 2]
    assert analysis.distinguishable(st, 1) == [0, 1, 2, 3]


def test_state_definition_skips_rmin_and_is_larger_at_low_states():
    df = staircase_frame(n_states=6, cycles=100, seed=4)
    w = analysis.analyze_run(df, ctc_definition="window")
    s = analysis.analyze_run(df, ctc_definition="state")
    per = s.states["ctc"].to_numpy()
    assert math.isnan(per[0]) and np.isfinite(per[1:]).all()      # R_min state skipped
    assert "skipped" in s.ctc_note
    mu, sd = s.states["mean"].to_numpy(), s.states["std"].to_numpy()
    np.testing.assert_allclose(per[1:], sd[1:] / (mu[1:] - mu[0]))
    assert per[1] > per[-1]                                      # relative to a small conductance
    assert s.ctc > w.ctc
    assert s.summary()["ctc_definition"] == "state"


def test_unknown_ctc_definition_and_bad_k():
    df = staircase_frame(n_states=3, cycles=5)
    with pytest.raises(UserError, match="^ctc_definition: unknown definition 'relative'") as err:
        analysis.analyze_run(df, ctc_definition="relative")
    assert err.value.key == "ctc_definition"
    with pytest.raises(UserError, match="^k: ") as err:
        analysis.analyze_run(df, k=-1)
    assert err.value.key == "k"


def test_auto_clustering_finds_the_states_without_steps():
    df = staircase_frame(n_states=7, cycles=150, ctc=0.015, seed=5)
    auto = analysis.analyze_run(df, states="auto", kind="retention")
    assert auto.state_source == "auto"
    assert len(auto.states) == 7
    ref = analysis.analyze_run(df)
    np.testing.assert_allclose(auto.states["mean"], ref.states["mean"], atol=0.01)
    fixed = analysis.analyze_run(df, states=3, kind="retention")
    assert len(fixed.states) == 3 and fixed.state_source == "kmeans:3"


def test_potdep_fits_nonlinearity_and_asymmetry():
    P, cycles = 40, 20
    rng = np.random.default_rng(6)
    p = np.arange(1, P + 1)
    ltp = 1 - np.exp(-p / 10)                 # A = 10 pulses: strongly nonlinear
    ltd = ltp[-1] - (ltp[-1] - 0) * (1 - np.exp(-p / 40)) / (1 - np.exp(-P / 40))   # A = 40: nearly linear
    one = np.concatenate([ltp, ltd])
    r = (one[None, :] + rng.normal(0, 0.003, (cycles, 2 * P))).reshape(-1)
    step = np.tile(np.arange(2 * P), cycles)
    cur = np.where(step < P, 5e-3, -5e-3)
    df = _frame(np.repeat(np.arange(cycles), 2 * P), step, cur, r)
    df.attrs.update(protocol={"kind": "potdep", "name": "potdep", "parameters": {}})
    a = analysis.analyze_run(df)
    pd_ = a.potdep
    assert pd_["ltp"]["A"] == pytest.approx(10, rel=0.1)
    assert pd_["ltd"]["A"] == pytest.approx(40, rel=0.25)
    assert pd_["ltp"]["nonlinearity"] > pd_["ltd"]["nonlinearity"]
    assert pd_["asymmetry"] == pytest.approx(pd_["ltp"]["nonlinearity"] - pd_["ltd"]["nonlinearity"])
    assert len(a.states) == 2 * P                 # levels per pulse number


def loop_frame(ic_plus=4e-3, ic_minus=-3e-3, n=40, cycles=6, seed=7, device="dev-A") -> pd.DataFrame:
    """Square loop: R jumps up when I ≥ ic_plus on the up sweep, down when I ≤ ic_minus going down."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, 4 * n + 1)
    frac = np.where(k <= n, k / n, np.where(k <= 3 * n, 2 - k / n, k / n - 4))
    one = frac * 8e-3
    cur = np.tile(one, cycles)
    state = -1.0
    r = np.empty(cur.size)
    for i, c in enumerate(cur):                   # the test's reference model, not the code under test
        if c >= ic_plus:
            state = 1.0
        elif c <= ic_minus:
            state = -1.0
        r[i] = 0.5 * state + rng.normal(0, 1e-3)
    df = _frame(np.repeat(np.arange(cycles), 4 * n), np.tile(np.arange(4 * n), cycles), cur, r)
    df.attrs.update(protocol={"kind": "loop", "name": "loop", "parameters": {}},
                    sample={"id": device, "type": "idmi"}, path=f"{device}-loop.h5")
    return df


def test_loop_switching_currents():
    a = analysis.analyze_run(loop_frame())
    step = 8e-3 / 40
    assert a.loop["ic_plus"]["mean"] == pytest.approx(4e-3, abs=step)
    assert a.loop["ic_minus"]["mean"] == pytest.approx(-3e-3, abs=step)
    assert a.loop["ic_plus"]["n"] == 6
    assert a.states.empty and a.ctc is None
    assert a.window["window"] == pytest.approx(1.0, rel=0.02)
    with pytest.raises(UserError, match="no staircase/state data"):
        a.level_table()


def test_bad_runs_are_refused_with_one_line():
    df = staircase_frame(n_states=3, cycles=5)
    bad = df.copy()
    bad.attrs = dict(df.attrs)
    bad.loc[4, "hall_resistance"] = np.nan
    with pytest.raises(UserError, match="non-finite") as e:
        analysis.analyze_run(bad)
    assert "\n" not in str(e.value)
    empty = df.iloc[:0].copy()
    empty.attrs = dict(df.attrs)
    with pytest.raises(UserError, match="empty"):
        analysis.analyze_run(empty)
    one = staircase_frame(n_states=3, cycles=1)
    with pytest.raises(UserError, match="fewer than 2 cycles"):
        analysis.analyze_run(one)
    with pytest.raises(UserError, match="not a labspin run"):
        analysis.analyze_run(df.drop(columns=["step"]))


def test_interrupted_run_reports_progress():
    df = staircase_frame(n_states=4, cycles=10).iloc[:27].copy()
    df.attrs.update(status="running", interrupted=True, total_points=40)
    a = analysis.analyze_run(df)
    assert a.status == "interrupted"
    assert a.progress == "analysed up to point 27 of 40, status interrupted"
    assert a.summary()["points_analysed"] == 27


def test_pooling_and_device_spread():
    a1 = staircase_frame(ctc=0.02, seed=10, device="dev-A")
    a2 = staircase_frame(ctc=0.02, seed=11, device="dev-A")
    b1 = staircase_frame(ctc=0.05, seed=12, device="dev-B")
    pooled = analysis.pool_runs([a1, a2])
    assert (pooled.states["n"] == 400).all()
    assert pooled.ctc == pytest.approx(0.02, rel=0.1)
    with pytest.raises(UserError, match="different devices"):
        analysis.pool_runs([a1, b1])
    assert len(analysis.pool_runs([a1, b1], allow_devices=True).states) == 11
    runs = analysis.analyze_runs([a1, a2, b1])
    spread = analysis.device_spread(runs)
    assert list(spread.index) == ["dev-A", "dev-B", "all devices"]
    assert spread.loc["dev-A", "runs"] == 2
    ctcs = [runs[0].ctc, runs[1].ctc]
    assert spread.loc["dev-A", "ctc_mean"] == pytest.approx(np.mean(ctcs))
    assert spread.loc["dev-A", "ctc_cv"] == pytest.approx(np.std(ctcs, ddof=1) / np.mean(ctcs))
    assert spread.loc["dev-B", "ctc_mean"] > spread.loc["dev-A", "ctc_mean"]


def test_run_file_round_trip_and_interrupted(tmp_path):
    """Files written by the store analyse exactly like the frames they came from."""
    from labspin.store import read_run

    df = staircase_frame(n_states=5, cycles=20, seed=13)
    path = write_run(tmp_path / "run.h5", df, sample={"id": "dev-A", "type": "tilted"})
    a = analysis.analyze_run(str(path))
    ref = analysis.analyze_run(df)
    assert a.ctc == pytest.approx(ref.ctc, rel=1e-12)
    assert a.device_id == "dev-A" and a.status == "completed"
    part = write_run(tmp_path / "part.h5", df.iloc[:63], total_points=100, interrupted=True)
    b = analysis.analyze_run(read_run(part))
    assert b.progress == "analysed up to point 63 of 100, status interrupted"


# --------------------------------------------------------------------------- on the simulated bench

SIM_CYCLES = 200
SIM_RECIPES = {"tilted": "staircase", "idmi": "staircase_idmi", "orange_peel": "staircase_orange_peel"}


@pytest.fixture(scope="module")
def sim_runs(tmp_path_factory):
    """The shipped staircase recipes run on the simulated bench, through runner + store."""
    from labspin.protocols import load_recipe
    from labspin.runner import Runner
    from labspin.station import sim_station_spec
    from labspin.store import RunWriter

    d = tmp_path_factory.mktemp("sim")
    out = {}
    for device, recipe in SIM_RECIPES.items():
        path = d / f"{device}.h5"
        station = sim_station_spec(f"{device}:1").open()
        try:
            status = Runner(station, load_recipe(recipe, overrides={"cycles": SIM_CYCLES}),
                            [RunWriter(path)]).run()
        finally:
            station.close()
        assert status == "completed"
        out[device] = path
    return out


def test_tilted_staircase_gives_11_states_at_2_percent(sim_runs):
    a = analysis.analyze_run(str(sim_runs["tilted"]))
    assert a.status == "completed" and a.n_points == SIM_CYCLES * 11
    assert len(a.states) == 11
    assert a.distinguishable == 11
    assert a.ctc == pytest.approx(0.02, abs=0.005)


def test_orange_peel_and_idmi_give_fewer_states_and_larger_ctc(sim_runs):
    tilted = analysis.analyze_run(str(sim_runs["tilted"]))
    idmi = analysis.analyze_run(str(sim_runs["idmi"]))
    op = analysis.analyze_run(str(sim_runs["orange_peel"]))
    assert op.distinguishable < idmi.distinguishable < tilted.distinguishable
    assert tilted.ctc < idmi.ctc < op.ctc


def test_ctc_matches_plain_numpy_on_the_raw_datasets(sim_runs):
    """Recompute the window CTC from entry/data with h5py + numpy only (no labspin code)."""
    for device, path in sim_runs.items():
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            d = f["entry/data"]
            step, cycle, r = d["step"][()], d["cycle"][()], d["hall_resistance"][()]
        steps = np.unique(step)
        grid = np.full((cycle.max() + 1, steps.size), np.nan)
        grid[cycle, np.searchsorted(steps, step)] = r          # one read per (cycle, step)
        mu = np.nanmean(grid, axis=0)
        sig = np.nanstd(grid, axis=0, ddof=1)
        expected = np.mean(sig / (mu.max() - mu.min()))
        a = analysis.analyze_run(str(path))
        assert a.ctc == pytest.approx(expected, rel=1e-9), device
        s = analysis.analyze_run(str(path), ctc_definition="state")
        up = mu != mu.min()
        assert s.ctc == pytest.approx(np.mean(sig[up] / (mu[up] - mu.min())), rel=1e-9), device


def test_a_long_run_is_analysed_streamed_with_the_same_states(tmp_path, monkeypatch):
    """Past STREAM_POINTS a run file is read in blocks (bounded memory): the per-state statistics,
    CTC, window and distinguishable states equal the in-memory analysis; the points kept for the
    figures are every k-th (k prime to the 11 steps of a cycle: no aliasing)."""
    from labspin.analysis import run as run_mod
    from labspin.cli import main
    from labspin.protocols.recipe import load_recipe
    from labspin.runner import Runner
    from labspin.station import sim_station_spec
    from labspin.store import RunWriter

    path = tmp_path / "s.h5"
    with sim_station_spec("tilted:3").open() as st:
        assert Runner(st, load_recipe("staircase", {"cycles": 40}), [RunWriter(path)]).run() == "completed"
    full = analysis.analyze_run(path)
    monkeypatch.setattr(run_mod, "STREAM_POINTS", 100)
    monkeypatch.setattr(run_mod, "PLOT_POINTS", 50)
    monkeypatch.setattr(run_mod, "BLOCK", 37)          # blocks end inside cycles
    part = analysis.analyze_run(path)
    assert part.stride == 9 and len(part.data) == 49 and part.n_points == full.n_points == 440
    assert set(part.data["step"]) == set(range(11))
    pd.testing.assert_frame_equal(part.states, full.states, rtol=1e-9, check_dtype=False)
    assert part.ctc == pytest.approx(full.ctc, rel=1e-9)
    assert part.distinguishable == full.distinguishable and part.window == pytest.approx(full.window)
    assert part.ctc_without_reset == pytest.approx(full.ctc_without_reset, rel=1e-9)
    with pytest.raises(UserError, match="needs every point in memory") as e:
        analysis.analyze_run(path, states="auto")
    assert e.value.key == "states"
    with pytest.raises(SystemExit) as e:                 # the CLI too, report and all
        main(["analyze", str(path), "-o", str(tmp_path / "rep")])
    assert e.value.code == 0 and "the figures every 9th" in (tmp_path / "rep" / "report.md").read_text()
    # a kind whose own analysis needs every point (the loop's crossings) says it was not run
    loop = tmp_path / "loop.h5"
    with sim_station_spec("tilted:3").open() as st:
        assert Runner(st, load_recipe("loop", {"cycles": 2}), [RunWriter(loop)]).run() == "completed"
    a = analysis.analyze_run(loop)
    assert a.stride > 1 and a.loop is None and a.states.empty
    with pytest.raises(SystemExit) as e:
        main(["analyze", str(loop), "-o", str(tmp_path / "rep2")])
    assert "The loop analysis needs every point" in (tmp_path / "rep2" / "report.md").read_text()
