"""Generic state analysis: per-state statistics, CTC (named definitions), distinguishable states,
the on/off window, and 1-D clustering of R_H when the protocol does not name the states.

CTC definitions are named (DESIGN §5) and recorded in every output:

* ``window`` — σ of R_H at a state across cycles ÷ (R_max − R_min) of the whole window (state
  means), averaged over states;
* ``state`` — σ ÷ |mean − R_min| per state; the lowest state (the one defining R_min) has a zero
  denominator and is skipped: its per-state value is NaN and the average is over the others.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from labspin.errors import FieldError
from labspin.levels import CTC_DEFINITIONS

DEFAULT_K = 5.0
MAX_AUTO_STATES = 32
AUTO_MIN_SEPARATION = 3.0     # see cluster_1d


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
