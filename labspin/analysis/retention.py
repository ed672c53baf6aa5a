"""Retention runs: drift of each programmed state against log time since its set pulse."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from labspin.analysis.result import RunAnalysis


def retention_segments(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(segment, t) per point of a retention run: a segment (one programmed state) starts at each
    set pulse; t is the time since that segment's first read (s), so reads sit on a log axis."""
    pulse = data["pulse_current"].to_numpy(float) != 0
    seg = np.cumsum(pulse) - (1 if pulse.size and pulse[0] else 0)
    seg = np.maximum(seg, 0)
    time = data["time"].to_numpy(float)
    first = np.zeros(int(seg.max()) + 1 if seg.size else 0)
    for g in range(first.size):                    # a few segments: a loop is clear and cheap
        first[g] = time[np.argmax(seg == g)]
    return seg, time - first[seg]


def retention_drift(data: pd.DataFrame, window: float | None = None) -> dict:
    """Drift of R_H per state: least squares R_H = a + b·log10(t / 1 s) over reads with t > 0.

    b is the drift in Ω per decade of time; with the device's window (R_max − R_min, from a
    staircase of the same device) it is also given in % of the window per decade.
    """
    seg, t = retention_segments(data)
    r = data["hall_resistance"].to_numpy(float)
    cur = data["pulse_current"].to_numpy(float)
    rows = []
    for g in np.unique(seg):
        m = (seg == g) & (t > 0)
        x, y = np.log10(t[m]), r[m]
        row: dict[str, Any] = {"state": int(g), "set_current": float(cur[seg == g][0]), "reads": int(m.sum()),
                               "t_first": float(t[m].min()) if m.any() else None,
                               "t_last": float(t[m].max()) if m.any() else None,
                               "r_first": float(y[0]) if y.size else None, "r_last": float(y[-1]) if y.size else None,
                               "drift_per_decade": None, "drift_per_decade_std": None, "decades": None}
        if y.size >= 3 and np.ptp(x) > 0:
            A = np.column_stack([np.ones_like(x), x])
            coef, res, *_ = np.linalg.lstsq(A, y, rcond=None)
            dof = y.size - 2
            s2 = float(np.sum((y - A @ coef) ** 2)) / dof if dof > 0 else math.nan
            se = math.sqrt(s2 / float(np.sum((x - x.mean()) ** 2))) if dof > 0 else math.nan
            row.update(drift_per_decade=float(coef[1]), drift_per_decade_std=se, decades=float(np.ptp(x)))
        rows.append(row)
    out = {"model": "R_H = a + b*log10(t / 1 s), t from the first read after the set pulse",
           "unit": "ohm/decade", "window": window, "states": rows}
    set_window(out, window)
    return out


def set_window(retention: dict, window: float | None) -> None:
    """Express each state's drift in % of ``window`` per decade (None without a window)."""
    retention["window"] = window
    for row in retention["states"]:
        b = row["drift_per_decade"]
        row["drift_pct_window_per_decade"] = (100 * b / window if (b is not None and window) else None)


def analyze(a: "RunAnalysis") -> dict[str, Any]:
    """The retention kind's result: ``retention`` (drift per state; % of window once it is known)."""
    return {"retention": retention_drift(a.data)}
