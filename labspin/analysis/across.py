"""What several analysed runs say together: the device-to-device spread, and I_c± against pulse
width with the thermal-activation fit (runs that found switching currents: loops)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from labspin.analysis.result import RunAnalysis


def device_spread(analyses: Sequence[RunAnalysis]) -> pd.DataFrame:
    """Per device id: mean, std, CV of window, CTC, states and I_c over its run files.

    A final row ``all devices`` gives the device-to-device spread of the per-device means.
    """
    rows = []
    for a in analyses:
        lp = a.loop or {}
        rows.append({
            "device": a.device_id, "type": a.device.get("type"), "run": a.name,
            "window": a.window.get("window"), "ctc": a.ctc, "states": a.distinguishable,
            "ic_plus": (lp.get("ic_plus") or {}).get("mean"),
            "ic_minus": (lp.get("ic_minus") or {}).get("mean"),
        })
    runs = pd.DataFrame(rows)
    metrics = ["window", "ctc", "states", "ic_plus", "ic_minus"]
    runs[metrics] = runs[metrics].apply(pd.to_numeric, errors="coerce")

    def agg(g: pd.DataFrame) -> dict:
        out: dict[str, Any] = {"type": g["type"].dropna().iloc[0] if g["type"].notna().any() else None,
                               "runs": int(len(g))}
        for m in metrics:
            v = g[m].dropna().to_numpy(float)
            mu = float(v.mean()) if v.size else math.nan
            sd = float(v.std(ddof=1)) if v.size > 1 else math.nan
            out[f"{m}_mean"] = mu
            out[f"{m}_std"] = sd
            out[f"{m}_cv"] = abs(sd / mu) if v.size > 1 and mu else math.nan
        return out

    per = {dev: agg(g) for dev, g in runs.groupby("device", sort=False)}
    table = pd.DataFrame.from_dict(per, orient="index")
    if len(per) > 1:
        means = table[[f"{m}_mean" for m in metrics]].rename(columns=lambda c: c[:-5])
        means = means.assign(type=None, device="all")
        row = agg(means.assign(type=None))
        row["type"] = "all devices"
        row["runs"] = int(table["runs"].sum())
        table.loc["all devices"] = row
    table.index.name = "device"
    return table


def currents_by_width(analyses: Sequence[RunAnalysis]) -> pd.DataFrame:
    """I_c+ / I_c− per (run, pulse width) of loop runs: mean, std and cycles; the half width of
    the loop (I_c+ − I_c−)/2 and its shift (I_c+ + I_c−)/2. Cycles of one run may differ in width
    (an import of one file per width); each cycle's width is its median pulse width."""
    rows = []
    for a in analyses:
        if a.crossings is None or a.crossings.empty:       # runs without switching currents
            continue
        width = a.data.groupby("cycle")["pulse_width"].median()
        cr = a.crossings.assign(width=width.reindex(a.crossings["cycle"]).to_numpy())
        cr = cr[np.isfinite(cr["width"]) & (cr["width"] > 0)]
        for w, g in cr.groupby(cr["width"].round(15)):
            up = g.loc[g["sweep"] == "up", "current"].to_numpy()
            dn = g.loc[g["sweep"] == "down", "current"].to_numpy()
            row = {"run": a.name, "device": a.device_id, "pulse_width": float(w),
                   "ic_plus": float(up.mean()) if up.size else math.nan,
                   "ic_plus_std": float(up.std(ddof=1)) if up.size > 1 else math.nan,
                   "ic_minus": float(dn.mean()) if dn.size else math.nan,
                   "ic_minus_std": float(dn.std(ddof=1)) if dn.size > 1 else math.nan,
                   "cycles": int(max(up.size, dn.size))}
            row["ic_half"] = (row["ic_plus"] - row["ic_minus"]) / 2
            row["shift"] = (row["ic_plus"] + row["ic_minus"]) / 2
            rows.append(row)
    cols = ["run", "device", "pulse_width", "cycles", "ic_plus", "ic_plus_std", "ic_minus",
            "ic_minus_std", "ic_half", "shift"]
    return pd.DataFrame(rows, columns=cols).sort_values(["device", "pulse_width"], kind="stable",
                                                        ignore_index=True)


def thermal_activation_fit(width: np.ndarray, ic: np.ndarray, tau0: float = 1e-9) -> dict:
    """Fit |I_c|(t_p) = I_c0·(1 − ln(t_p/τ0)/Δ) (linear in ln t_p) with τ0 fixed.

    Returns I_c0 (A), Δ, their standard errors (from the linear least-squares covariance, Δ by
    the delta method; None with only two widths), and the widths used."""
    w = np.asarray(width, dtype=float)
    y = np.abs(np.asarray(ic, dtype=float))
    ok = np.isfinite(w) & np.isfinite(y) & (w > 0)
    w, y = w[ok], y[ok]
    out: dict[str, Any] = {"law": "I_c = I_c0 (1 - ln(t_p/tau0)/Delta)", "tau0": tau0,
                           "widths": w.tolist(), "n": int(w.size)}
    if np.unique(w).size < 2:
        out.update(I_c0=None, delta=None, I_c0_err=None, delta_err=None,
                   note="needs loops at two or more pulse widths")
        return out
    x = np.log(w / tau0)
    X = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    a, b = float(coef[0]), float(coef[1])
    dof = y.size - 2
    i_err = d_err = None
    if dof > 0:
        s2 = float(np.sum((y - X @ coef) ** 2) / dof)
        cov = s2 * np.linalg.inv(X.T @ X)
        i_err = float(math.sqrt(cov[0, 0]))
        # Δ = −a/b: gradient (−1/b, a/b²)
        g = np.array([-1 / b, a / b ** 2]) if b != 0 else np.array([np.nan, np.nan])
        d_err = float(math.sqrt(max(g @ cov @ g, 0.0)))
    delta = -a / b if b < 0 else None
    out.update(I_c0=a, delta=delta, I_c0_err=i_err, delta_err=d_err if delta is not None else None,
               slope=b, note=None if delta is not None else "I_c does not fall with pulse width")
    return out


def across_runs(analyses: Sequence[RunAnalysis], tau0: float = 1e-9) -> dict:
    """What several runs say together: I_c± vs pulse width with the thermal-activation fit per
    device (loops at two or more widths), and a device-to-device table (two or more devices)."""
    table = currents_by_width(analyses)
    fits = {}
    for dev, g in table.groupby("device", sort=False):
        if g["pulse_width"].nunique() >= 2:
            fits[dev] = {branch: thermal_activation_fit(g["pulse_width"], g[col], tau0)
                         for branch, col in (("half", "ic_half"), ("plus", "ic_plus"),
                                             ("minus", "ic_minus"))}
    devices = {a.device_id for a in analyses}
    return {"widths": table, "thermal_activation": fits,
            "devices": device_spread(analyses) if len(devices) > 1 else None}
