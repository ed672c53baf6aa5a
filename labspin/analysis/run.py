"""Analysing whole runs: a run file, a path or a DataFrame in, a ``RunAnalysis`` out.

The generic part (states, CTC, distinguishable states, window) is here; what a protocol kind adds
(I_c of a loop, LTP/LTD fits, retention drift, ...) is the ``analysis`` of its registry entry
(``labspin.protocols.registry``), and whether its ``step`` index names states is the entry's
``states_from_step``. A run of a kind not registered here is analysed generically.
"""
from __future__ import annotations

import math
import os
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from labspin.analysis.result import RunAnalysis
from labspin.analysis.states import DEFAULT_K, cluster_1d, ctc, distinguishable, onoff_window, state_stats
from labspin.errors import FieldError, UserError
from labspin.levels import CTC_DEFINITIONS
from labspin.protocols import registry
from labspin.schema import COLUMNS  # noqa: F401  (re-exported: labspin.analysis.COLUMNS)


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
        return len(registry.protocol_class(protocol["kind"]).from_parameters(protocol.get("parameters") or {}))
    except Exception:   # unknown kind, old parameters, protocols not importable: just say "?"
        return None


STREAM_POINTS = 5_000_000    # a run file longer than this is analysed streamed (bounded memory)
PLOT_POINTS = 1_000_000      # ... keeping every k-th point, at most this many, for figures and hooks
BLOCK = 1 << 20              # rows per block read


def analyze_run(run: Any, *, ctc_definition: str = "window", k: float = DEFAULT_K,
                states: str | int = "step", kind: str | None = None) -> RunAnalysis:
    """Analyse one run (RunFile, path, or DataFrame with run columns + attrs).

    ``states``: "step" (states from the protocol's step index; staircase/potdep), "auto" (1-D
    clustering of R_H, BIC-chosen count), or an int K (k-means with K states). A run file of more
    than STREAM_POINTS points is read in blocks (`analyze_streamed`): memory bounded whatever its
    length.
    """
    if isinstance(run, (str, os.PathLike)):
        from labspin.store import count_points
        n = count_points(run)
        if n > STREAM_POINTS:
            return analyze_streamed(run, n, ctc_definition=ctc_definition, k=k, states=states,
                                    kind=kind)
    data, meta = _as_frame(run)
    return _analyze(data, meta, ctc_definition=ctc_definition, k=k, states=states, kind=kind,
                    sources=[meta["path"]])


class _StateMoments:
    """Per-state n, mean and M2 of the per-(state, cycle) means, merged block by block (Chan et
    al.'s parallel update: stable at mΩ spreads on Ω offsets). Rows come in run order, cycles
    non-decreasing: the pairs of a block's last cycle wait for the next block."""

    def __init__(self) -> None:
        self.n: dict[int, float] = {}
        self.mean: dict[int, float] = {}
        self.m2: dict[int, float] = {}
        self._held = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))

    def add(self, labels: np.ndarray, cycles: np.ndarray, values: np.ndarray, *, last: bool = False) -> None:
        lab, cyc, val = (np.concatenate([h, x]) for h, x in zip(self._held, (labels, cycles, values)))
        keep = lab >= 0
        lab, cyc, val = lab[keep].astype(np.int64), cyc[keep].astype(np.int64), val[keep]
        if not last and cyc.size:
            hold = cyc == cyc[-1]
            self._held = (lab[hold], cyc[hold], val[hold])
            lab, cyc, val = lab[~hold], cyc[~hold], val[~hold]
        else:
            self._held = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        if not lab.size:
            return
        base = int(cyc.min())
        span = int(cyc.max()) - base + 1
        pair, inv = np.unique(lab * span + (cyc - base), return_inverse=True)
        inv = inv.reshape(-1)
        means = np.bincount(inv, weights=val) / np.bincount(inv)
        ids, sinv = np.unique(pair // span, return_inverse=True)
        sinv = sinv.reshape(-1)
        nb = np.bincount(sinv).astype(float)
        mb = np.bincount(sinv, weights=means) / nb
        dev = means - mb[sinv]
        m2b = np.bincount(sinv, weights=dev * dev)
        for s, n_b, mean_b, m2_b in zip(ids.tolist(), nb, mb, m2b):
            n_a = self.n.get(s, 0.0)
            if not n_a:
                self.n[s], self.mean[s], self.m2[s] = n_b, mean_b, m2_b
                continue
            n = n_a + n_b
            delta = mean_b - self.mean[s]
            self.mean[s] += delta * n_b / n
            self.m2[s] += m2_b + delta * delta * n_a * n_b / n
            self.n[s] = n

    def frame(self) -> pd.DataFrame:
        ids = sorted(self.n)
        n = np.array([self.n[s] for s in ids])
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.where(n > 1, np.sqrt(np.array([self.m2[s] for s in ids]) / np.maximum(n - 1, 1)), np.nan)
        df = pd.DataFrame({"state": np.array(ids, dtype=int), "mean": [self.mean[s] for s in ids],
                           "std": std, "n": n.astype(int)})
        return df.sort_values("mean", kind="stable").reset_index(drop=True)


def analyze_streamed(path: str | os.PathLike, n_points: int | None = None, *,
                     ctc_definition: str = "window", k: float = DEFAULT_K, states: str | int = "step",
                     kind: str | None = None) -> RunAnalysis:
    """`analyze_run` of a run file in bounded memory: the state statistics (states from steps)
    are accumulated over blocks of rows; ``data`` keeps every k-th point (at most PLOT_POINTS;
    ``stride`` says k, prime to the steps of a cycle) for the figures; a kind's analysis runs on
    them only where it needs no more than the states (``uses_points = False``)."""
    from labspin.store import count_points, iter_data, read_run

    path = str(path)
    n = count_points(path) if n_points is None else int(n_points)
    if states != "step":
        raise FieldError("states", f"{path}: {n} points: clustering R_H needs every point in memory; "
                                   "analyse this run with the states of its steps ('step')")
    rf = read_run(path, data=False)
    _, meta = _as_frame(rf)
    kind = kind or (meta.get("protocol") or {}).get("kind") or "unknown"
    entry = registry.get(kind)
    from_step = entry is not None and entry.states_from_step
    moments, seen, last_cycle, period = _StateMoments(), 0, None, 1
    for block in iter_data(path, ("cycle", "step", "hall_resistance"), block=BLOCK):
        r = block["hall_resistance"].to_numpy(float)
        bad = ~np.isfinite(r)
        if bad.any():
            raise UserError(f"{path}: hall_resistance has non-finite values (first at row "
                            f"{seen + int(np.flatnonzero(bad)[0])})")
        cyc = block["cycle"].to_numpy()
        if cyc.size and ((last_cycle is not None and cyc[0] < last_cycle) or np.any(np.diff(cyc) < 0)):
            raise UserError(f"{path}: cycles out of order at row {seen}: a run this long is "
                            "analysed streamed, which needs the run's order")
        step = block["step"].to_numpy()
        if step.size:
            period = max(period, int(step.max()) + 1)     # steps a cycle (the largest seen)
        if from_step:
            moments.add(step, cyc, r)
        seen += len(block)
        last_cycle = cyc[-1] if cyc.size else last_cycle
    if from_step:
        moments.add(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), last=True)
    if seen == 0:
        raise UserError(f"{path}: run is empty (no data points)")
    stride = math.ceil(seen / PLOT_POINTS)
    while math.gcd(stride, period) != 1:          # no aliasing with the steps of a cycle
        stride += 1
    data = pd.concat(list(iter_data(path, block=BLOCK, step=stride)), ignore_index=True)
    labels = data["step"].to_numpy().astype(np.int64) if from_step else np.full(len(data), -1, np.int64)
    st = moments.frame() if from_step else _EMPTY_STATES.copy()
    return _analyze(data, meta, ctc_definition=ctc_definition, k=k, states=states, kind=kind,
                    sources=[path], presets=(st, labels, "step" if from_step else "none"),
                    n_points=seen, stride=stride)


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


_EMPTY_STATES = pd.DataFrame({"state": pd.Series(dtype=int), "mean": pd.Series(dtype=float),
                              "std": pd.Series(dtype=float), "n": pd.Series(dtype=int)})


def _analyze(data: pd.DataFrame, meta: dict, *, ctc_definition: str, k: float, states: str | int,
             kind: str | None, sources: list[str], checked: bool = False,
             presets: tuple | None = None, n_points: int | None = None, stride: int = 1) -> RunAnalysis:
    """``presets``: (states, labels, source) computed elsewhere (streamed); ``data`` is then
    every ``stride``-th point and ``n_points`` the run's length. A kind's analysis that needs
    every point (all but those marked ``uses_points = False``) is not run on such data."""
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
    entry = registry.get(kind)          # None: a kind not installed here, analysed generically
    status = meta.get("status", "completed")
    if status == "running":
        status = "interrupted" if meta.get("interrupted") else "running"

    r = data["hall_resistance"].to_numpy(float)
    cyc = data["cycle"].to_numpy()
    if presets is not None:
        st, labels, source = presets
    elif states == "step":
        if entry is not None and entry.states_from_step:
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

    if len(st) >= 2:
        c, per, note = ctc(st, ctc_definition)
        st = st.assign(ctc=per)
        win = onoff_window(float(st["mean"].min()), float(st["mean"].max()))
        kept = distinguishable(st, k)
    else:
        c, note, kept = None, "no states: CTC not defined for this run kind", []
        st = st.assign(ctc=np.full(len(st), np.nan))
        lo, hi = np.percentile(r, [0.5, 99.5])
        win = onoff_window(float(lo), float(hi))
        win["method"] = "0.5/99.5 percentiles of R_H" + (" (of the points kept)" if presets else "")

    a = RunAnalysis(
        sources=sources, device=dict(meta.get("sample") or {}), kind=kind,
        protocol_name=str(protocol.get("name", "")), status=status, error=meta.get("error"),
        n_points=int(len(data) if n_points is None else n_points), total_points=_total_points(meta),
        data=data, states=st,
        state_source=source, ctc_definition=ctc_definition,
        ctc=(None if c is None or not math.isfinite(c) else float(c)), ctc_note=note, k=float(k),
        distinguishable=(len(kept) if len(st) >= 2 else None), distinguishable_states=kept,
        window=win, quantity=str(meta.get("quantity") or "hall_resistance"),
        unit=str(meta.get("unit") or "ohm"), parameters=dict(protocol.get("parameters") or {}),
        stride=stride,
    )
    hook = entry.analysis_function() if entry is not None else None
    if hook is not None and (stride == 1 or not getattr(hook, "uses_points", True)):
        a.results.update(hook(a) or {})
    return a


def analyze_runs(runs: Iterable[Any], **kw: Any) -> list[RunAnalysis]:
    """Each run on its own (the device-to-device table is built from these)."""
    return [analyze_run(r, **kw) for r in runs]
