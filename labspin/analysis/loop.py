"""Switching loops: I_c+ / I_c− where R_H crosses the window midpoint, per cycle and sweep."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from labspin.analysis.result import RunAnalysis


def switching_currents(data: pd.DataFrame, midpoint: float) -> tuple[dict, pd.DataFrame]:
    """I_c+ / I_c−: the pulse current where R_H crosses the window midpoint on the up / down sweep.

    Vectorised over the whole run: sign changes of (R_H − midpoint) between consecutive points of
    one cycle, current linearly interpolated, first crossing per (cycle, sweep) kept.
    """
    cyc = data["cycle"].to_numpy()
    cur = data["pulse_current"].to_numpy(float)
    r = data["hall_resistance"].to_numpy(float)
    empty = pd.DataFrame({"cycle": [], "sweep": [], "current": []})
    if r.size < 2:
        return {"ic_plus": None, "ic_minus": None}, empty
    dI = np.diff(cur)
    same = cyc[1:] == cyc[:-1]
    above = r > midpoint
    cross = same & (above[1:] != above[:-1]) & (dI != 0)
    i = np.flatnonzero(cross) + 1
    frac = (midpoint - r[i - 1]) / (r[i] - r[i - 1])
    ic = cur[i - 1] + frac * (cur[i] - cur[i - 1])
    sweep = np.where(dI[i - 1] > 0, "up", "down")
    cr = pd.DataFrame({"cycle": cyc[i], "sweep": sweep, "current": ic,
                       "direction": np.where(above[i], "rising", "falling")})
    cr = cr.drop_duplicates(["cycle", "sweep"], keep="first").reset_index(drop=True)

    def stats(sel: str) -> dict:
        v = cr.loc[cr["sweep"] == sel, "current"].to_numpy()
        # NaN (not None) when missing, so callers can format without checks; JSON writes null
        return {"mean": float(v.mean()) if v.size else math.nan,
                "std": float(v.std(ddof=1)) if v.size > 1 else math.nan, "n": int(v.size)}

    return {"midpoint": float(midpoint), "ic_plus": stats("up"), "ic_minus": stats("down")}, cr


def analyze(a: "RunAnalysis") -> dict[str, Any]:
    """The loop kind's results: ``loop`` (I_c± mean, std, n; midpoint) and ``crossings``."""
    loop, crossings = switching_currents(a.data, (a.window["r_min"] + a.window["r_max"]) / 2)
    return {"loop": loop, "crossings": crossings}
