"""The live bench window: pick a station and a recipe, check it, run it, watch it, browse runs.

A thin shell over the Python API: the recipe is (re)loaded with `load_recipe(name, overrides)` on
every edit (so the fields get exactly `labspin run`'s validation), `dry_run` gives the summary and
the limit verdict, the Runner does the run in a worker thread (its one shutdown path serves
Abort, errors and closing the window), and a RunWriter listener writes the file.

One concern a module: `layout` builds the widgets, `validation` checks the inputs and shows each
error at its field, `run_control` starts, steers and ends runs, `field_text` reads and writes a
parameter field (numbers: `labspin.formatting`); this module holds the window's state and its
input handlers.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from labspin import formatting
from labspin.errors import UserError
from labspin.gui.layout import HALL_MODE_LABELS, build_ui, parameter_row, set_error  # noqa: F401
from labspin.gui.run_control import RunControl
from labspin.gui.validation import Validation
from labspin.gui.worker import QtListener, RunWorker

REDRAW_HZ = 25

_fmt_si = formatting.si              # the window's old names
_fmt_duration = formatting.clock


class MainWindow(Validation, RunControl, QtWidgets.QMainWindow):
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

        build_ui(self)
        self._validate_timer = QtCore.QTimer(self, singleShot=True, interval=150)
        self._validate_timer.timeout.connect(self.validate)
        self.redraw_timer = QtCore.QTimer(self)
        self.redraw_timer.setInterval(int(1000 / REDRAW_HZ))
        self.redraw_timer.timeout.connect(self._drain)
        self._set_running(False)

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
            set_error(self.recipe_error, "no recipe")
            self._schedule_validate()
            return
        try:
            base = load_recipe(name)
        except UserError as exc:
            set_error(self.recipe_error, str(exc))
            self.recipe = None
            self._schedule_validate()
            return
        self._defaults = dict(base.protocol.parameters())
        meta = {f.name: f.metadata for f in dataclasses.fields(base.protocol)}
        for key, value in self._defaults.items():
            unit = meta.get(key, {}).get("unit", "")
            label, box, edit, err = parameter_row(key, value, unit, meta.get(key, {}).get("doc", ""))
            edit.textChanged.connect(self._schedule_validate)
            self.params_form.addRow(label, box)
            self._fields[key] = (edit, err)
        if not self.output_edit.text():
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            self.output_edit.setText(str(Path.cwd() / f"{base.name}-{stamp}.h5"))
        self._schedule_validate()

    def hall_mode(self) -> str:
        """The simulated bench's Hall-read mode chosen in the combo ("dc_delta", "pulse_delta")."""
        return self.hall_combo.currentData()

    def _sync_hall_combo(self, *_) -> None:
        """The Hall-read combo is for the simulated bench only (a station file keeps its mode)."""
        self.hall_combo.setEnabled(self.sim_radio.isChecked() and not self.is_running())

    def _log(self, level: str, text: str) -> None:
        stamp = _dt.datetime.now().strftime("%H:%M:%S")
        colour = "#b00020" if level == "error" else "#222"
        self.log.appendHtml(f"<span style='color:{colour}'>{stamp} {level}: {text}</span>")
        if level == "error":
            self.statusBar().showMessage(text, 10000)
