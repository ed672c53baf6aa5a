"""Endurance runs: window and CTC against cycles (log axis), cycles to failure (labspin.endurance)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labspin.errors import UserError

if TYPE_CHECKING:
    from labspin.analysis.result import RunAnalysis


def analyze(a: "RunAnalysis") -> dict[str, Any]:
    """The endurance kind's results: ``endurance`` (reads, first and last window, cycles to
    failure by the run's own stop criterion), ``endurance_windows`` (per read cycle) and
    ``endurance_ctc`` (per decade of cycles); nothing before the first complete read cycle."""
    from labspin.endurance import ctc_vs_cycles, cycles_to_failure, window_table

    try:
        table = window_table(a.data)
    except UserError:
        return {}
    p = a.parameters or {}
    min_window, patience = float(p.get("min_window", 0.5)), int(p.get("patience", 3))
    failure, verdict = cycles_to_failure(table, min_window, patience)
    return {"endurance": {"read_cycles": int(len(table)), "last_cycle": int(table["cycle"].iloc[-1]),
                          "first_window": float(table["window"].iloc[0]),
                          "last_window": float(table["window"].iloc[-1]),
                          "last_window_rel": float(table["window_rel"].iloc[-1]),
                          "min_window": min_window, "patience": patience,
                          "cycles_to_failure": failure, "verdict": verdict},
            "endurance_windows": table, "endurance_ctc": ctc_vs_cycles(table)}
