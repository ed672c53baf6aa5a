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
    entry = registry.get(kind)          # None: a kind not installed here, analysed generically
    status = meta.get("status", "completed")
    if status == "running":
        status = "interrupted" if meta.get("interrupted") else "running"

    r = data["hall_resistance"].to_numpy(float)
    cyc = data["cycle"].to_numpy()
    if states == "step":
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
        win["method"] = "0.5/99.5 percentiles of R_H"

    a = RunAnalysis(
        sources=sources, device=dict(meta.get("sample") or {}), kind=kind,
        protocol_name=str(protocol.get("name", "")), status=status, error=meta.get("error"),
        n_points=int(len(data)), total_points=_total_points(meta), data=data, states=st,
        state_source=source, ctc_definition=ctc_definition,
        ctc=(None if c is None or not math.isfinite(c) else float(c)), ctc_note=note, k=float(k),
        distinguishable=(len(kept) if len(st) >= 2 else None), distinguishable_states=kept,
        window=win, quantity=str(meta.get("quantity") or "hall_resistance"),
        unit=str(meta.get("unit") or "ohm"), parameters=dict(protocol.get("parameters") or {}),
    )
    hook = entry.analysis_function() if entry is not None else None
    if hook is not None:
        a.results.update(hook(a) or {})
    return a


def analyze_runs(runs: Iterable[Any], **kw: Any) -> list[RunAnalysis]:
    """Each run on its own (the device-to-device table is built from these)."""
    return [analyze_run(r, **kw) for r in runs]
