"""Runner: one shutdown on every exit path, statuses, pause/abort, limits checked before any write.

The first half uses a recording fake station (fast, exact call order); the second half runs
the real stack (drivers -> PyVISA -> simulator) and checks the instruments themselves.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from labspin.drivers.roles import HallReading, LimitError, Limits
from labspin.errors import UserError
from labspin.protocols.recipe import load_recipe
from labspin.runner import Runner
from labspin.store import COLUMNS, RunWriter, read_run


class Boom(RuntimeError):
    pass


class FakeStation:
    """Records every call; `fail_at=(n, exc)` raises exc on the n-th instrument call."""

    def __init__(self, fail_at=None, limits=Limits(), delay=0.0):
        self.calls: list[tuple] = []
        self.limits = limits
        self.sample = {"id": "fake", "type": "test"}
        self.fail_at = fail_at
        self.delay = delay
        self.t = 0.0
        self.pulse_source = self
        self.hall_reader = self
        self.clock = self                   # labspin.runner.Clock: virtual time in self.t
        self.virtual = True
        self.shutdowns = 0

    def _tick(self, what, *args):
        self.calls.append((what, *args))
        if self.fail_at and len(self.calls) == self.fail_at[0]:
            raise self.fail_at[1]
        if self.delay:
            time.sleep(self.delay)

    def pulse(self, amplitude, width):
        self._tick("pulse", amplitude, width)
        self.t += width

    def read(self, current):
        self._tick("read", current)
        return HallReading(hall_voltage=current * 0.5, read_current=current, hall_resistance=0.5)

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds

    def snapshot(self):
        return {"fake": True}

    def shutdown(self):
        self.calls.append(("shutdown",))
        self.shutdowns += 1


class Recorder:
    def __init__(self, fail_on_points_at=None):
        self.events: list = []
        self.blocks: list = []
        self.fail = fail_on_points_at

    def on_start(self, info):
        self.events.append(("start", info.total_points, info.start_index))

    def on_points(self, block):
        assert set(block) == set(COLUMNS)
        self.blocks.append({k: np.array(v) for k, v in block.items()})
        if self.fail is not None and len(self.blocks) == self.fail:
            raise Boom("listener broke")

    def on_end(self, status, error):
        self.events.append(("end", status, error))

    @property
    def index(self):
        return np.concatenate([b["pulse_index"] for b in self.blocks]) if self.blocks else np.array([])


RECIPE = load_recipe("staircase", {"cycles": 5})          # 55 points, 11 per cycle


def test_completed_run_delivers_every_point_once():
    st, rec = FakeStation(), Recorder()
    runner = Runner(st, RECIPE, [rec], block_points=8)
    assert runner.run() == "completed" and runner.state == "completed"
    np.testing.assert_array_equal(rec.index, np.arange(len(RECIPE.protocol)))
    assert rec.events[0] == ("start", 55, 0) and rec.events[-1] == ("end", "completed", None)
    assert st.shutdowns == 1 and st.calls[-1] == ("shutdown",)
    steps = list(RECIPE.protocol.steps())
    pulses = [c for c in st.calls if c[0] == "pulse"]
    assert len(pulses) == sum(s.pulse_current != 0 for s in steps)
    block = {k: np.concatenate([b[k] for b in rec.blocks]) for k in COLUMNS}
    np.testing.assert_array_equal(block["cycle"], [s.cycle for s in steps])
    assert np.all(np.diff(block["time"]) >= 0)


@pytest.mark.parametrize("seed", range(6))
def test_exception_at_random_step_fails_and_shuts_down(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 100))
    exc = [Boom("injected"), TimeoutError("VI_ERROR_TMO: timeout expired"),
           LimitError("pulse current 1 A exceeds max_pulse_current")][seed % 3]
    st, rec = FakeStation(fail_at=(n, exc)), Recorder()
    status = Runner(st, RECIPE, [rec], block_points=4).run()
    assert status == "failed"
    assert rec.events[-1][:2] == ("end", "failed") and str(exc) in rec.events[-1][2]
    assert st.shutdowns == 1 and st.calls[-1] == ("shutdown",)
    # every point measured before the failure reached the listener
    reads_ok = sum(1 for c in st.calls[:n - 1] if c[0] == "read")
    assert len(rec.index) == reads_ok


def test_keyboard_interrupt_is_aborted_with_shutdown():
    st, rec = FakeStation(fail_at=(17, KeyboardInterrupt())), Recorder()
    assert Runner(st, RECIPE, [rec]).run() == "aborted"
    assert st.shutdowns == 1 and rec.events[-1] == ("end", "aborted", None)


def test_listener_error_fails_but_shutdown_and_on_end_still_run():
    st, bad, good = FakeStation(), Recorder(fail_on_points_at=2), Recorder()
    runner = Runner(st, RECIPE, [bad, good], block_points=5)
    assert runner.run() == "failed"
    assert st.shutdowns == 1
    assert "listener broke" in runner.error
    assert good.events[-1][:2] == ("end", "failed") and bad.events[-1][:2] == ("end", "failed")


def test_abort_from_another_thread():
    st, rec = FakeStation(delay=0.002), Recorder()
    runner = Runner(st, load_recipe("staircase", {"cycles": 200}), [rec])
    threading.Timer(0.1, runner.abort).start()
    assert runner.run() == "aborted"
    assert st.shutdowns == 1 and 0 < len(rec.index) < 2200
    np.testing.assert_array_equal(rec.index, np.arange(len(rec.index)))


def test_pause_makes_outputs_safe_then_resume_completes():
    st, rec = FakeStation(delay=0.001), Recorder()
    runner = Runner(st, load_recipe("staircase", {"cycles": 10}), [rec])
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("status", runner.run()))
    t.start()
    time.sleep(0.03)
    runner.pause()
    deadline = time.monotonic() + 5
    while runner.state != "paused" and time.monotonic() < deadline:
        time.sleep(0.005)
    assert runner.state == "paused"
    n_calls = len(st.calls)
    assert st.calls[-1] == ("shutdown",)               # outputs safe while paused
    time.sleep(0.05)
    assert len(st.calls) == n_calls                    # and nothing happens
    runner.resume()
    t.join(10)
    assert out["status"] == "completed" and len(rec.index) == 110
    np.testing.assert_array_equal(rec.index, np.arange(110))


def test_over_limit_schedule_refused_before_any_call():
    st, rec = FakeStation(limits=Limits(max_pulse_current=5e-3)), Recorder()
    with pytest.raises(UserError, match="max_pulse_current"):
        Runner(st, RECIPE, [rec]).run()
    assert st.calls == [] and rec.events == []


def test_start_index_and_time_offset(tmp_path):
    st, rec = FakeStation(), Recorder()
    Runner(st, RECIPE, [rec], start_index=30, time_offset=100.0).run()
    np.testing.assert_array_equal(rec.index, np.arange(30, 55))
    assert rec.events[0] == ("start", 55, 30)
    assert rec.blocks[0]["time"][0] >= 100.0


# --- the real stack on the simulator -------------------------------------------------------

def sim_station(preset="tilted", seed=1):
    from labspin.station import sim_station_spec
    return sim_station_spec(f"{preset}:{seed}").open()


def source_ramped_off(bench, address):
    hist = bench.output_history(address)
    assert hist, "no output history"
    t, on, level = hist[-1]
    return (not on) and level == 0


@pytest.mark.parametrize("kind", ["timeout", "compliance", "exception", "limit"])
@pytest.mark.parametrize("seed", range(2))
def test_injected_faults_on_simulator_leave_outputs_off(tmp_path, kind, seed):
    rng = np.random.default_rng([seed, len(kind)])
    station = sim_station(seed=seed)
    bench = station.bench
    addr = bench.addresses["keithley6221"]
    at = int(rng.integers(60, 300))     # past the set-up (known starting state) of the first point
    if kind in ("timeout", "compliance"):
        bench.inject_fault(addr, kind, after=at)
    else:                                   # a role raising at a random read
        read, count = station.hall_reader.read, [0]

        def failing_read(current):
            count[0] += 1
            if count[0] == at:
                raise Boom("injected") if kind == "exception" else LimitError("read current too high")
            return read(current)
        station.hall_reader.read = failing_read
    path = tmp_path / "f.h5"
    runner = Runner(station, load_recipe("staircase", {"cycles": 30}), [RunWriter(path)])
    try:
        status = runner.run()
    finally:
        station.close()
    assert status == "failed" and runner.error
    if kind == "compliance":          # named as such, whether it hit a write pulse or a Delta read
        assert runner.error.startswith("ComplianceError:"), runner.error
    assert source_ramped_off(bench, addr)
    rf = read_run(path)
    assert rf.status == "failed" and rf.error == runner.error and not rf.interrupted
    assert 0 < len(rf.data) < 330


def test_disconnect_fails_cleanly(tmp_path):
    station = sim_station()
    station.bench.inject_fault(station.bench.addresses["keithley6221"], "disconnect", after=50)
    runner = Runner(station, load_recipe("staircase", {"cycles": 10}), [RunWriter(tmp_path / "d.h5")])
    try:
        assert runner.run() == "failed"
    finally:
        station.close()
    assert "VI_ERROR_CONN_LOST" in read_run(tmp_path / "d.h5").error


def test_abort_on_simulator_leaves_outputs_off(tmp_path):
    station = sim_station()
    bench = station.bench
    runner = Runner(station, load_recipe("staircase", {"cycles": 5000}), [RunWriter(tmp_path / "a.h5")])
    threading.Timer(0.3, runner.abort).start()
    try:
        assert runner.run() == "aborted"
    finally:
        station.close()
    assert source_ramped_off(bench, bench.addresses["keithley6221"])
    assert read_run(tmp_path / "a.h5").status == "aborted"


def test_over_limit_on_simulator_sends_no_scpi():
    station = sim_station()
    bench = station.bench
    n_writes = sum(r.kind == "write" for r in bench.log)
    tight = Limits(max_pulse_current=1e-3)
    station.limits = tight
    with pytest.raises(UserError):
        Runner(station, RECIPE, []).run()
    assert sum(r.kind == "write" for r in bench.log) == n_writes
    station.close()


def run_with_pause(station, recipe, pause_after, source_state):
    """Run on the simulator, pausing (then resuming 50 ms later) after `pause_after` points; the
    6221's `source_state(src)` after every shutdown, and every R_H, are returned."""
    src = station.bench.instrument(station.bench.addresses["keithley6221"])
    shutdown, outputs_after = station.shutdown, []

    def recording_shutdown():
        shutdown()
        outputs_after.append(source_state(src))
    station.shutdown = recording_shutdown
    rec = Recorder()
    runner = Runner(station, recipe, [rec], block_points=16)
    if pause_after:
        class Pauser:
            def on_start(self, info): pass
            def on_end(self, status, error): pass
            def on_points(self, block):
                if block["pulse_index"][-1] >= pause_after and not hasattr(self, "done"):
                    self.done = True
                    runner.pause()
                    threading.Timer(0.05, runner.resume).start()
        runner.listeners.append(Pauser())
    try:
        assert runner.run() == "completed"
    finally:
        station.close()
    return outputs_after, np.concatenate([b["hall_resistance"] for b in rec.blocks])


def test_pause_resume_on_simulator_keeps_the_device_history(tmp_path):
    """Pausing shuts the outputs off and resuming re-arms them; the device sees the same pulses."""
    recipe = load_recipe("staircase", {"cycles": 20})

    def run(pause_after):
        return run_with_pause(sim_station(seed=3), recipe, pause_after,
                              lambda src: (src.output_on, src.level))

    outputs, paused = run(pause_after=100)
    assert outputs == [(False, 0.0), (False, 0.0)]    # off and at zero in the pause, and at the end
    outputs, straight = run(pause_after=None)
    assert outputs == [(False, 0.0)]
    np.testing.assert_allclose(paused, straight, rtol=0, atol=2e-3)   # read noise << CTC


# --- hardware-timed blocks (a Hall reader with run_block) -------------------------------------

class FakeBlockStation(FakeStation):
    """FakeStation whose Hall reader also runs blocks; records each block's steps."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.blocks: list[list] = []

    def run_block(self, steps):
        self._tick("block", len(steps))
        self.blocks.append(list(steps))
        out = []
        for s in steps:
            self.t += 2e-3 if s.pulse_current else 1e-3
            out.append(HallReading(hall_voltage=s.read_current * 0.5, read_current=s.read_current,
                                   hall_resistance=0.5, timestamp=self.t))
        return out


def test_blocks_group_steps_by_cycle_width_and_wait():
    from labspin.protocols import Step
    from labspin.runner import _blocks

    steps = [Step(0, 0, 1e-3, 1e-4, 1e-4), Step(0, 1, 0.0, 0.0, 1e-4),      # read-only joins
             Step(0, 2, 1e-3, 1e-4, 1e-4), Step(0, 3, 1e-3, 2e-4, 1e-4),    # new width
             Step(0, 4, 0.0, 0.0, 1e-4, wait=1.0),                           # a wait: alone
             Step(0, 5, 1e-3, 2e-4, 1e-4), Step(1, 0, 1e-3, 2e-4, 1e-4),    # new cycle
             Step(1, 1, 1e-3, 2e-4, 1e-4), Step(1, 2, 1e-3, 2e-4, 1e-4)]
    groups = [[(s.cycle, s.step) for s in g] for g in _blocks(iter(steps), limit=2)]
    assert groups == [[(0, 0), (0, 1)], [(0, 2)], [(0, 3)], [(0, 4)], [(0, 5)],
                      [(1, 0), (1, 1)], [(1, 2)]]


def test_block_runner_delivers_every_point_with_the_same_columns():
    st, rec = FakeBlockStation(), Recorder()
    plain_st, plain = FakeStation(), Recorder()
    assert Runner(st, RECIPE, [rec], block_points=16).run() == "completed"
    assert Runner(plain_st, RECIPE, [plain], block_points=16).run() == "completed"
    assert [len(b) for b in st.blocks] == [11] * 5                 # one block per staircase cycle
    assert not [c for c in st.calls if c[0] in ("pulse", "read")]
    got = {k: np.concatenate([b[k] for b in rec.blocks]) for k in COLUMNS}
    ref = {k: np.concatenate([b[k] for b in plain.blocks]) for k in COLUMNS}
    for k in COLUMNS:
        if k != "time":
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    assert np.all(np.diff(got["time"]) > 0) and got["time"][0] > 0
    assert st.shutdowns == 1 and st.calls[-1] == ("shutdown",)


def test_block_runner_resumes_mid_cycle_and_runs_waits_one_by_one():
    st, rec = FakeBlockStation(), Recorder()
    Runner(st, RECIPE, [rec], start_index=30, time_offset=100.0).run()
    np.testing.assert_array_equal(rec.index, np.arange(30, 55))
    assert [len(b) for b in st.blocks] == [3, 11, 11]              # finish cycle 2, then whole cycles
    assert rec.blocks[0]["time"][0] >= 100.0
    st = FakeBlockStation()
    Runner(st, load_recipe("retention", {"reads": 3, "interval": 0.01}), [Recorder()]).run()
    assert [c[0] for c in st.calls] == ["block", "read", "read", "read", "shutdown"]


def test_block_runner_failure_mid_block_shuts_down_and_keeps_earlier_points():
    st, rec = FakeBlockStation(fail_at=(3, TimeoutError("VI_ERROR_TMO"))), Recorder()
    assert Runner(st, RECIPE, [rec], block_points=16).run() == "failed"
    assert st.shutdowns == 1 and st.calls[-1] == ("shutdown",)
    np.testing.assert_array_equal(rec.index, np.arange(22))       # the two blocks before it


def pd_station(seed=1):
    from labspin.station import sim_station_spec
    return sim_station_spec(f"tilted:{seed}", hall_mode="pulse_delta").open()


def test_pulse_delta_block_timeout_on_simulator_leaves_outputs_off(tmp_path):
    station = pd_station()
    bench = station.bench
    addr = bench.addresses["keithley6221"]
    bench.inject_fault(addr, "timeout", after=60)       # a reply lost in the middle of the run
    runner = Runner(station, load_recipe("staircase", {"cycles": 30}), [RunWriter(tmp_path / "t.h5")])
    try:
        status = runner.run()
    finally:
        station.close()
    assert status == "failed" and "VI_ERROR_TMO" in runner.error
    assert source_ramped_off(bench, addr)
    writes = [r.message for r in bench.log if r.kind == "write" and r.address == addr]
    assert "OUTPUT OFF" in writes[-1] and ":SOUR:SWE:ABOR" in writes      # aborted, ramped, off
    rf = read_run(tmp_path / "t.h5")
    assert rf.status == "failed" and 0 < len(rf.data) < 330 and len(rf.data) % 11 == 0


@pytest.mark.parametrize("after", [40, 90])
def test_pulse_delta_compliance_mid_block_fails_with_compliance(tmp_path, after):
    # a pulse clamped at compliance still gives a reading: without the event check this run
    # would complete with a wrong point in it
    station = pd_station()
    bench = station.bench
    addr = bench.addresses["keithley6221"]
    bench.inject_fault(addr, "compliance", after=after)
    runner = Runner(station, load_recipe("staircase", {"cycles": 30}), [RunWriter(tmp_path / "c.h5")])
    try:
        status = runner.run()
    finally:
        station.close()
    assert status == "failed" and runner.error.startswith("ComplianceError:"), runner.error
    assert "list sweep" in runner.error
    assert source_ramped_off(bench, addr)
    rf = read_run(tmp_path / "c.h5")
    assert rf.status == "failed" and len(rf.data) < 330 and len(rf.data) % 11 == 0


def test_pulse_delta_abort_mid_block_on_simulator_leaves_outputs_off(tmp_path):
    station = pd_station()
    bench = station.bench
    runner = Runner(station, load_recipe("staircase", {"cycles": 30}), [RunWriter(tmp_path / "a.h5")])
    run_block, calls = station.hall_reader.run_block, []

    def aborting_block(steps):                           # abort() arrives while a block runs
        calls.append(len(steps))
        if len(calls) == 4:
            runner.abort()
        return run_block(steps)
    station.hall_reader.run_block = aborting_block
    try:
        assert runner.run() == "aborted"
    finally:
        station.close()
    assert calls == [11] * 4                              # the block finished; no further block
    assert source_ramped_off(bench, bench.addresses["keithley6221"])
    src = bench.instrument(bench.addresses["keithley6221"])
    assert src.armed is None and not src.output_on
    rf = read_run(tmp_path / "a.h5")
    assert rf.status == "aborted" and len(rf.data) == 44


def test_pulse_delta_over_limit_block_sends_no_scpi():
    from labspin.protocols import Step

    station = pd_station()
    bench = station.bench
    n_writes = sum(r.kind == "write" for r in bench.log)
    steps = [Step(0, 0, 0.005, 1e-4, 1e-4), Step(0, 1, 0.03, 1e-4, 1e-4)]   # 2nd over 20 mA
    with pytest.raises(LimitError, match="max_pulse_current"):
        station.hall_reader.run_block(steps)
    assert sum(r.kind == "write" for r in bench.log) == n_writes
    station.close()



def test_pulse_delta_pause_resume_keeps_the_device_history():
    """Pausing between blocks shuts the 6221 off; resuming re-sends the settings and lists."""
    recipe = load_recipe("staircase", {"cycles": 12})

    def run(pause_after):
        return run_with_pause(pd_station(seed=3), recipe, pause_after,
                              lambda src: (src.output_on, src.level, src.armed))

    outputs, paused = run(pause_after=50)
    assert outputs == [(False, 0.0, None)] * 2
    _, straight = run(pause_after=None)
    np.testing.assert_allclose(paused, straight, rtol=0, atol=5e-3)   # read noise << CTC
