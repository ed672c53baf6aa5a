"""Run browser: open any run file (finished, being written, or interrupted) and inspect it.

Everything goes through `labspin.store.read_run` (SWMR-safe) and `labspin.analysis` /
`labspin.levels`; the browser only lays the results out and exports the level table.
A file whose status is still "running" (and not interrupted) is re-read on a timer.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from labspin.errors import UserError
from labspin.gui import analysis_bridge
from labspin.gui.plots import LivePlots


class RunBrowser(QtWidgets.QWidget):
    """Tab showing one run file: header, plots, analysis summary, level table + export."""

    opened = QtCore.Signal(str)          # path, after a successful (re)load
    message = QtCore.Signal(str, str)    # level ("info" | "error"), text — for the window's log
    MAX_POINTS = 1_000_000               # a longer run is plotted decimated (every k-th point)
    step = 1                             # the decimation of what is plotted

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: str | None = None
        self.run = None          # labspin.store.RunFile
        self.levels = None       # labspin.levels.LevelTable | None
        self.follow_timer = QtCore.QTimer(self)
        self.follow_timer.setInterval(1000)
        self.follow_timer.timeout.connect(self.reload)

        self.path_edit = QtWidgets.QLineEdit()
        self.path_edit.setPlaceholderText("run file (.h5) — finished, running or interrupted")
        self.path_edit.returnPressed.connect(lambda: self.open(self.path_edit.text()))
        browse = QtWidgets.QPushButton("Open…")
        browse.clicked.connect(self._browse)
        self.reload_btn = QtWidgets.QPushButton("Reload")
        self.reload_btn.clicked.connect(self.reload)
        self.follow_box = QtWidgets.QCheckBox("Follow while running")
        self.follow_box.setChecked(True)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Run file:"))
        top.addWidget(self.path_edit, 1)
        top.addWidget(browse)
        top.addWidget(self.reload_btn)
        top.addWidget(self.follow_box)

        self.header = QtWidgets.QLabel("No run file open.")
        self.header.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header.setWordWrap(True)
        self.plots = LivePlots()

        self.summary = QtWidgets.QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setPlaceholderText("Analysis summary (states, CTC) appears here.")
        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["state", "mean R_H (Ω)", "std (Ω)", "n"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.export_json_btn = QtWidgets.QPushButton("Export levels.json…")
        self.export_csv_btn = QtWidgets.QPushButton("Export CSV (states,mean,std)…")
        self.export_json_btn.clicked.connect(lambda: self._export_dialog("json"))
        self.export_csv_btn.clicked.connect(lambda: self._export_dialog("csv"))
        for b in (self.export_json_btn, self.export_csv_btn):
            b.setEnabled(False)
        side = QtWidgets.QWidget()
        sl = QtWidgets.QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(QtWidgets.QLabel("<b>Analysis</b>"))
        sl.addWidget(self.summary, 1)
        sl.addWidget(QtWidgets.QLabel("<b>Level table</b>"))
        sl.addWidget(self.table, 2)
        eb = QtWidgets.QHBoxLayout()
        eb.addWidget(self.export_json_btn)
        eb.addWidget(self.export_csv_btn)
        sl.addLayout(eb)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(self.plots)
        split.addWidget(side)
        split.setSizes([800, 360])

        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.header)
        lay.addWidget(split, 1)

    # -- loading -------------------------------------------------------------------------------
    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open run file", "", "Run files (*.h5 *.hdf5);;All files (*)")
        if path:
            self.open(path)

    def open(self, path: str) -> bool:
        """Load `path`; errors go to the header and the `message` signal, never raise."""
        self.path = str(path)
        self.path_edit.setText(self.path)
        return self.reload()

    def reload(self) -> bool:
        if not self.path:
            return False
        from labspin.store import read_decimated, read_run
        t0 = time.monotonic()
        try:
            run = read_run(self.path, data=False)
            self.step = 1
            if run.points > self.MAX_POINTS:      # plot every k-th point: bounded memory and time
                data, self.step = read_decimated(self.path, self.MAX_POINTS)
            else:
                run = read_run(self.path)
                data = run.data
        except UserError as exc:
            self.follow_timer.stop()
            self.header.setText(f"<span style='color:#b00020'>{exc}</span>")
            self.message.emit("error", str(exc))
            return False
        self.run = run
        self._show_header(run)
        cycles = None
        try:
            cycles = int(run.protocol.get("parameters", {}).get("cycles"))
        except (TypeError, ValueError):
            pass
        self.plots.set_data(data, cycles_hint=cycles)
        if self.step == 1:
            self._show_analysis(run)
        else:
            self.summary.setPlainText(
                f"{run.points} points: the plots show every {self.step}th. The analysis needs every "
                f"point: labspin analyze {Path(run.path).name}")
            self.levels = None
            self._fill_table(None)
        live = run.status == "running" and not run.interrupted
        if live and self.follow_box.isChecked():
            # re-reading a big file costs time on the GUI thread: keep that under ~20 % of it
            cost = time.monotonic() - t0
            self.follow_timer.setInterval(int(1000 * max(1.0, 5 * cost)))
            self.follow_timer.start()
        else:
            self.follow_timer.stop()
        self.opened.emit(self.path)
        return True

    def _show_header(self, run) -> None:
        status = "interrupted" if run.interrupted else run.status
        colour = {"completed": "#1b7f3b", "running": "#1f4e9c", "aborted": "#b36b00"}.get(status, "#b00020")
        proto = run.protocol or {}
        sample = run.sample or {}
        err = f" — {run.error}" if run.error else ""
        self.header.setText(
            f"<b>{Path(run.path).name}</b> &nbsp; status: <b style='color:{colour}'>{status}</b>{err}"
            f" &nbsp;|&nbsp; recipe: {proto.get('name', '?')} ({proto.get('kind', '?')})"
            f" &nbsp;|&nbsp; sample: {sample.get('id', sample.get('type', '?'))}"
            f" &nbsp;|&nbsp; points: {run.points}"
            + (f" (plotted: every {self.step}th)" if self.step > 1 else "") +
            f" &nbsp;|&nbsp; start: {run.start_time or '?'} &nbsp; end: {run.end_time or '—'}")

    def _show_analysis(self, run) -> None:
        try:
            text, table = analysis_bridge.analyse(run)
        except UserError as exc:
            text, table = f"Analysis not possible: {exc}", None
        except Exception as exc:  # analysis of a partial file may legitimately fail
            text, table = f"Analysis failed: {type(exc).__name__}: {exc}", None
        self.summary.setPlainText(text)
        self.levels = table
        self._fill_table(table)

    def _fill_table(self, table) -> None:
        n = 0 if table is None else len(table)
        self.table.setRowCount(n)
        for i in range(n):
            vals = [str(i), f"{table.mean[i]:.6g}", f"{table.std[i]:.3g}", str(int(table.n[i]))]
            for j, v in enumerate(vals):
                item = QtWidgets.QTableWidgetItem(v)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        ok = table is not None and n >= 2 and all(math.isfinite(x) for x in table.mean)
        self.export_json_btn.setEnabled(ok)
        self.export_csv_btn.setEnabled(ok)

    # -- export --------------------------------------------------------------------------------
    def _export_dialog(self, fmt: str) -> None:
        filt = "Level table (*.json)" if fmt == "json" else "NeuroSim states CSV (*.csv)"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export level table", "", filt)
        if path:
            # the dialog already asked about replacing an existing file
            self.export_levels(path, overwrite=True)

    def export_levels(self, path: str, *, overwrite: bool = False) -> bool:
        """Write the level table as JSON (labspin-levels/1) or CSV by the file's suffix."""
        if self.levels is None:
            self.message.emit("error", "no level table to export")
            return False
        try:
            if str(path).lower().endswith(".csv"):
                self.levels.save_csv(path, overwrite=overwrite)
            else:
                self.levels.save_json(path, overwrite=overwrite)
        except UserError as exc:
            self.message.emit("error", str(exc))
            return False
        self.message.emit("info", f"level table written to {path}")
        return True

