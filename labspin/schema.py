"""The run's columns and what a runner hands its listeners: one place for the runner, the store,
the analysis and the GUI.

No imports beyond the standard library, so any part (the GUI's plots, a listener of your own) can
use it without pulling in h5py, the simulator or the protocols.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

#: the point columns, in file and block order (DESIGN.md §3.3 /entry/data)
COLUMNS = ("pulse_index", "cycle", "step", "pulse_current", "pulse_width",
           "read_current", "hall_voltage", "hall_resistance", "time")
#: numpy dtype of each column (HDF5 datasets and the runner's blocks)
DTYPES = {"pulse_index": "i8", "cycle": "i4", "step": "i4", "pulse_current": "f8",
          "pulse_width": "f8", "read_current": "f8", "hall_voltage": "f8",
          "hall_resistance": "f8", "time": "f8"}
#: SI unit of each column (the datasets' @units)
UNITS = {"pulse_index": "1", "cycle": "1", "step": "1", "pulse_current": "A",
         "pulse_width": "s", "read_current": "A", "hall_voltage": "V",
         "hall_resistance": "ohm", "time": "s"}
FLOAT_COLUMNS = tuple(c for c in COLUMNS if DTYPES[c] == "f8")


def now_iso() -> str:
    """The time stamps of a run (RunInfo.start_time, the file's end time): UTC, ISO 8601, seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def protocol_info(recipe) -> dict:
    """What a run file stores about a recipe, as a plain dict: name, kind, the TOML text, the
    file it came from and the effective parameters (JSON-able)."""
    return {"name": recipe.name, "kind": recipe.kind, "recipe": recipe.text,
            "recipe_path": str(recipe.path) if getattr(recipe, "path", None) else None,
            "parameters": recipe.protocol.parameters()}


@dataclass
class RunInfo:
    """Handed to every listener's ``on_start``: plain, JSON-able dicts only, so a listener (the
    run-file writer, the GUI) depends on no protocol, station or simulator class."""
    protocol: dict              # protocol_info(recipe): name, kind, recipe, recipe_path, parameters
    station: dict               # Station.snapshot()
    sample: dict                # Station.sample (+ "simulation": params and seed on the simulator)
    total_points: int
    start_index: int
    start_time: str
    software_version: str
