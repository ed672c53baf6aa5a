"""The window's widgets: the station / recipe / dry-run / output / controls panel, the Live and
Run-browser tabs and the status bar, built onto the window and wired to its handlers."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from labspin.gui.browser import RunBrowser
from labspin.gui.field_text import show_value
from labspin.gui.plots import LivePlots

# Hall-read modes of the simulated bench (`sim_station_spec(hall_mode=...)`, `labspin run
# --hall-mode`), as shown in the combo; a station file names its own mode.
HALL_MODE_LABELS = {"dc_delta": "Delta (2182A)", "pulse_delta": "Pulse Delta list sweeps"}


def sim_devices() -> list[str]:
    """Simulator presets, tilted first (the study's best device)."""
    from labspin.sim_backend.physics import PRESETS
    return sorted(PRESETS, key=lambda name: (name != "tilted", name))


def error_label() -> QtWidgets.QLabel:
    """A red note under a widget, hidden while empty."""
    lab = QtWidgets.QLabel("")
    lab.setWordWrap(True)
    lab.setStyleSheet("color: #b00020;")
    lab.setVisible(False)
    return lab


def set_error(label: QtWidgets.QLabel, text: str | None) -> None:
    label.setText(text or "")
    label.setVisible(bool(text))


def mark_invalid(widget: QtWidgets.QWidget, invalid: bool) -> None:
    """Outline ``widget`` in red while an error names its field (property "invalid" says so)."""
    if bool(widget.property("invalid")) != invalid:
        widget.setProperty("invalid", invalid)
        widget.setStyleSheet("border: 1px solid #b00020;" if invalid else "")


def parameter_row(key: str, value, unit: str, doc: str
                  ) -> tuple[QtWidgets.QLabel, QtWidgets.QWidget, QtWidgets.QLineEdit, QtWidgets.QLabel]:
    """(label, row widget, line edit, error label) of one recipe parameter."""
    edit = QtWidgets.QLineEdit(show_value(value))
    edit.setObjectName(f"param_{key}")
    err = error_label()
    box = QtWidgets.QWidget()
    bl = QtWidgets.QVBoxLayout(box)
    bl.setContentsMargins(0, 0, 0, 0)
    bl.setSpacing(1)
    bl.addWidget(edit)
    bl.addWidget(err)
    label = QtWidgets.QLabel(f"{key} ({unit})" if unit else key)
    if doc:
        label.setToolTip(doc)
        edit.setToolTip(doc)
    if value is None:
        edit.setPlaceholderText("not set (default)")
    return label, box, edit, err


def build_ui(w: QtWidgets.QMainWindow) -> None:
    """Create the widgets as attributes of the window ``w`` and connect them to its handlers."""
    # station
    st_box = QtWidgets.QGroupBox("Station")
    w.sim_radio = QtWidgets.QRadioButton("Simulated device")
    w.station_file_radio = QtWidgets.QRadioButton("Station file")
    w.sim_radio.setChecked(True)
    w.device_combo = QtWidgets.QComboBox()
    w.device_combo.addItems(sim_devices())
    w.seed_spin = QtWidgets.QSpinBox()
    w.seed_spin.setRange(0, 2**31 - 1)
    w.seed_spin.setValue(1)
    w.seed_spin.setPrefix("seed ")
    w.hall_combo = QtWidgets.QComboBox()
    for mode, label in HALL_MODE_LABELS.items():
        w.hall_combo.addItem(label, mode)
    w.hall_combo.setToolTip("How the simulated bench reads R_H: 6221/2182A Delta per point, "
                               "or each protocol cycle as one hardware-timed 6221 Pulse Delta "
                               "list sweep (labspin run --hall-mode). A station file names "
                               "its own mode.")
    hall_label = QtWidgets.QLabel("Hall read")
    hall_label.setBuddy(w.hall_combo)
    w.station_file_edit = QtWidgets.QLineEdit()
    w.station_file_edit.setPlaceholderText("station.toml")
    st_browse = QtWidgets.QToolButton(text="…")
    st_browse.clicked.connect(w._browse_station)
    w.station_error = error_label()
    g = QtWidgets.QGridLayout(st_box)
    g.addWidget(w.sim_radio, 0, 0, 1, 3)
    g.addWidget(w.device_combo, 1, 0, 1, 2)
    g.addWidget(w.seed_spin, 1, 2)
    g.addWidget(hall_label, 2, 0)
    g.addWidget(w.hall_combo, 2, 1, 1, 2)
    g.addWidget(w.station_file_radio, 3, 0, 1, 3)
    g.addWidget(w.station_file_edit, 4, 0, 1, 2)
    g.addWidget(st_browse, 4, 2)
    g.addWidget(w.station_error, 5, 0, 1, 3)

    # recipe
    rc_box = QtWidgets.QGroupBox("Recipe")
    w.recipe_combo = QtWidgets.QComboBox()
    w.recipe_combo.setMinimumContentsLength(14)
    rc_browse = QtWidgets.QToolButton(text="…")
    rc_browse.setToolTip("Open a user recipe (.toml)")
    rc_browse.clicked.connect(w._browse_recipe)
    w.params_form = QtWidgets.QFormLayout()
    w.params_form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
    w.recipe_error = error_label()
    rl = QtWidgets.QVBoxLayout(rc_box)
    row = QtWidgets.QHBoxLayout()
    row.addWidget(w.recipe_combo, 1)
    row.addWidget(rc_browse)
    rl.addLayout(row)
    rl.addLayout(w.params_form)
    rl.addWidget(w.recipe_error)

    # dry run
    dr_box = QtWidgets.QGroupBox("Dry run")
    w.dry_label = QtWidgets.QLabel("—")
    w.dry_label.setWordWrap(True)
    w.dry_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    QtWidgets.QVBoxLayout(dr_box).addWidget(w.dry_label)

    # output
    out_box = QtWidgets.QGroupBox("Output")
    w.output_edit = QtWidgets.QLineEdit()
    w.output_edit.setPlaceholderText("run file (.h5)")
    out_browse = QtWidgets.QToolButton(text="…")
    out_browse.clicked.connect(w._browse_output)
    w.overwrite_box = QtWidgets.QCheckBox("Overwrite if it exists")
    w.output_error = error_label()
    ol = QtWidgets.QGridLayout(out_box)
    ol.addWidget(w.output_edit, 0, 0)
    ol.addWidget(out_browse, 0, 1)
    ol.addWidget(w.overwrite_box, 1, 0, 1, 2)
    ol.addWidget(w.output_error, 2, 0, 1, 2)
    w.bus_log_edit = QtWidgets.QLineEdit()      # labspin gui --bus-log: the VISA transcript
    w.bus_log_edit.setPlaceholderText("bus log (optional): every VISA message")
    ol.addWidget(w.bus_log_edit, 3, 0, 1, 2)

    # controls
    w.start_btn = QtWidgets.QPushButton("▶ Start")
    w.pause_btn = QtWidgets.QPushButton("❚❚ Pause")
    w.resume_btn = QtWidgets.QPushButton("▶ Resume")
    w.abort_btn = QtWidgets.QPushButton("■ Abort")
    w.abort_btn.setStyleSheet("QPushButton:enabled { color: #b00020; font-weight: bold; }")
    w.start_btn.setStyleSheet("QPushButton:enabled { color: #1b7f3b; font-weight: bold; }")
    w.start_btn.clicked.connect(w.start_run)
    w.pause_btn.clicked.connect(w.pause_run)
    w.resume_btn.clicked.connect(w.resume_run)
    w.abort_btn.clicked.connect(w.abort_run)
    w.start_reason = error_label()
    cl = QtWidgets.QGridLayout()
    cl.addWidget(w.start_btn, 0, 0)
    cl.addWidget(w.pause_btn, 0, 1)
    cl.addWidget(w.resume_btn, 1, 0)
    cl.addWidget(w.abort_btn, 1, 1)
    cl.addWidget(w.start_reason, 2, 0, 1, 2)

    left = QtWidgets.QWidget()
    ll = QtWidgets.QVBoxLayout(left)
    for box in (st_box, rc_box, dr_box, out_box):
        ll.addWidget(box)
    ll.addLayout(cl)
    ll.addStretch(1)
    scroll = QtWidgets.QScrollArea()
    scroll.setWidget(left)
    scroll.setWidgetResizable(True)
    scroll.setMinimumWidth(340)
    scroll.setMaximumWidth(460)

    # live tab: plots + log
    w.plots = LivePlots()
    w.log = QtWidgets.QPlainTextEdit()
    w.log.setReadOnly(True)
    w.log.setMaximumBlockCount(2000)
    w.log.setMinimumHeight(40)
    w.log.setPlaceholderText("Run log: events, warnings and errors.")
    live = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
    live.addWidget(w.plots)
    live.addWidget(w.log)
    live.setSizes([760, 60])
    w.browser = RunBrowser()
    w.browser.message.connect(w._log)
    w.tabs = QtWidgets.QTabWidget()
    w.tabs.addTab(live, "Live")
    w.tabs.addTab(w.browser, "Run browser")

    split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
    split.addWidget(scroll)
    split.addWidget(w.tabs)
    split.setStretchFactor(1, 1)
    split.setSizes([380, 1020])
    w.setCentralWidget(split)

    # status bar
    sb = w.statusBar()
    w.output_label = QtWidgets.QLabel("output: —")
    w.current_label = QtWidgets.QLabel("I: —")
    w.status_label = QtWidgets.QLabel("idle")
    w.progress = QtWidgets.QProgressBar()
    w.progress.setFixedWidth(220)
    w.progress.setFormat("%v / %m pulses")
    w.progress.setRange(0, 1)
    w.progress.setValue(0)
    w.eta_label = QtWidgets.QLabel("ETA —")
    for lab in (w.output_label, w.current_label, w.status_label):
        lab.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        lab.setMinimumWidth(120)
    sb.addWidget(w.status_label, 1)
    sb.addPermanentWidget(w.output_label)
    sb.addPermanentWidget(w.current_label)
    sb.addPermanentWidget(w.progress)
    sb.addPermanentWidget(w.eta_label)

    # revalidate on any input change
    for sig in (w.sim_radio.toggled, w.device_combo.currentIndexChanged,
                w.seed_spin.valueChanged, w.hall_combo.currentIndexChanged,
                w.station_file_edit.textChanged,
                w.output_edit.textChanged, w.overwrite_box.toggled):
        sig.connect(w._schedule_validate)
    w.recipe_combo.currentIndexChanged.connect(w._recipe_changed)
    w.sim_radio.toggled.connect(w._sync_hall_combo)
