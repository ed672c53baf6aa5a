"""Offline analysis of run files: device states, CTC variation, windows, LTP/LTD, switching currents.

Everything works on a ``RunFile`` (``labspin.store.read_run``) or on a plain DataFrame with the
run-file columns, so the numbers do not depend on where the data came from. All per-point work is
vectorised (bincount / sorted prefix sums): a million points analyse in well under a second.

CTC definitions are named (DESIGN §5) and recorded in every output:

* ``window`` — σ of R_H at a state across cycles ÷ (R_max − R_min) of the whole window (state
  means), averaged over states;
* ``state`` — σ ÷ |mean − R_min| per state; the lowest state (the one defining R_min) has a zero
  denominator and is skipped: its per-state value is NaN and the average is over the others.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from labspin.errors import FieldError, UserError
from labspin.levels import CTC_DEFINITIONS, LevelTable
from labspin.schema import COLUMNS

STATE_KINDS = ("staircase", "potdep", "levels")   # "levels": imported reads per state       # kinds whose `step` index names a state
DEFAULT_K = 5.0
MAX_AUTO_STATES = 32
AUTO_MIN_SEPARATION = 3.0     # see cluster_1d


# --------------------------------------------------------------------------- result type

@dataclass
class RunAnalysis:
    """The analysis of one run (or of several runs of one device, pooled state-wise)."""

    sources: list[str]
    device: dict
    kind: str
    protocol_name: str
    status: str                       # completed | aborted | failed | running | interrupted
    error: str | None
    n_points: int
    total_points: int | None
    data: pd.DataFrame                # the run columns + "state" (-1 where a point has no state)
    states: pd.DataFrame              # state, mean, std, n, ctc — sorted by mean; empty if no states
    state_source: str                 # "step" | "auto" | "kmeans:K" | "none"
    ctc_definition: str
    ctc: float | None
    ctc_note: str
    k: float
    distinguishable: int | None
    distinguishable_states: list[int]
    window: dict                      # r_min, r_max, window, on_off_ratio (None unless meaningful)
    potdep: dict | None = None        # per-branch fits, nonlinearity, asymmetry
    loop: dict | None = None          # ic_plus/ic_minus mean, std, n; midpoint
    crossings: pd.DataFrame | None = None
    quantity: str = "hall_resistance"   # what the signal holds (an imported run may be a conductance)
    unit: str = "ohm"
    ctc_without_reset: float | None = None   # staircase: the average over the programmed states only
    reset_state: int | None = None           # staircase: step 0, the full reset (σ ≈ read noise)
    retention: dict | None = None            # retention runs: drift per state, see retention_drift

    @property
    def name(self) -> str:
        return Path(self.sources[0]).stem if len(self.sources) == 1 else f"{self.device_id}-pooled"

    @property
    def device_id(self) -> str:
        return str(self.device.get("id") or Path(self.sources[0]).stem)

    @property
    def progress(self) -> str:
        """"analysed up to point N of M, status S" — explicit for runs that did not complete."""
        total = "?" if self.total_points is None else str(self.total_points)
        return f"analysed up to point {self.n_points} of {total}, status {self.status}"

    def level_table(self) -> LevelTable:
        """The measured states as a level table (raises UserError if the run has no states)."""
        if self.states.empty:
            raise FieldError("states", f"{self.sources[0]}: no staircase/state data in a {self.kind!r} "
                                       "run ('auto' clusters R_H)")
        st = self.states
        return LevelTable.from_stats(
            st["mean"].to_numpy(), st["std"].to_numpy(), st["n"].to_numpy(),
            quantity=self.quantity, unit=self.unit,
            device={k: self.device[k] for k in ("id", "type") if k in self.device},
            sources=list(self.sources), ctc_definition=self.ctc_definition,
            extra={"ctc": self.ctc, "ctc_without_reset": self.ctc_without_reset,
                   "reset_state": self.reset_state, "k": self.k,
                   "distinguishable_states": self.distinguishable,
                   "state_source": self.state_source, "status": self.status},
        )

    def summary(self) -> dict:
        """JSON-able summary (one entry of summary.json)."""
        return {
            "sources": list(self.sources),
            "device": dict(self.device),
            "kind": self.kind,
            "protocol": self.protocol_name,
            "status": self.status,
            "error": self.error,
            "points_analysed": self.n_points,
            "points_expected": self.total_points,
            "progress": self.progress,
            "state_source": self.state_source,
            "n_states": int(len(self.states)),
            "ctc_definition": self.ctc_definition,
            "ctc": self.ctc,
            "ctc_without_reset": self.ctc_without_reset,
            "reset_state": self.reset_state,
            "ctc_note": self.ctc_note,
            "k": self.k,
            "distinguishable_states": self.distinguishable,
            "distinguishable_state_ids": list(self.distinguishable_states),
            "window": dict(self.window),
            "potdep": self.potdep,
            "loop": self.loop,
            "retention": self.retention,
            "states": self.states.to_dict(orient="records"),
            "quantity": self.quantity,
            "unit": self.unit,
        }


# --------------------------------------------------------------------------- building blocks

def state_stats(values: np.ndarray, labels: np.ndarray, cycles: np.ndarray | None = None) -> pd.DataFrame:
    """Per-state mean/std/n, sorted by mean.

    With ``cycles``, reads at one (state, cycle) are averaged first, so σ is across cycles and n
    counts cycles; std is the sample std (ddof=1), NaN for a state seen once.
    """
    values = np.asarray(values, dtype=float)
    labels = np.asarray(labels)
    keep = labels >= 0
    values, labels = values[keep], labels[keep]
    if values.size == 0:
        return pd.DataFrame({"state": pd.Series(dtype=int), "mean": pd.Series(dtype=float),
                             "std": pd.Series(dtype=float), "n": pd.Series(dtype=int)})
    if cycles is not None:
        cycles = np.asarray(cycles)[keep]
        # one value per (state, cycle): average repeated reads before taking the spread
        labels = labels.astype(np.int64)
        cycles = cycles.astype(np.int64) - int(cycles.min())
        span = int(cycles.max()) + 1
        pair, pinv = np.unique(labels * span + cycles, return_inverse=True)
        pinv = pinv.reshape(-1)
        cnt = np.bincount(pinv)
        values = np.bincount(pinv, weights=values) / cnt
        labels = pair // span
    ids, inv = np.unique(labels, return_inverse=True)
    inv = inv.reshape(-1)
    n = np.bincount(inv)
    s1 = np.bincount(inv, weights=values)
    mean = s1 / n
    dev = values - mean[inv]                      # two-pass: no cancellation at mΩ on Ω offsets
    ss = np.bincount(inv, weights=dev * dev)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(n > 1, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)
    df = pd.DataFrame({"state": ids.astype(int), "mean": mean, "std": std, "n": n.astype(int)})
    return df.sort_values("mean", kind="stable").reset_index(drop=True)


def ctc(states: pd.DataFrame, definition: str = "window") -> tuple[float, np.ndarray, str]:
    """(average CTC, per-state CTC aligned with ``states`` rows, note). Fractions, not %."""
    if definition not in CTC_DEFINITIONS:
        raise FieldError("ctc_definition", f"unknown definition {definition!r} (use {' or '.join(CTC_DEFINITIONS)})")
    mean = states["mean"].to_numpy(float)
    std = states["std"].to_numpy(float)
    if mean.size < 2:
        return math.nan, np.full(mean.size, np.nan), "fewer than 2 states: CTC undefined"
    r_min, r_max = float(mean.min()), float(mean.max())
    if definition == "window":
        per = std / (r_max - r_min) if r_max > r_min else np.full(mean.size, np.nan)
        note = "sigma across cycles / (R_max - R_min of state means), averaged over states"
    else:
        denom = np.abs(mean - r_min)
        per = np.full(mean.size, np.nan)
        ok = denom > 0
        per[ok] = std[ok] / denom[ok]
        skipped = states["state"].to_numpy()[~ok]
        note = ("sigma / |mean - R_min| per state, averaged over states; skipped the R_min state(s) "
                f"{[int(s) for s in skipped]} (zero denominator)")
    return (float(np.nanmean(per)) if np.isfinite(per).any() else math.nan), per, note


def ctc_without(states: pd.DataFrame, per: np.ndarray, state: int) -> float | None:
    """The CTC average without one state — the staircase's reset state, driven fully into
    saturation each cycle, whose σ is little more than the read noise and flatters the average."""
    keep = (states["state"].to_numpy() != state) & np.isfinite(per)
    return float(np.mean(per[keep])) if keep.sum() >= 1 and len(states) >= 3 else None


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


def distinguishable(states: pd.DataFrame, k: float = DEFAULT_K) -> list[int]:
    """State ids kept greedily from the lowest: each ≥ k·(σ_a + σ_b)/2 above the last kept one."""
    if states.empty:
        return []
    mean = states["mean"].to_numpy(float)
    std = np.nan_to_num(states["std"].to_numpy(float), nan=0.0)
    ids = states["state"].to_numpy()
    order = np.argsort(mean, kind="stable")
    kept = [order[0]]
    for j in order[1:]:                      # K ≤ a few hundred states: a loop over states is fine
        a = kept[-1]
        if mean[j] - mean[a] >= k * (std[a] + std[j]) / 2:
            kept.append(j)
    return [int(ids[i]) for i in kept]


def onoff_window(r_min: float, r_max: float) -> dict:
    """R_max − R_min, and R_max/R_min only when both are positive (a ratio of a signed R_H is not)."""
    ratio = r_max / r_min if (r_min > 0 and r_max > 0) else None
    return {"r_min": r_min, "r_max": r_max, "window": r_max - r_min, "on_off_ratio": ratio}


def cluster_1d(values: np.ndarray, n_states: int | None = None,
               max_states: int = MAX_AUTO_STATES, bins: int = 1024,
               min_separation: float = AUTO_MIN_SEPARATION) -> np.ndarray:
    """Data-driven 1-D clustering of R_H: labels 0..K−1 ordered by value.

    Values are binned (``bins`` over their range) and split by *optimal* 1-D k-means on the bins
    (dynamic programming, as Ckmeans.1d.dp; no local optima). With ``n_states=None`` K is the
    BIC minimum of a hard-assigned Gaussian mixture, then reduced until adjacent clusters are
    ≥ ``min_separation``·(σ_a + σ_b)/2 apart — a Gaussian cut in two is only ~2.7 σ' apart, so
    this undoes splits that BIC makes on non-Gaussian, heavily sampled states.
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    if n_states is not None and (n_states < 1 or n_states > n):
        raise FieldError("states", f"{n_states} clusters for {n} points")
    lo, hi = float(x.min()) if n else 0.0, float(x.max()) if n else 0.0
    if n < 2 or hi == lo:
        return np.zeros(n, dtype=np.int64)
    width = (hi - lo) / bins
    idx = np.minimum(((x - lo) / width).astype(np.int64), bins - 1)
    w_all = np.bincount(idx, minlength=bins).astype(float)
    s_all = np.bincount(idx, weights=x - lo, minlength=bins)
    q_all = np.bincount(idx, weights=(x - lo) ** 2, minlength=bins)
    nz = np.flatnonzero(w_all)                       # only occupied bins matter
    B = nz.size
    W = np.concatenate([[0.0], np.cumsum(w_all[nz])])
    S = np.concatenate([[0.0], np.cumsum(s_all[nz])])
    Q = np.concatenate([[0.0], np.cumsum(q_all[nz])])
    with np.errstate(divide="ignore", invalid="ignore"):
        # cost[i, j] = SSE of bins i..j-1 (i < j)
        dw = W[None, :] - W[:, None]
        ds = S[None, :] - S[:, None]
        cost = (Q[None, :] - Q[:, None]) - np.where(dw > 0, ds * ds / dw, 0.0)
    cost[np.tril_indices(B + 1)] = np.inf
    kmax = min(B, n_states if n_states is not None else max_states)
    # D[k][j]: best SSE of the first j bins in k clusters; arg[k][j]: start of the last cluster
    D = np.full((kmax + 1, B + 1), np.inf)
    arg = np.zeros((kmax + 1, B + 1), dtype=np.int64)
    D[0, 0] = 0.0
    for k in range(1, kmax + 1):
        m = D[k - 1][:, None] + cost
        arg[k] = np.argmin(m, axis=0)
        D[k] = m[arg[k], np.arange(B + 1)]

    def bounds_for(K: int) -> np.ndarray:
        cuts = [B]
        j = B
        for k in range(K, 0, -1):
            j = int(arg[k, j])
            cuts.append(j)
        return np.array(cuts[::-1])                 # bin-index boundaries, 0 .. B

    def stats(bd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cnt = W[bd[1:]] - W[bd[:-1]]
        mu = (S[bd[1:]] - S[bd[:-1]]) / cnt
        var = (Q[bd[1:]] - Q[bd[:-1]]) / cnt - mu ** 2
        return cnt, mu, np.maximum(var, width ** 2 / 12)   # floor: a bin's own spread

    if n_states is not None:
        K = kmax
    else:
        best_k, best_bic = 1, np.inf
        for K in range(1, kmax + 1):
            if not np.isfinite(D[K, B]):
                break
            cnt, _, var = stats(bounds_for(K))
            ll = np.sum(cnt * (np.log(cnt / n) - 0.5 * np.log(2 * np.pi * var) - 0.5))
            bic = -2 * ll + (3 * K - 1) * np.log(n)
            if bic < best_bic:
                best_k, best_bic = K, bic
        K = best_k
        while K > 1:
            _, mu, var = stats(bounds_for(K))
            sd = np.sqrt(var)
            if np.all(np.diff(mu) >= min_separation * (sd[:-1] + sd[1:]) / 2):
                break
            K -= 1
    bd = bounds_for(K)
    # value edges between clusters: upper edge of the last occupied bin of each cluster
    edges = lo + (nz[bd[1:-1] - 1] + 1) * width
    return np.searchsorted(edges, x, side="right").astype(np.int64) if edges.size else np.zeros(n, np.int64)


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


# --------------------------------------------------------------------------- whole runs

def _as_frame(run: Any) -> tuple[pd.DataFrame, dict]:
    """(data, metadata) from a RunFile, a path, or a DataFrame (metadata from df.attrs)."""
    if isinstance(run, (str, os.PathLike)):
        from labspin.store import read_run   # lazy: the store owns the file format
        run = read_run(run)
    if isinstance(run, pd.DataFrame):
        meta = dict(run.attrs)
        data = run
        meta.setdefault("path", "<dataframe>")
    else:
        data = run.data
        meta = {
            "path": str(getattr(run, "path", "<run>")),
            "status": getattr(run, "status", "completed"),
            "interrupted": bool(getattr(run, "interrupted", False)),
            "error": getattr(run, "error", None),
            "protocol": dict(getattr(run, "protocol", {}) or {}),
            "sample": dict(getattr(run, "sample", {}) or {}),
            "total_points": getattr(run, "total_points", None),
            "quantity": getattr(run, "quantity", "hall_resistance"),
            "unit": getattr(run, "unit", "ohm"),
        }
    return data, meta


def _total_points(meta: dict) -> int | None:
    """Expected points: from the run if it says, else cycles × steps from the protocol parameters."""
    tp = meta.get("total_points")
    if tp:
        return int(tp)
    protocol = meta.get("protocol") or {}
    try:
        from labspin.protocols import PROTOCOLS
        return len(PROTOCOLS[protocol["kind"]].from_parameters(protocol.get("parameters") or {}))
    except Exception:   # unknown kind, old parameters, protocols not importable: just say "?"
        return None


def analyze_run(run: Any, *, ctc_definition: str = "window", k: float = DEFAULT_K,
                states: str | int = "step", kind: str | None = None) -> RunAnalysis:
    """Analyse one run (RunFile, path, or DataFrame with run columns + attrs).

    ``states``: "step" (states from the protocol's step index; staircase/potdep), "auto" (1-D
    clustering of R_H, BIC-chosen count), or an int K (k-means with K states).
    """
    data, meta = _as_frame(run)
    return _analyze(data, meta, ctc_definition=ctc_definition, k=k, states=states, kind=kind,
                    sources=[meta["path"]])


def pool_runs(runs: Sequence[Any], *, ctc_definition: str = "window", k: float = DEFAULT_K,
              states: str | int = "step", allow_devices: bool = False) -> RunAnalysis:
    """State-wise pooling of several runs of one device into one analysis (cycles renumbered).

    Runs of different devices are refused unless ``allow_devices`` (a table mixing devices is
    rarely what a user means).
    """
    frames, metas = [], []
    for run in runs:
        d, m = _as_frame(run)
        _check_data(d, m["path"])
        frames.append(d)
        metas.append(m)
    if not frames:
        raise UserError("no run files given")
    ids = {str((m.get("sample") or {}).get("id") or "") for m in metas}
    if len(ids) > 1 and not allow_devices:
        raise FieldError("allow_devices", f"{metas[-1]['path']}: runs of different devices "
                                          f"({', '.join(sorted(ids))}); set it to pool them anyway")
    signals = {(m.get("quantity") or "hall_resistance", m.get("unit") or "ohm") for m in metas}
    if len(signals) > 1:
        raise UserError(f"{metas[-1]['path']}: cannot pool runs of different quantities "
                        f"({', '.join(f'{q} [{u}]' for q, u in sorted(signals))})")
    kinds = {(m.get("protocol") or {}).get("kind") for m in metas}
    if len(kinds) > 1:
        raise UserError(f"{metas[-1]['path']}: cannot pool runs of different kinds ({', '.join(map(str, kinds))})")
    offset = 0
    parts = []
    for d in frames:
        d = d.copy()
        c = d["cycle"].to_numpy()
        d["cycle"] = c - c.min() + offset
        offset = int(d["cycle"].max()) + 1
        parts.append(d)
    data = pd.concat(parts, ignore_index=True)
    statuses = [("interrupted" if m.get("interrupted") else m.get("status", "completed")) for m in metas]
    meta = dict(metas[0])
    meta["status"] = "completed" if all(s == "completed" for s in statuses) else ",".join(statuses)
    meta["interrupted"] = False
    meta["total_points"] = None
    if all(_total_points(m) for m in metas):
        meta["total_points"] = sum(_total_points(m) for m in metas)
    return _analyze(data, meta, ctc_definition=ctc_definition, k=k, states=states, kind=None,
                    sources=[m["path"] for m in metas], checked=True)


def _check_data(data: pd.DataFrame, path: str) -> None:
    missing = [c for c in ("cycle", "step", "pulse_current", "hall_resistance") if c not in data.columns]
    if missing:
        raise UserError(f"{path}: not a labspin run (missing data columns {', '.join(missing)})")
    if len(data) == 0:
        raise UserError(f"{path}: run is empty (no data points)")
    r = data["hall_resistance"].to_numpy(float)
    bad = ~np.isfinite(r)
    if bad.any():
        where = int(np.flatnonzero(bad)[0])
        raise UserError(f"{path}: hall_resistance has {int(bad.sum())} non-finite values "
                        f"(first at row {where})")


def _analyze(data: pd.DataFrame, meta: dict, *, ctc_definition: str, k: float, states: str | int,
             kind: str | None, sources: list[str], checked: bool = False) -> RunAnalysis:
    path = sources[0]
    if ctc_definition not in CTC_DEFINITIONS:
        raise FieldError("ctc_definition", f"unknown definition {ctc_definition!r} (use {' or '.join(CTC_DEFINITIONS)})")
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k > 0):
        raise FieldError("k", f"separation must be a positive number, got {k!r}")
    if not checked:
        _check_data(data, path)
    if "pulse_index" in data.columns and not data["pulse_index"].is_monotonic_increasing:
        data = data.sort_values("pulse_index", kind="stable")
    data = data.reset_index(drop=True)
    protocol = meta.get("protocol") or {}
    kind = kind or protocol.get("kind") or "unknown"
    status = meta.get("status", "completed")
    if status == "running":
        status = "interrupted" if meta.get("interrupted") else "running"

    r = data["hall_resistance"].to_numpy(float)
    cyc = data["cycle"].to_numpy()
    if states == "step":
        if kind in STATE_KINDS:
            labels = data["step"].to_numpy().astype(np.int64)
            source = "step"
        else:
            labels = np.full(r.size, -1, dtype=np.int64)
            source = "none"
        st = state_stats(r, labels, cyc)
    elif states == "auto" or isinstance(states, (int, np.integer)):
        K = None if states == "auto" else int(states)
        labels = cluster_1d(r, K)
        source = "auto" if K is None else f"kmeans:{K}"
        st = state_stats(r, labels, None)
    else:
        raise FieldError("states", f"expected 'step', 'auto' or a number of states, got {states!r}")
    if not st.empty and (st["n"] < 2).any():
        few = st.loc[st["n"] < 2, "state"].tolist()
        raise UserError(f"{path}: state(s) {few[:5]} seen in fewer than 2 cycles: σ across cycles "
                        "is undefined (run more cycles)")
    data = data.assign(state=labels)

    c_nr, reset = None, None
    if len(st) >= 2:
        c, per, note = ctc(st, ctc_definition)
        if kind == "staircase" and source == "step" and 0 in set(st["state"]):
            reset = 0
            c_nr = ctc_without(st, per, reset)
        st = st.assign(ctc=per)
        win = onoff_window(float(st["mean"].min()), float(st["mean"].max()))
        kept = distinguishable(st, k)
    else:
        c, note, kept = None, "no states: CTC not defined for this run kind", []
        st = st.assign(ctc=np.full(len(st), np.nan))
        lo, hi = np.percentile(r, [0.5, 99.5])
        win = onoff_window(float(lo), float(hi))
        win["method"] = "0.5/99.5 percentiles of R_H"

    potdep = potdep_analysis(data, st) if (kind == "potdep" and source == "step") else None
    loop, crossings = None, None
    if kind == "loop":
        loop, crossings = switching_currents(data, (win["r_min"] + win["r_max"]) / 2)

    return RunAnalysis(
        sources=sources, device=dict(meta.get("sample") or {}), kind=kind,
        protocol_name=str(protocol.get("name", "")), status=status, error=meta.get("error"),
        n_points=int(len(data)), total_points=_total_points(meta), data=data, states=st,
        state_source=source, ctc_definition=ctc_definition,
        ctc=(None if c is None or not math.isfinite(c) else float(c)), ctc_note=note, k=float(k),
        distinguishable=(len(kept) if len(st) >= 2 else None), distinguishable_states=kept,
        window=win, potdep=potdep, loop=loop, crossings=crossings,
        quantity=str(meta.get("quantity") or "hall_resistance"), unit=str(meta.get("unit") or "ohm"),
        ctc_without_reset=c_nr, reset_state=reset,
        retention=retention_drift(data) if kind == "retention" else None,
    )


def analyze_runs(runs: Iterable[Any], **kw: Any) -> list[RunAnalysis]:
    """Each run on its own (the device-to-device table is built from these)."""
    return [analyze_run(r, **kw) for r in runs]


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


# --------------------------------------------------------------------------- across runs

def currents_by_width(analyses: Sequence[RunAnalysis]) -> pd.DataFrame:
    """I_c+ / I_c− per (run, pulse width) of loop runs: mean, std and cycles; the half width of
    the loop (I_c+ − I_c−)/2 and its shift (I_c+ + I_c−)/2. Cycles of one run may differ in width
    (an import of one file per width); each cycle's width is its median pulse width."""
    rows = []
    for a in analyses:
        if a.kind != "loop" or a.crossings is None or a.crossings.empty:
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
