"""The composition API (`labspin.measure`): prepare -> run -> resume, the limit check once per run,
refusals before anything is opened, and the station seams (clock, device-state provider)."""
from __future__ import annotations

import numpy as np
import pytest

import labspin.measure as measure
import labspin.runner
from labspin.drivers.roles import Limits
from labspin.errors import UserError
from labspin.protocols.recipe import load_recipe
from labspin.station import sim_station_spec
from labspin.store import read_run


class AbortAt:
    """A listener that aborts its runner once `n` points have arrived (as Ctrl-C would)."""

    def __init__(self, n: int) -> None:
        self.n, self.runner = n, None

    def on_start(self, info) -> None:
        assert isinstance(info.protocol, dict) and info.protocol["kind"] == "staircase"

    def on_points(self, block) -> None:
        if block["pulse_index"][-1] + 1 >= self.n:
            self.runner.abort()

    def on_end(self, status, error) -> None:
        pass


def test_limit_check_runs_once_per_run(tmp_path, monkeypatch):
    calls = []
    real = labspin.runner.check_limits

    def counting(*args, **kw):
        calls.append(args[3] if len(args) > 3 else kw.get("start_index", 0))
        return real(*args, **kw)

    monkeypatch.setattr(labspin.runner, "check_limits", counting)
    runner = measure.run(measure.prepare(load_recipe("staircase", {"cycles": 3}),
                                         sim_station_spec("tilted:1"), tmp_path / "r.h5"))
    assert runner.state == "completed" and runner.points_done == 33
    assert calls == [0]


def test_over_limit_refused_before_the_station_opens_or_a_file_exists(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(measure, "open_station", lambda spec, **kw: opened.append(spec))
    spec = sim_station_spec("tilted:1", Limits(max_pulse_current=1e-3))
    with pytest.raises(UserError, match="max_pulse_current"):
        measure.prepare(load_recipe("staircase", {"cycles": 2}), spec, tmp_path / "r.h5")
    assert opened == [] and not (tmp_path / "r.h5").exists()


def test_script_aborts_then_resumes_to_the_end(tmp_path):
    path = tmp_path / "cut.h5"
    recipe = load_recipe("staircase", {"cycles": 80})       # points reach listeners in 256-blocks
    stop = AbortAt(300)
    runner = measure.prepare(recipe, sim_station_spec("tilted:6"), path, [stop])
    assert runner.station.device_state is not None and runner.station.clock.virtual
    stop.runner = runner
    measure.run(runner)
    rf = read_run(path)
    assert runner.state == "aborted" and rf.status == "aborted"
    done = len(rf.data)
    assert 300 <= done < len(recipe.protocol)

    resumed = measure.resume(path)
    assert resumed.state == "completed" and resumed.start_index == done
    rf = read_run(path)
    assert rf.status == "completed"
    np.testing.assert_array_equal(rf.data["pulse_index"].to_numpy(), np.arange(len(recipe.protocol)))
    assert np.all(np.diff(rf.data["time"].to_numpy()) > 0)     # the time offset carried on


def test_no_output_means_no_file_and_no_state_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = []

    class Keep:
        def on_start(self, info): got.append(info.sample)
        def on_points(self, block): got.append(len(block["pulse_index"]))
        def on_end(self, status, error): got.append(status)

    runner = measure.run(measure.prepare(load_recipe("loop", {"cycles": 1}),
                                         sim_station_spec("idmi:2"), None, [Keep()]))
    assert runner.state == "completed" and got[-1] == "completed"
    assert sum(n for n in got[1:-1]) == runner.points_done > 0
    assert got[0]["seed"] == 2 and list(tmp_path.iterdir()) == []


def test_a_resumed_simulated_run_needs_its_device_state(tmp_path, monkeypatch):
    path = tmp_path / "cut.h5"
    stop = AbortAt(300)
    runner = measure.prepare(load_recipe("staircase", {"cycles": 80}), sim_station_spec("tilted:2"),
                             path, [stop])
    stop.runner = runner
    assert measure.run(runner).state == "aborted"
    import labspin.store
    real = labspin.store.resume_point
    monkeypatch.setattr(labspin.store, "resume_point", lambda p: real(p)[:2] + (None,))
    with pytest.raises(UserError, match="no stored simulator state"):
        measure.resume(path)
