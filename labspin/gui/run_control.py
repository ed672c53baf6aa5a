"""Running from the window: Start (output file, station, Runner in a worker thread), Pause, Resume,
Abort, the live progress, and the end of a run (its one shutdown path also serves closing)."""
from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from labspin.errors import UserError
from labspin import formatting
from labspin.gui.layout import set_error
from labspin.gui.worker import QtListener, RunWorker


class RunControl:
    """MainWindow's run control (a mixin: the widgets are built by `layout.build_ui`)."""

    def _update_buttons(self) -> None:
        running = self.is_running()
        state = getattr(self.runner, "state", None) if running else None
        self.start_btn.setEnabled(not running and self._blocker is None)
        self.pause_btn.setEnabled(running and state == "running")
        self.resume_btn.setEnabled(running and state == "paused")
        self.abort_btn.setEnabled(running)
        reason = None if running else self._blocker
        set_error(self.start_reason, f"Cannot start — {reason}" if reason else None)

    def _set_running(self, running: bool) -> None:
        for w in (self.sim_radio, self.station_file_radio, self.device_combo, self.seed_spin,
                  self.station_file_edit, self.recipe_combo, self.output_edit, self.overwrite_box):
            w.setEnabled(not running)
        for edit, _ in self._fields.values():
            edit.setEnabled(not running)
        self._sync_hall_combo()
        self._update_buttons()

    def start_run(self) -> bool:
        """Open the station, wire RunWriter + live listener, start the runner thread."""
        if self.is_running():
            return False
        if not self.validate():
            self._log("error", f"cannot start: {self._blocker}")
            return False
        path = self.output_edit.text().strip()
        if not self._open_run(path):
            return False
        self.worker = RunWorker(self.runner, self)
        self.worker.finished.connect(self._on_finished)
        params = self.recipe.protocol.parameters()
        cycles = params.get("cycles") if isinstance(params.get("cycles"), int) else None
        self.plots.clear(cycles_hint=cycles)
        self.total_points = len(self.recipe.protocol)
        self.plots.set_span(self.total_points)
        self.received = 0
        self._t0 = time.monotonic()
        self._paused_at = None
        self.progress.setRange(0, max(1, self.total_points))
        self.progress.setValue(0)
        self.last_status = self.last_error = None
        self._set_status("running", "#1f4e9c")
        self._log("info", f"start: {self.recipe.name} → {path}")
        self._busy = True
        self.worker.start()
        self.redraw_timer.start()
        self._set_running(True)
        return True

    def _open_run(self, path: str) -> bool:
        """Writer, station and Runner of a run to ``path`` (False, shown, if one cannot be made).

        The one place that composes a run: the output file first, then `measure.prepare` (limits,
        station, pre-flight checks, the Runner with the writer and the live listener)."""
        from labspin.measure import invocation, prepare
        from labspin.store import RunWriter
        try:               # the output first: a refused file must not cost an instrument open
            writer = RunWriter(path, overwrite=self.overwrite_box.isChecked(),
                               invocation=invocation(self.recipe, self.spec, ["gui"]))
        except UserError as exc:
            self._fail_to_start(str(exc))
            return False
        self.listener = QtListener(status_probe=self._probe_source)
        try:               # limits, station, pre-flight checks: what `labspin run` does
            runner = prepare(self.recipe, self.spec, writer, [self.listener],
                             bus_log=self.bus_log_edit.text().strip() or None)
        except Exception as exc:  # bad address, instrument not answering: not a traceback
            self._fail_to_start(f"station: {exc}")
            return False
        station = runner.station
        self.station = station
        self.output_path = path
        self.station_opened.emit(station)
        self.listener.started.connect(self._on_started)
        self.listener.probed.connect(self._on_probe)
        self.listener.ended.connect(self._on_listener_end)
        self.runner = runner
        return True

    def _fail_to_start(self, msg: str) -> None:
        self._set_status("failed to start", "#b00020")
        self._log("error", msg)
        set_error(self.start_reason, msg)

    def _probe_source(self):
        """Runner thread, between blocks: read the pulse source's output state."""
        src = self.station.pulse_source
        return bool(src.output_enabled)

    def pause_run(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.pause()
            self._paused_at = time.monotonic()
            self._set_status("paused", "#b36b00")
            self._log("info", "pause requested")
            QtCore.QTimer.singleShot(50, self._update_buttons)

    def resume_run(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.resume()
            if self._paused_at is not None:   # the ETA counts running time only
                self._t0 += time.monotonic() - self._paused_at
                self._paused_at = None
            self._set_status("running", "#1f4e9c")
            self._log("info", "resume")
            QtCore.QTimer.singleShot(50, self._update_buttons)

    def abort_run(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.abort()
            self._set_status("aborting…", "#b36b00")
            self._log("info", "abort requested: the runner ramps outputs to zero and turns them off")

    def is_running(self) -> bool:
        """True from Start until the run's end has been handled (thread done and files closed)."""
        return self._busy

    # ------------------------------------------------------------------------------ events (GUI thread)
    def _on_started(self, info) -> None:
        total = getattr(info, "total_points", None)
        start = getattr(info, "start_index", 0) or 0
        if total:
            self.total_points = int(total)
            self.progress.setRange(0, max(1, self.total_points))
            self.plots.set_span(self.total_points)
        self.received = int(start)
        self._update_buttons()

    def _on_probe(self, output_on) -> None:
        between = " (between pulses)" if not output_on and self.is_running() else ""
        self.output_label.setText("output: ON" if output_on else f"output: off{between}")
        self.output_label.setStyleSheet("color: #b00020; font-weight: bold;" if output_on else "")

    def _drain(self) -> None:
        """Timer (~25 Hz): append every block that arrived, redraw once, update progress."""
        if self.listener is None:
            return
        blocks = self.listener.drain()
        for b in blocks:
            self.plots.append(b)
            self.received += len(b["pulse_index"])
        if blocks:
            last = blocks[-1]
            cur = float(last["pulse_current"][-1]) if len(last["pulse_current"]) else float("nan")
            self.current_label.setText(f"I_pulse: {formatting.si(cur, 'A')}")
            self.progress.setValue(min(self.received, self.progress.maximum()))
            elapsed = time.monotonic() - self._t0
            done = max(1, self.received)
            remaining = max(0, self.total_points - self.received)
            self.eta_label.setText(f"ETA {formatting.clock(elapsed / done * remaining)}")
            self.plots.refresh()
        if self.is_running():
            self._update_buttons()

    def _on_listener_end(self, status: str, error) -> None:
        self.last_status, self.last_error = status, error

    def _on_finished(self, status: str, error) -> None:
        """The runner thread has returned: final redraw, status, and errors shown (non-modal)."""
        self.worker.join(5)         # its last line emitted us; joined, automatic GC is back on
        self.redraw_timer.stop()
        self._drain()
        self.plots.refresh(force_hist=True)
        status = self.last_status or status
        error = self.last_error if self.last_status else error
        self.last_status, self.last_error = status, error
        colour = {"completed": "#1b7f3b", "aborted": "#b36b00"}.get(status, "#b00020")
        self._set_status(status + (f": {error}" if error else ""), colour)
        self.eta_label.setText("ETA —")
        self.output_label.setText("output: off")
        self.output_label.setStyleSheet("")
        self._log("error" if status == "failed" else "info",
                  f"run {status}" + (f": {error}" if error else "") + f" — {self.output_path}")
        if status == "failed":
            box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Critical, "Run failed",
                                        f"The run failed and outputs were shut down.\n\n{error}",
                                        QtWidgets.QMessageBox.StandardButton.Ok, self)
            box.setModal(False)
            box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()          # non-modal: never blocks the event loop (or the tests)
            self.error_box = box
        try:
            self.station.close()
        except Exception as exc:
            self._log("error", f"closing the station: {exc}")
        self._busy = False
        self._set_running(False)
        self.validate()        # the output file now exists: Start asks for a new name
        self.run_finished.emit(status, error)

    def _set_status(self, text: str, colour: str) -> None:
        self.status_label.setText(f"<b style='color:{colour}'>{text}</b>")

    # ------------------------------------------------------------------------------ closing
    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        """Closing during a run aborts it through the runner and waits for its shutdown."""
        if self.is_running():
            self.worker.abort()
            if self.worker.join(timeout=30) and self.station is not None:
                self.station.close()   # the queued finished handler will not run any more
        self.redraw_timer.stop()
        self.browser.follow_timer.stop()
        super().closeEvent(event)
