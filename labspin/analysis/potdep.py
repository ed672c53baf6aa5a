"""Potentiation/depression runs: LTP and LTD branches, their exponential fits, nonlinearity
and asymmetry."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from labspin.analysis.result import RunAnalysis


def fit_branch(p: np.ndarray, y: np.ndarray) -> dict:
    """Fit y(p) = y0 + D·(1 − e^(−p/A)) (the standard LTP/LTD model G = B(1−e^(−p/A)) + G_min).

    Returns A (pulses), A/N, D, y0, and the nonlinearity = max |fit − linear chord| / |D_span| of the
    fitted curve over the branch (0 = linear).
    """
    from scipy.optimize import curve_fit

    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    N = float(p.max())
    out: dict[str, Any] = {"pulses": int(p.size)}
    if p.size < 3 or not np.ptp(y) > 0:
        out.update(A=None, A_over_N=None, B=None, y0=None, nonlinearity=None, direction=None)
        return out

    def model(pp, y0, D, A):
        return y0 + D * -np.expm1(-pp / A)

    A0 = N / 3
    D0 = (y[-1] - y[0]) / -math.expm1(-N / A0)
    try:
        (y0, D, A), _ = curve_fit(model, p, y, p0=(y[0], D0, A0),
                                  bounds=([-np.inf, -np.inf, 1e-3 * N], [np.inf, np.inf, 1e3 * N]),
                                  maxfev=5000)
    except (RuntimeError, ValueError):
        out.update(A=None, A_over_N=None, B=None, y0=None, nonlinearity=None,
                   direction="up" if y[-1] > y[0] else "down")
        return out
    grid = np.linspace(p.min(), N, 200)
    f = model(grid, y0, D, A)
    span = f[-1] - f[0]
    chord = f[0] + (grid - grid[0]) / (grid[-1] - grid[0]) * span
    nl = float(np.max(np.abs(f - chord)) / abs(span)) if span != 0 else None
    out.update(A=float(A), A_over_N=float(A / N), B=float(D), y0=float(y0), nonlinearity=nl,
               direction="up" if D > 0 else "down")
    return out


def potdep_analysis(data: pd.DataFrame, states: pd.DataFrame) -> dict | None:
    """LTP/LTD: branch = sign of the pulse current; pulse number = rank of `step` in its branch.

    The branch whose fitted amplitude is positive (R_H rising) is LTP, the falling one LTD;
    asymmetry = |NL_LTP − NL_LTD|.
    """
    step = data["step"].to_numpy()
    cur = data["pulse_current"].to_numpy()
    if step.size == 0:
        return None
    # the sign of a step's pulses (median over cycles) defines its branch
    ids, inv = np.unique(step, return_inverse=True)
    sgn = np.sign(np.bincount(inv.reshape(-1), weights=np.sign(cur), minlength=ids.size))
    means = dict(zip(states["state"].to_numpy(), states["mean"].to_numpy()))
    branches = {}
    for s in (1.0, -1.0):
        bsteps = ids[sgn == s]
        bsteps = bsteps[np.isin(bsteps, list(means))]
        if bsteps.size < 3:
            continue
        y = np.array([means[b] for b in bsteps])
        fit = fit_branch(np.arange(1, bsteps.size + 1), y)
        fit["pulse_sign"] = "+" if s > 0 else "-"
        fit["steps"] = [int(bsteps[0]), int(bsteps[-1])]
        branches[fit["direction"] or ("+" if s > 0 else "-")] = fit
    ltp = branches.get("up")
    ltd = branches.get("down")
    asym = None
    if ltp and ltd and ltp["nonlinearity"] is not None and ltd["nonlinearity"] is not None:
        asym = abs(ltp["nonlinearity"] - ltd["nonlinearity"])
    return {"model": "y = y0 + B(1 - exp(-p/A)), p = pulse number in branch",
            "ltp": ltp, "ltd": ltd, "asymmetry": asym}


def analyze(a: "RunAnalysis") -> dict[str, Any]:
    """The potdep kind's result: ``potdep`` (branch fits), when the states are the pulse numbers."""
    return {"potdep": potdep_analysis(a.data, a.states)} if a.state_source == "step" else {}
