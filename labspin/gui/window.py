"""The live bench window: pick a station and a recipe, check it, run it, watch it, browse runs.

A thin shell over the Python API: the recipe is (re)loaded with `load_recipe(name, overrides)` on
every edit (so the fields get exactly `labspin run`'s validation), `dry_run` gives the summary and
the limit verdict, the Runner does the run in a worker thread (its one shutdown path serves
Abort, errors and closing the window), and a RunWriter listener writes the file.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from labspin import formatting
from labspin.errors import UserError
from labspin.gui.browser import RunBrowser
from labspin.gui.plots import LivePlots
from labspin.gui.worker import QtListener, RunWorker

def _sim_devices() -> list[str]:
    """Simulator presets, tilted first (the study's best device)."""
    from labspin.sim_backend.physics import PRESETS
    return sorted(PRESETS, key=lambda name: (name != "tilted", name))


# Hall-read modes of the simulated bench (`sim_station_spec(hall_mode=...)`, `labspin run
# --hall-mode`), as shown in the combo; a station file names its own mode.
HALL_MODE_LABELS = {"dc_delta": "Delta (2182A)", "pulse_delta": "Pulse Delta list sweeps"}
REDRAW_HZ = 25


_fmt_si = formatting.si
_fmt_duration = formatting.clock


def _parse_value(text: str):
    """Field text -> value the way `labspin run --set` reads it; empty = not set (the default)."""
    from labspin.protocols.recipe import parse_value
    t = text.strip()
    return parse_value(t) if t else None


def _show_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}" if float(f"{v:g}") == v else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    return json.dumps(v)


class MainWindow(QtWidgets.QMainWindow):
    """`labspin gui`: station + recipe panel on the left, Live and Run-browser tabs on the right."""

    run_finished = QtCore.Signal(str, object)   # status, error — after the worker thread returned
    station_opened = QtCore.Signal(object)      # the Station, before the runner starts (scripts, tests)

    def __init__(self, *, sim: str | None = "tilted:1", station_file: str | None = None,
                 recipe: str | None = None, open_run: str | None = None,
                 hall_mode: str | None = None, bus_log: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("labspin — live bench")
        self.resize(1400, 860)
        self.recipe = None          # labspin.protocols.Recipe (validated, with overrides)
        self.spec = None            # labspin.station.StationSpec
        self.station = None         # labspin.station.Station of the current/last run
        self.runner = None
        self.worker: RunWorker | None = None
        self.listener: QtListener | None = None
        self.total_points = 0
        self.received = 0
        self._t0 = 0.0
        self._paused_at: float | None = None
        self._busy = False
        self._defaults: dict = {}
        self._fields: dict[str, tuple[QtWidgets.QLineEdit, QtWidgets.QLabel]] = {}
        self._blocker: str | None = "not checked yet"
        self.last_status: str | None = None
        self.last_error: str | None = None
        self.output_path: str | None = None

        self._build_ui()
        self._validate_timer = QtCore.QTimer(self, singleShot=True, interval=150)
        self._validate_timer.timeout.connect(self.validate)
        self.redraw_timer = QtCore.QTimer(self)
        self.redraw_timer.setInterval(int(1000 / REDRAW_HZ))
        self.redraw_timer.timeout.connect(self._drain)

        self._fill_recipes()
        if bus_log:
            self.bus_log_edit.setText(str(bus_log))
        if station_file:
            self.station_file_radio.setChecked(True)
            self.station_file_edit.setText(str(station_file))
        elif sim:
            from labspin.station import parse_sim_spec, sim_station_spec
            sim_station_spec(sim)               # `labspin run --sim`'s checks and messages
            dev, seed = parse_sim_spec(sim)
            self.device_combo.setCurrentIndex(self.device_combo.findText(dev))
            self.seed_spin.setValue(seed)
        if hall_mode is not None:
            from labspin.station import check_hall_mode_use, check_sim_hall_mode
            check_hall_mode_use(station_file, hall_mode)
            check_sim_hall_mode(hall_mode)
            self.hall_combo.setCurrentIndex(self.hall_combo.findData(hall_mode))
        if recipe:
            self.select_recipe(recipe)
        else:
            self._recipe_changed()
        if open_run:
            self.tabs.setCurrentWidget(self.browser)
            self.browser.open(open_run)

    # ------------------------------------------------------------------------------ layout
    def _build_ui(self) -> None:
        # station
        st_box = QtWidgets.QGroupBox("Station")
        self.sim_radio = QtWidgets.QRadioButton("Simulated device")
        self.station_file_radio = QtWidgets.QRadioButton("Station file")
        self.sim_radio.setChecked(True)
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.addItems(_sim_devices())
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(1)
        self.seed_spin.setPrefix("seed ")
        self.hall_combo = QtWidgets.QComboBox()
        for mode, label in HALL_MODE_LABELS.items():
            self.hall_combo.addItem(label, mode)
        self.hall_combo.setToolTip("How the simulated bench reads R_H: 6221/2182A Delta per point, "
                                   "or each protocol cycle as one hardware-timed 6221 Pulse Delta "
                                   "list sweep (labspin run --hall-mode). A station file names "
                                   "its own mode.")
        hall_label = QtWidgets.QLabel("Hall read")
        hall_label.setBuddy(self.hall_combo)
        self.station_file_edit = QtWidgets.QLineEdit()
        self.station_file_edit.setPlaceholderText("station.toml")
        st_browse = QtWidgets.QToolButton(text="…")
        st_browse.clicked.connect(self._browse_station)
        self.station_error = self._error_label()
        g = QtWidgets.QGridLayout(st_box)
        g.addWidget(self.sim_radio, 0, 0, 1, 3)
        g.addWidget(self.device_combo, 1, 0, 1, 2)
        g.addWidget(self.seed_spin, 1, 2)
        g.addWidget(hall_label, 2, 0)
        g.addWidget(self.hall_combo, 2, 1, 1, 2)
        g.addWidget(self.station_file_radio, 3, 0, 1, 3)
        g.addWidget(self.station_file_edit, 4, 0, 1, 2)
        g.addWidget(st_browse, 4, 2)
        g.addWidget(self.station_error, 5, 0, 1, 3)

        # recipe
        rc_box = QtWidgets.QGroupBox("Recipe")
        self.recipe_combo = QtWidgets.QComboBox()
        self.recipe_combo.setMinimumContentsLength(14)
        rc_browse = QtWidgets.QToolButton(text="…")
        rc_browse.setToolTip("Open a user recipe (.toml)")
        rc_browse.clicked.connect(self._browse_recipe)
        self.params_form = QtWidgets.QFormLayout()
        self.params_form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        self.recipe_error = self._error_label()
        rl = QtWidgets.QVBoxLayout(rc_box)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.recipe_combo, 1)
        row.addWidget(rc_browse)
        rl.addLayout(row)
        rl.addLayout(self.params_form)
        rl.addWidget(self.recipe_error)

        # dry run
        dr_box = QtWidgets.QGroupBox("Dry run")
        self.dry_label = QtWidgets.QLabel("—")
        self.dry_label.setWordWrap(True)
        self.dry_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        QtWidgets.QVBoxLayout(dr_box).addWidget(self.dry_label)

        # output
        out_box = QtWidgets.QGroupBox("Output")
        self.output_edit = QtWidgets.QLineEdit()
        self.output_edit.setPlaceholderText("run file (.h5)")
        out_browse = QtWidgets.QToolButton(text="…")
        out_browse.clicked.connect(self._browse_output)
        self.overwrite_box = QtWidgets.QCheckBox("Overwrite if it exists")
        self.output_error = self._error_label()
        ol = QtWidgets.QGridLayout(out_box)
        ol.addWidget(self.output_edit, 0, 0)
        ol.addWidget(out_browse, 0, 1)
        ol.addWidget(self.overwrite_box, 1, 0, 1, 2)
        ol.addWidget(self.output_error, 2, 0, 1, 2)
        self.bus_log_edit = QtWidgets.QLineEdit()      # labspin gui --bus-log: the VISA transcript
        self.bus_log_edit.setPlaceholderText("bus log (optional): every VISA message")
        ol.addWidget(self.bus_log_edit, 3, 0, 1, 2)

        # controls
        self.start_btn = QtWidgets.QPushButton("▶ Start")
        self.pause_btn = QtWidgets.QPushButton("❚❚ Pause")
        self.resume_btn = QtWidgets.QPushButton("▶ Resume")
        self.abort_btn = QtWidgets.QPushButton("■ Abort")
        self.abort_btn.setStyleSheet("QPushButton:enabled { color: #b00020; font-weight: bold; }")
        self.start_btn.setStyleSheet("QPushButton:enabled { color: #1b7f3b; font-weight: bold; }")
        self.start_btn.clicked.connect(self.start_run)
        self.pause_btn.clicked.connect(self.pause_run)
        self.resume_btn.clicked.connect(self.resume_run)
        self.abort_btn.clicked.connect(self.abort_run)
        self.start_reason = self._error_label()
        cl = QtWidgets.QGridLayout()
        cl.addWidget(self.start_btn, 0, 0)
        cl.addWidget(self.pause_btn, 0, 1)
        cl.addWidget(self.resume_btn, 1, 0)
        cl.addWidget(self.abort_btn, 1, 1)
        cl.addWidget(self.start_reason, 2, 0, 1, 2)

        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        for w in (st_box, rc_box, dr_box, out_box):
            ll.addWidget(w)
        ll.addLayout(cl)
        ll.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(340)
        scroll.setMaximumWidth(460)

        # live tab: plots + log
        self.plots = LivePlots()
        self.log = QtWidgets.QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMinimumHeight(40)
        self.log.setPlaceholderText("Run log: events, warnings and errors.")
        live = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        live.addWidget(self.plots)
        live.addWidget(self.log)
        live.setSizes([760, 60])
        self.browser = RunBrowser()
        self.browser.message.connect(self._log)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(live, "Live")
        self.tabs.addTab(self.browser, "Run browser")

        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setSizes([380, 1020])
        self.setCentralWidget(split)

        # status bar
        sb = self.statusBar()
        self.output_label = QtWidgets.QLabel("output: —")
        self.current_label = QtWidgets.QLabel("I: —")
        self.status_label = QtWidgets.QLabel("idle")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setFixedWidth(220)
        self.progress.setFormat("%v / %m pulses")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.eta_label = QtWidgets.QLabel("ETA —")
        for w in (self.output_label, self.current_label, self.status_label):
            w.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
            w.setMinimumWidth(120)
        sb.addWidget(self.status_label, 1)
        sb.addPermanentWidget(self.output_label)
        sb.addPermanentWidget(self.current_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.eta_label)

        # revalidate on any input change
        for sig in (self.sim_radio.toggled, self.device_combo.currentIndexChanged,
                    self.seed_spin.valueChanged, self.hall_combo.currentIndexChanged,
                    self.station_file_edit.textChanged,
                    self.output_edit.textChanged, self.overwrite_box.toggled):
            sig.connect(self._schedule_validate)
        self.recipe_combo.currentIndexChanged.connect(self._recipe_changed)
        self.sim_radio.toggled.connect(self._sync_hall_combo)
        self._set_running(False)

    @staticmethod
    def _error_label() -> QtWidgets.QLabel:
        lab = QtWidgets.QLabel("")
        lab.setWordWrap(True)
        lab.setStyleSheet("color: #b00020;")
        lab.setVisible(False)
        return lab

    @staticmethod
    def _set_error(label: QtWidgets.QLabel, text: str | None) -> None:
        label.setText(text or "")
        label.setVisible(bool(text))

    # ------------------------------------------------------------------------------ inputs
    def _fill_recipes(self) -> None:
        from labspin.protocols import shipped_recipes
        self.recipe_combo.blockSignals(True)
        self.recipe_combo.clear()
        for name in shipped_recipes():
            self.recipe_combo.addItem(name, name)
        self.recipe_combo.blockSignals(False)

    def select_recipe(self, name_or_path: str) -> None:
        """Choose a shipped recipe by name or add a user recipe file to the list."""
        i = self.recipe_combo.findData(name_or_path)
        if i < 0:
            self.recipe_combo.addItem(Path(name_or_path).name, str(name_or_path))
            i = self.recipe_combo.count() - 1
        if i == self.recipe_combo.currentIndex():
            self._recipe_changed()
        else:
            self.recipe_combo.setCurrentIndex(i)

    def _browse_station(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Station file", "", "TOML (*.toml)")
        if path:
            self.station_file_radio.setChecked(True)
            self.station_file_edit.setText(path)

    def _browse_recipe(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Recipe file", "", "TOML (*.toml)")
        if path:
            self.select_recipe(path)

    def _browse_output(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Run file", self.output_edit.text(), "HDF5 run (*.h5)",
            options=QtWidgets.QFileDialog.Option.DontConfirmOverwrite)  # overwrite is the checkbox's call
        if path:
            self.output_edit.setText(path)

    def _recipe_changed(self) -> None:
        """Rebuild the parameter fields from the recipe's own (unoverridden) parameters."""
        from labspin.protocols import load_recipe
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self._fields.clear()
        self._defaults = {}
        name = self.recipe_combo.currentData()
        if name is None:
            self._set_error(self.recipe_error, "no recipe")
            self._schedule_validate()
            return
        try:
            base = load_recipe(name)
        except UserError as exc:
            self._set_error(self.recipe_error, str(exc))
            self.recipe = None
            self._schedule_validate()
            return
        self._defaults = dict(base.protocol.parameters())
        meta = {f.name: f.metadata for f in dataclasses.fields(base.protocol)}
        for key, value in self._defaults.items():
            unit = meta.get(key, {}).get("unit", "")
            edit = QtWidgets.QLineEdit(_show_value(value))
            edit.setObjectName(f"param_{key}")
            edit.textChanged.connect(self._schedule_validate)
            err = self._error_label()
            box = QtWidgets.QWidget()
            bl = QtWidgets.QVBoxLayout(box)
            bl.setContentsMargins(0, 0, 0, 0)
            bl.setSpacing(1)
            bl.addWidget(edit)
            bl.addWidget(err)
            label = QtWidgets.QLabel(f"{key} ({unit})" if unit else key)
            doc = meta.get(key, {}).get("doc", "")
            if doc:
                label.setToolTip(doc)
                edit.setToolTip(doc)
            if value is None:
                edit.setPlaceholderText("not set (default)")
            self.params_form.addRow(label, box)
            self._fields[key] = (edit, err)
        if not self.output_edit.text():
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            self.output_edit.setText(str(Path.cwd() / f"{base.name}-{stamp}.h5"))
        self._schedule_validate()

    def set_parameter(self, key: str, value) -> None:
        """Script/test access: type `value` into the field of parameter `key`, then validate."""
        if key not in self._fields:
            raise UserError(f"parameter {key!r}: not a parameter of this recipe")
        self._fields[key][0].setText(_show_value(value))
        self.validate()

    def overrides(self) -> dict:
        """Parameters whose field differs from the recipe file's value (empty = the file's value)."""
        out = {}
        for key, (edit, _) in self._fields.items():
            v = _parse_value(edit.text())
            if v is not None and v != self._defaults.get(key):
                out[key] = v
        return out

    def _schedule_validate(self, *_) -> None:
        self._validate_timer.start()

    def hall_mode(self) -> str:
        """The simulated bench's Hall-read mode chosen in the combo ("dc_delta", "pulse_delta")."""
        return self.hall_combo.currentData()

    def _sync_hall_combo(self, *_) -> None:
        """The Hall-read combo is for the simulated bench only (a station file keeps its mode)."""
        self.hall_combo.setEnabled(self.sim_radio.isChecked() and not self.is_running())

    def _station_spec(self):
        from labspin.station import load_station_spec, sim_station_spec
        if self.sim_radio.isChecked():
            return sim_station_spec(f"{self.device_combo.currentText()}:{self.seed_spin.value()}",
                                    hall_mode=self.hall_mode())
        path = self.station_file_edit.text().strip()
        if not path:
            raise UserError("station file: none chosen")
        return load_station_spec(path)

    def validate(self) -> bool:
        """Re-check station, recipe (with overrides), dry run and output; enable Start accordingly."""
        self._validate_timer.stop()
        from labspin.protocols import load_recipe
        blocker = None
        # station
        try:
            self.spec = self._station_spec()
            self._set_error(self.station_error, None)
        except UserError as exc:
            self.spec = None
            self._set_error(self.station_error, str(exc))
            blocker = "station: see the error above"
        # recipe
        for _, err in self._fields.values():
            self._set_error(err, None)
        self._set_error(self.recipe_error, None)
        self.recipe = None
        name = self.recipe_combo.currentData()
        if name is None:
            blocker = blocker or "no recipe chosen"
        else:
            try:
                self.recipe = load_recipe(name, self.overrides() or None)
            except UserError as exc:
                self._attribute_recipe_error(str(exc))
                blocker = blocker or "recipe: " + str(exc)
            except Exception as exc:  # a protocol bug must not kill validation: show it
                self._set_error(self.recipe_error, f"{type(exc).__name__}: {exc}")
                blocker = blocker or f"recipe: {type(exc).__name__}: {exc}"
        # dry run against the station limits
        self.dry_summary_ok = False
        if self.recipe is not None and self.spec is not None:
            from labspin.gui.dryrun_view import describe
            text, problem, per_field = describe(self.recipe, self.spec)
            self.dry_label.setText(text)
            for key, msg in per_field.items():
                if key in self._fields:
                    self._set_error(self._fields[key][1], msg)
            self.dry_summary_ok = problem is None
            if problem:
                blocker = blocker or problem
        else:
            self.dry_label.setText("—")
        # output
        out = self.output_edit.text().strip()
        out_err = None
        if not out:
            out_err = "choose an output file"
        elif Path(out).exists() and not self.overwrite_box.isChecked():
            out_err = f"{out}: exists; choose another name or tick 'Overwrite'"
        elif not Path(out).parent.is_dir():
            out_err = f"{out}: folder {Path(out).parent} does not exist"
        self._set_error(self.output_error, out_err)
        blocker = blocker or (f"output: {out_err}" if out_err else None)
        self._blocker = blocker
        self._update_buttons()
        return blocker is None

    def _attribute_recipe_error(self, msg: str) -> None:
        """Show a load_recipe error next to the field it names (else under the recipe box)."""
        m = re.search(r"parameters\.(\w+)", msg)
        if m and m.group(1) in self._fields:
            self._set_error(self._fields[m.group(1)][1], msg)
            return
        for key, (_, err) in sorted(self._fields.items(), key=lambda kv: -len(kv[0])):
            if re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", msg):
                self._set_error(err, msg)
                return
        self._set_error(self.recipe_error, msg)

    # ------------------------------------------------------------------------------ running
    def _update_buttons(self) -> None:
        running = self.is_running()
        state = getattr(self.runner, "state", None) if running else None
        self.start_btn.setEnabled(not running and self._blocker is None)
        self.pause_btn.setEnabled(running and state == "running")
        self.resume_btn.setEnabled(running and state == "paused")
        self.abort_btn.setEnabled(running)
        reason = None if running else self._blocker
        self._set_error(self.start_reason, f"Cannot start — {reason}" if reason else None)

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
        from labspin.measure import invocation, prepare
        from labspin.store import RunWriter
        path = self.output_edit.text().strip()
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

    def _fail_to_start(self, msg: str) -> None:
        self._set_status("failed to start", "#b00020")
        self._log("error", msg)
        self._set_error(self.start_reason, msg)

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
            self.current_label.setText(f"I_pulse: {_fmt_si(cur, 'A')}")
            self.progress.setValue(min(self.received, self.progress.maximum()))
            elapsed = time.monotonic() - self._t0
            done = max(1, self.received)
            remaining = max(0, self.total_points - self.received)
            self.eta_label.setText(f"ETA {_fmt_duration(elapsed / done * remaining)}")
            self.plots.refresh()
        if self.is_running():
            self._update_buttons()

    def _on_listener_end(self, status: str, error) -> None:
        self.last_status, self.last_error = status, error

    def _on_finished(self, status: str, error) -> None:
        """The runner thread has returned: final redraw, status, and errors shown (non-modal)."""
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

    def _log(self, level: str, text: str) -> None:
        stamp = _dt.datetime.now().strftime("%H:%M:%S")
        colour = "#b00020" if level == "error" else "#222"
        self.log.appendHtml(f"<span style='color:{colour}'>{stamp} {level}: {text}</span>")
        if level == "error":
            self.statusBar().showMessage(text, 10000)

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
