"""The live bench window, driven like a user would (offscreen Qt, simulated bench)."""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui

from labspin.gui.window import MainWindow
from labspin.levels import load_levels
from labspin.store import read_run

PULSE_ADDR = "k6221"   # the sim station's pulse source instrument name


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(sim="tilted:1", recipe="staircase")
    qtbot.addWidget(w)
    w.resize(1400, 860)
    w.show()
    w.output_edit.setText(str(tmp_path / "run.h5"))
    w.validate()
    yield w
    if w.is_running():
        w.abort_run()
        w.worker.join(30)


def _wait_finished(qtbot, w, timeout=30_000):
    with qtbot.waitSignal(w.run_finished, timeout=timeout) as blocker:
        pass
    return blocker.args


def test_full_run_plots_live_and_writes_file(qtbot, window, tmp_path):
    w = window
    w.set_parameter("cycles", 1000)          # ~2 s of run: several live redraws even on a busy machine
    assert w.overrides() == {"cycles": 1000}
    assert w.start_btn.isEnabled(), w.start_reason.text()
    assert "within station limits" in w.dry_label.text()
    seen = []
    refresh = w.plots.refresh

    def spy(*a, **kw):
        refresh(*a, **kw)
        seen.append(w.plots.plotted_points())
    w.plots.refresh = spy
    with qtbot.waitSignal(w.run_finished, timeout=30_000) as done:
        qtbot.mouseClick(w.start_btn, QtCore.Qt.MouseButton.LeftButton)
        assert w.is_running()
        assert not w.start_btn.isEnabled() and w.abort_btn.isEnabled()
    total = len(w.recipe.protocol)
    assert total == 11000
    assert done.args[0] == "completed"
    grew = [n for n in seen if n > 0]
    assert grew == sorted(grew) and grew[-1] == total
    assert len(set(grew)) >= 2 and grew[0] < total      # drawn while the run went, not only at the end
    assert w.progress.value() == total
    assert "completed" in w.status_label.text()
    run = read_run(tmp_path / "run.h5")
    assert run.status == "completed" and len(run.data) == total
    assert run.protocol["parameters"]["cycles"] == 1000
    np.testing.assert_array_equal(run.data["hall_resistance"].to_numpy(),
                                  w.plots.buffer["hall_resistance"])
    # the output now exists: Start refuses until another name or Overwrite
    assert not w.start_btn.isEnabled() and "exists" in w.start_reason.text()
    w.overwrite_box.setChecked(True)
    w.validate()
    assert w.start_btn.isEnabled()


def test_no_garbage_collection_in_the_runner_thread_during_a_run(qtbot, window):
    # a collection started in the runner thread can destroy old Qt objects there and deadlock Qt;
    # during a run automatic GC is off and collections run on a GUI-thread timer
    w = window
    w.set_parameter("cycles", 300)
    assert gc.isenabled()
    collected_in = set()

    def note(phase, info):
        collected_in.add(threading.current_thread().name)
    gc.callbacks.append(note)
    try:
        with qtbot.waitSignal(w.run_finished, timeout=30_000):
            w.start_run()
            assert not gc.isenabled()
            for _ in range(3):
                [[] for _ in range(2000)]              # garbage enough for the timer to collect
                qtbot.wait(600)
    finally:
        gc.callbacks.remove(note)
    assert gc.isenabled()                              # restored when the run ended
    assert "labspin-runner" not in collected_in and "MainThread" in collected_in


def test_pause_resume_abort_ramps_down_and_marks_file(qtbot, window, tmp_path):
    w = window
    w.set_parameter("cycles", 3000)                          # ~33k points: long enough to abort
    opened = []
    w.station_opened.connect(opened.append)
    assert w.start_run()
    qtbot.waitUntil(lambda: w.plots.n_points >= 30, timeout=20_000)
    # screenshot during the run (the README's figure is made the same way)
    shot = tmp_path / "gui.png"
    assert w.grab().save(str(shot))
    img = QtGui.QImage(str(shot))
    assert img.width() >= 1000 and img.height() >= 700
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 50
    qtbot.mouseClick(w.pause_btn, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.runner.state == "paused", timeout=10_000)
    qtbot.wait(150)
    n_paused = w.plots.n_points
    qtbot.wait(400)
    assert w.plots.n_points == n_paused                     # nothing measured while paused
    assert w.resume_btn.isEnabled() and not w.pause_btn.isEnabled()
    qtbot.mouseClick(w.resume_btn, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.plots.n_points > n_paused, timeout=10_000)
    with qtbot.waitSignal(w.run_finished, timeout=30_000) as done:
        qtbot.mouseClick(w.abort_btn, QtCore.Qt.MouseButton.LeftButton)
    assert done.args[0] == "aborted"
    assert w.plots.n_points < len(w.recipe.protocol)
    station = opened[0]
    hist = station.bench.output_history(station.addresses[PULSE_ADDR])
    assert any(on for _, on, _ in hist)                     # it did source
    t_last, on_last, level_last = hist[-1]
    assert not on_last and level_last == 0.0                # ended at zero and off
    run = read_run(tmp_path / "run.h5")
    assert run.status == "aborted" and 0 < len(run.data) < len(w.recipe.protocol)
    assert "aborted" in w.status_label.text()


def test_invalid_inputs_block_start_with_reason(qtbot, window, tmp_path):
    w = window
    w.set_parameter("cycles", 0)
    err = w._fields["cycles"][1]
    assert err.isVisibleTo(w) and "cycles" in err.text()
    assert not w.start_btn.isEnabled()
    w.set_parameter("cycles", 2)
    assert not err.isVisibleTo(w) and w.start_btn.isEnabled()
    w.set_parameter("reset_current", -0.05)                  # 50 mA > the 20 mA station limit
    assert not w.start_btn.isEnabled()
    assert "max_pulse_current" in w.start_reason.text()
    assert "max_pulse_current" in w._fields["reset_current"][1].text()
    assert not w.start_run()
    w.set_parameter("reset_current", -0.0075)
    existing = tmp_path / "exists.h5"
    existing.write_bytes(b"keep me")
    w.output_edit.setText(str(existing))
    w.validate()
    assert not w.start_btn.isEnabled() and "exists" in w.output_error.text()
    assert existing.read_bytes() == b"keep me"


def test_instrument_timeout_marks_run_failed_without_blocking(qtbot, window, tmp_path):
    w = window
    w.set_parameter("cycles", 50)

    def arm(station):
        station.bench.inject_fault(station.addresses[PULSE_ADDR], "timeout", after=1000)
    w.station_opened.connect(arm)
    assert w.start_run()
    status, error = _wait_finished(qtbot, w)
    assert status == "failed" and "VI_ERROR_TMO" in error
    assert "failed" in w.status_label.text() and "VI_ERROR_TMO" in w.status_label.text()
    assert 0 < w.plots.n_points < len(w.recipe.protocol)
    assert "failed" in w.log.toPlainText()
    assert w.error_box.isVisible() and not w.error_box.isModal()
    hist = w.station.bench.output_history(w.station.addresses[PULSE_ADDR])
    assert not hist[-1][1] and hist[-1][2] == 0.0
    run = read_run(tmp_path / "run.h5")
    assert run.status == "failed" and run.error == error


def test_browser_follows_file_being_written_then_exports_levels(qtbot, window, tmp_path):
    w = window
    path = tmp_path / "live.h5"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "labspin", "run", "staircase", "--sim", "tilted:2",
                             "-o", str(path), "--set", "cycles=5000", "--no-progress", "--flush-interval", "0.2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        b = w.browser
        w.tabs.setCurrentWidget(b)

        def opened_with_points():
            return path.exists() and b.open(str(path)) and len(b.run.data) > 0
        qtbot.waitUntil(opened_with_points, timeout=30_000)
        assert b.run.status == "running" and not b.run.interrupted
        assert "running" in b.header.text() and b.follow_timer.isActive()
        n0 = b.plots.n_points
        qtbot.waitUntil(lambda: b.plots.n_points > n0 + 20, timeout=20_000)   # followed live
        qtbot.waitUntil(lambda: b.plots.n_points >= 60, timeout=20_000)
        proc.send_signal(signal.SIGKILL)                     # a hard kill: the file is interrupted
        proc.wait(10)
        assert b.reload()
        assert b.run.interrupted and "interrupted" in b.header.text()
        assert not b.follow_timer.isActive()
        assert b.table.rowCount() == 11 and b.export_json_btn.isEnabled()
        assert "CTC" in b.summary.toPlainText()
        assert b.export_levels(str(tmp_path / "levels.json"))
        assert b.export_levels(str(tmp_path / "levels.csv"))
        lj, lc = load_levels(tmp_path / "levels.json"), load_levels(tmp_path / "levels.csv")
        assert len(lj) == len(lc) == 11
        np.testing.assert_allclose(lj.mean, lc.mean)
        assert np.all(np.diff(lj.mean) > 0)
        assert not b.export_levels(str(tmp_path / "levels.json"))   # no silent overwrite
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_browser_reports_bad_file_in_window(qtbot, window, tmp_path):
    bad = tmp_path / "not_a_run.h5"
    bad.write_text("hello")
    msgs = []
    window.browser.message.connect(lambda level, text: msgs.append((level, text)))
    assert not window.browser.open(str(bad))
    assert msgs and msgs[0][0] == "error" and "not_a_run.h5" in msgs[0][1]
    assert "not_a_run.h5" in window.log.toPlainText()


def test_cli_gui_bad_input_is_one_line_exit_2(capsys):
    from labspin.cli import main
    for argv in (["gui", "--sim", "nosuch"], ["gui", "--sim", "tilted", "--station", "x.toml"],
                 ["gui", "--recipe", "nosuch"], ["gui", "missing.h5"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("labspin: error:") and "\n" not in err


def test_user_recipe_file_and_switching_recipes_rebuild_fields(qtbot, window, tmp_path):
    w = window
    user = tmp_path / "my_loop.toml"
    user.write_text('name = "my_loop"\nkind = "loop"\n[parameters]\nmax_current = 5e-3\n'
                    'current_steps = 10\npulse_width = 1e-4\nread_current = 1e-4\ncycles = 1\n')
    w.select_recipe(str(user))
    w.validate()
    assert set(w._fields) >= {"max_current", "current_steps", "cycles"}
    assert "reset_current" not in w._fields
    assert w.recipe.name == "my_loop" and len(w.recipe.protocol) == 40
    assert w.start_btn.isEnabled()
    w.select_recipe("retention")
    w.validate()
    assert "reads" in w._fields and "max_current" not in w._fields
    assert w.recipe.kind == "retention"


def test_live_plots_incremental_histogram_equals_full_recount(qtbot):
    from labspin.gui.plots import HIST_BINS, LivePlots
    p = LivePlots()
    qtbot.addWidget(p)
    rng = np.random.default_rng(7)
    start = 0
    for k in range(12):
        n = int(rng.integers(50, 400))
        idx = np.arange(start, start + n)
        step = idx % 6
        r = 0.1 * step + 0.01 * rng.standard_normal(n)
        if k == 8:
            r[3] = 9.0                                   # outside the edges: forces a rebuild
        p.append({"pulse_index": idx, "cycle": idx // 6, "step": step, "pulse_current": step * 1e-3,
                  "hall_resistance": r})
        p.refresh(force_hist=True)
        start += n
    h = p._hist
    rh, st = p.buffer["hall_resistance"], p.buffer["step"].astype(int)
    assert h["n"] == len(rh) == start and h["counts"].sum() == start
    for s in range(6):
        b = np.clip(((rh[st == s] - h["lo"]) * (HIST_BINS / (h["hi"] - h["lo"]))).astype(int), 0, HIST_BINS - 1)
        np.testing.assert_array_equal(np.bincount(b, minlength=HIST_BINS), h["counts"][s])
    assert len(p.hist_curves) == 6
    assert p.plotted_points() == start


def test_station_file_that_cannot_open_fails_to_start_in_window(qtbot, window, tmp_path):
    w = window
    example = Path(__file__).resolve().parents[1] / "docs" / "station_example.toml"
    w.station_file_radio.setChecked(True)
    w.station_file_edit.setText(str(tmp_path / "missing.toml"))
    assert not w.validate() and "missing.toml" in w.station_error.text()
    w.station_file_edit.setText(str(example))
    assert w.validate(), w._blocker                 # a valid spec: nothing is opened by checking it
    assert not w.start_run()                        # no VISA implementation / instrument here
    assert "failed to start" in w.status_label.text() and "station" in w.log.toPlainText()
    assert not w.is_running() and not (tmp_path / "run.h5").exists()


def test_window_opens_run_file_given_on_command_line(qtbot, tmp_path):
    from labspin.protocols import load_recipe
    from labspin.runner import Runner
    from labspin.station import sim_station_spec
    from labspin.store import RunWriter
    path = tmp_path / "done.h5"
    station = sim_station_spec("idmi:4").open()
    try:
        assert Runner(station, load_recipe("staircase_idmi", {"cycles": 20}), [RunWriter(path)]).run() == "completed"
    finally:
        station.close()
    w = MainWindow(sim="idmi:4", recipe="staircase_idmi", open_run=str(path))
    qtbot.addWidget(w)
    assert w.tabs.currentWidget() is w.browser
    assert w.browser.run.status == "completed" and w.browser.plots.n_points == 120
    assert w.device_combo.currentText() == "idmi" and w.seed_spin.value() == 4
    assert w.browser.table.rowCount() == 6 and "completed" in w.browser.header.text()


def test_hall_read_pulse_delta_reaches_the_bench_and_the_run_file(qtbot, window, tmp_path):
    w = window
    assert w.hall_combo.isEnabled() and w.hall_mode() == "dc_delta"          # the default
    assert w.hall_combo.currentText() == "Delta (2182A)"
    w.hall_combo.setCurrentIndex(w.hall_combo.findData("pulse_delta"))
    assert w.hall_combo.currentText() == "Pulse Delta list sweeps"
    qtbot.waitUntil(lambda: w.spec.hall_reader.mode == "pulse_delta", timeout=2_000)  # re-checked
    assert "pulse_delta" in w.dry_label.text()
    w.set_parameter("cycles", 50)
    opened = []
    w.station_opened.connect(opened.append)
    with qtbot.waitSignal(w.run_finished, timeout=30_000) as done:
        assert w.start_run()
        assert not w.hall_combo.isEnabled()                                  # locked while running
    assert done.args[0] == "completed", done.args
    assert w.hall_combo.isEnabled()
    run = read_run(tmp_path / "run.h5")
    assert run.status == "completed" and len(run.data) == len(w.recipe.protocol) == 550
    assert run.station["roles"]["hall_reader"]["mode"] == "pulse_delta"
    assert run.invocation["station"] == {"sim": "tilted:1", "hall_mode": "pulse_delta"}
    bench = opened[0].bench
    writes = [str(r.message) for r in bench.log if r.kind == "write"]
    assert any("SOUR:LIST:CURR" in m for m in writes)                       # list sweeps on the 6221
    # a station file keeps its own mode: the combo is off, the file's mode is used
    from labspin.station import load_station_spec
    example = Path(__file__).resolve().parents[1] / "docs" / "station_example.toml"
    file_mode = load_station_spec(str(example)).hall_reader.mode
    w.output_edit.setText(str(tmp_path / "next.h5"))
    w.station_file_radio.setChecked(True)
    w.station_file_edit.setText(str(example))
    assert not w.hall_combo.isEnabled() and w.hall_mode() == "pulse_delta"
    assert w.validate(), w._blocker
    assert w.spec.hall_reader.mode == file_mode and f"<b>{file_mode}</b>" in w.dry_label.text()
    w.sim_radio.setChecked(True)
    assert w.hall_combo.isEnabled() and w.validate() and w.spec.hall_reader.mode == "pulse_delta"


def test_window_and_cli_gui_take_hall_mode(qtbot, capsys):
    from labspin.cli import main
    from labspin.errors import UserError
    w = MainWindow(sim="idmi:2", recipe="staircase_idmi", hall_mode="pulse_delta")
    qtbot.addWidget(w)
    assert w.hall_mode() == "pulse_delta" and w.validate() and w.spec.hall_reader.mode == "pulse_delta"
    with pytest.raises(UserError, match="^hall_mode: ") as lib:      # the library names the field ...
        MainWindow(station_file="x.toml", hall_mode="pulse_delta")
    assert lib.value.key == "hall_mode"
    with pytest.raises(SystemExit) as exc:
        main(["gui", "--station", "x.toml", "--hall-mode", "pulse_delta"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("labspin: error: --hall-mode") and "\n" not in err      # ... the CLI its flag


def test_window_refuses_a_bad_sim_or_mode_as_run_does(qtbot):
    from labspin.errors import UserError
    from labspin.station import sim_station_spec
    for kw, spec_kw in ((dict(sim="nosuch"), dict(spec="nosuch")),
                        (dict(sim="tilted:x"), dict(spec="tilted:x")),
                        (dict(sim="tilted:1", hall_mode="lockin"), dict(spec="tilted:1", hall_mode="lockin"))):
        with pytest.raises(UserError) as want:
            sim_station_spec(**spec_kw)
        with pytest.raises(UserError) as got:
            MainWindow(**kw)
        assert str(got.value) == str(want.value)


def test_browser_decimates_a_long_run(qtbot, window, tmp_path):
    """A run longer than the browser's MAX_POINTS is plotted every k-th point (bounded memory),
    the header says so, and the analysis is left to labspin analyze."""
    path = tmp_path / "long.h5"
    from labspin.cli import main
    with pytest.raises(SystemExit):
        main(["run", "staircase", "--sim", "tilted:1", "-o", str(path), "--set", "cycles=20",
              "--no-progress"])
    b = window.browser
    b.MAX_POINTS = 50                                   # 220 points: every 5th is plotted
    assert b.open(str(path))
    assert b.step == 5 and b.plots.n_points == 44 and b.run.points == 220
    assert "every 5th" in b.header.text() and "labspin analyze" in b.summary.toPlainText()
    assert b.table.rowCount() == 0 and not b.export_json_btn.isEnabled()
    b.MAX_POINTS = type(b).MAX_POINTS
    assert b.reload() and b.step == 1 and b.plots.n_points == 220 and b.table.rowCount() == 11


def test_errors_are_shown_at_the_widget_their_key_names(qtbot, window):
    """The field comes from `FieldError.key`, not from reading the message."""
    from labspin.errors import FieldError
    w = window
    w.set_parameter("cycles", 0)                              # the library raises key parameters.cycles
    edit, err = w._fields["cycles"]
    assert edit.property("invalid") and err.isVisibleTo(w) and w.field_widget("parameters.cycles") is edit
    assert not w._fields["reset_current"][0].property("invalid")
    w.set_parameter("cycles", 2)
    assert not edit.property("invalid") and not err.isVisibleTo(w)
    # a message that names another parameter first still lands on the field of its key
    w.show_field_error(FieldError("parameters.reset_current", "must differ from cycles and amplitudes[0]",
                                  "staircase.toml"))
    assert w._fields["reset_current"][0].property("invalid") and not edit.property("invalid")
    assert "must differ" in w._fields["reset_current"][1].text() and not err.isVisibleTo(w)
    # fields outside the recipe: the station widgets, an indexed parameter
    w.show_field_error(FieldError("hall_mode", "not a mode"))
    assert w.hall_combo.property("invalid") and "not a mode" in w.recipe_error.text()
    assert w.field_widget("parameters.amplitudes[3]") is w._fields["amplitudes"][0]     # one rung: the list
    assert w.field_widget("sim") is w.device_combo and w.field_widget("nosuch") is None
    w.validate()                                              # a clean check clears every mark
    assert not w.hall_combo.property("invalid") and not w._fields["reset_current"][0].property("invalid")
