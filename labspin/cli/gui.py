"""`labspin gui`: the live bench window (Qt). Qt is imported only when this verb runs."""
from __future__ import annotations

import os
import sys

import click

from labspin.errors import UserError


def _check_args(sim: str | None, station: str | None, recipe: str | None, run_file: str | None,
                hall_mode: str | None = None) -> None:
    """Bad command-line input ends here, as one line and exit 2, before any window exists."""
    if sim and station:
        raise UserError("--sim and --station: choose one")
    from labspin.station import check_hall_mode_use
    check_hall_mode_use(station, hall_mode)
    if sim:
        from labspin.station import sim_station_spec
        sim_station_spec(sim, hall_mode=hall_mode or "dc_delta")   # UserError on a bad preset or seed
    if station:
        from labspin.station import load_station_spec
        load_station_spec(station)
    if recipe:
        from labspin.protocols import load_recipe
        load_recipe(recipe)
    if run_file:
        from labspin.store import read_run
        read_run(run_file)


def _check_display() -> None:
    """Qt aborts the process without a display; say so in one line instead."""
    if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("QT_QPA_PLATFORM")):
        raise UserError("gui: no display (DISPLAY/WAYLAND_DISPLAY unset); "
                        "for a headless check set QT_QPA_PLATFORM=offscreen")


@click.command("gui")
@click.option("--sim", "sim", metavar="DEVICE[:SEED]", default=None,
              help="Simulated device: orange_peel, idmi or tilted, optional seed (default tilted:1).")
@click.option("--station", "station", metavar="FILE", default=None,
              help="Station TOML (real instruments).")
@click.option("--recipe", "recipe", metavar="NAME|PATH", default=None,
              help="Shipped recipe name or recipe TOML to preselect.")
@click.option("--hall-mode", type=click.Choice(["dc_delta", "pulse_delta"]), default=None,
              help="Simulated bench: Hall reads by 6221/2182A Delta (default) or Pulse Delta list sweeps.")
@click.option("--bus-log", metavar="FILE", default=None,
              help="write every VISA message of each run to FILE (overwritten per run)")
@click.argument("run_file", required=False, metavar="[RUN.h5]")
def gui(sim: str | None, station: str | None, recipe: str | None, run_file: str | None,
        hall_mode: str | None, bus_log: str | None) -> None:
    """Open the live bench window; RUN.h5 (optional) opens in the run browser."""
    _check_args(sim, station, recipe, run_file, hall_mode)
    from labspin.extras import require
    require("gui", "labspin gui")
    if bus_log is not None:
        from labspin.cli.run import _check_bus_log
        _check_bus_log(bus_log, overwrite=True)      # its folder must exist
    _check_display()
    try:
        import pyqtgraph as pg
        from PySide6 import QtWidgets
    except ImportError as exc:
        raise UserError(f"gui: Qt is not available ({exc}); install PySide6 and pyqtgraph") from None
    from labspin.gui.window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    pg.setConfigOptions(antialias=False)
    win = MainWindow(sim=sim or (None if station else "tilted:1"), station_file=station,
                     recipe=recipe, open_run=run_file, hall_mode=hall_mode, bus_log=bus_log)
    win.show()
    app.exec()
