"""Analysis of an endurance run: window and CTC vs cycles (log axis), cycles to failure.

An endurance run (protocols/endurance.py) reads both states at each read cycle: step 0 after the
+I pulse ("high"), step 1 after the −I pulse ("low"). The window is R_high − R_low; the device
has failed when the window stayed below `min_window` × the first window for `patience` read
cycles in a row — the same criterion that stops the run (`WindowStop`), here on the stored data.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labspin.errors import UserError
from labspin.protocols.endurance import verdict


def _frame(run: Any) -> tuple[pd.DataFrame, str]:
    if isinstance(run, pd.DataFrame):
        return run, "<data>"
    from labspin.store import read_run
    rf = read_run(run) if not hasattr(run, "data") else run
    if rf.protocol.get("kind") != "endurance":
        raise UserError(f"{rf.path}: not an endurance run (kind {rf.protocol.get('kind')!r})")
    return rf.data, rf.path


def window_table(run: Any) -> pd.DataFrame:
    """Per read cycle: cycle, r_high, r_low, window (ohm) and window_rel (to the first window)."""
    data, source = _frame(run)
    d = data[data["step"].isin((0, 1))]
    piv = d.pivot_table(index="cycle", columns="step", values="hall_resistance", aggfunc="last")
    if 0 not in piv or 1 not in piv or piv.dropna().empty:
        raise UserError(f"{source}: no complete read cycle (reads after +I and after -I)")
    piv = piv.dropna()
    out = pd.DataFrame({"cycle": piv.index.to_numpy(np.int64), "r_high": piv[0].to_numpy(),
                        "r_low": piv[1].to_numpy()})
    out["window"] = out["r_high"] - out["r_low"]
    w0 = abs(out["window"].iloc[0])
    out["window_rel"] = out["window"] / w0 if w0 > 0 else np.nan
    return out


def cycles_to_failure(table: pd.DataFrame, min_window: float = 0.5,
                      patience: int = 3) -> tuple[int | None, str]:
    """(cycle of the first of `patience` read cycles in a row below `min_window`, verdict);
    (None, "no failure") if the window held."""
    low = (table["window"].abs() < min_window * abs(table["window"].iloc[0])).to_numpy()
    run = 0
    for i in range(1, len(low)):
        run = run + 1 if low[i] else 0
        if run >= patience:
            j = i - patience + 1
            h0, l0 = table["r_high"].iloc[0], table["r_low"].iloc[0]
            return int(table["cycle"].iloc[j]), verdict(table["r_high"].iloc[i], table["r_low"].iloc[i], h0, l0)
    return None, "no failure"


def ctc_vs_cycles(table: pd.DataFrame, bins_per_decade: int = 1) -> pd.DataFrame:
    """CTC of each state in log-spaced bins of cycles: σ(R) / mean window of the bin (%)."""
    b = np.floor(np.log10(table["cycle"].to_numpy() + 1.0) * bins_per_decade).astype(int)
    rows = []
    for k, g in table.groupby(b):
        w = g["window"].abs().mean()
        rows.append({"cycle_from": int(g["cycle"].min()), "cycle_to": int(g["cycle"].max()),
                     "reads": len(g), "window": g["window"].mean(),
                     "ctc_high_pct": 100 * g["r_high"].std(ddof=1) / w if len(g) > 1 and w > 0 else math.nan,
                     "ctc_low_pct": 100 * g["r_low"].std(ddof=1) / w if len(g) > 1 and w > 0 else math.nan})
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame, ctc: pd.DataFrame, path: str | Path, *,
         failure: int | None = None) -> Path:
    """Window and CTC vs cycles on a log axis (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
    x = table["cycle"] + 1
    ax1.semilogx(x, table["r_high"], "o-", ms=3, label="after +I")
    ax1.semilogx(x, table["r_low"], "o-", ms=3, label="after −I")
    ax1.set_ylabel("R_H (Ω)")
    if failure is not None:
        for ax in (ax1, ax2):
            ax.axvline(failure + 1, color="k", ls="--", lw=0.8)
    ax1.legend()
    mid = (ctc["cycle_from"] + ctc["cycle_to"]) / 2 + 1
    ax2.semilogx(mid, ctc["ctc_high_pct"], "s-", label="CTC high")
    ax2.semilogx(mid, ctc["ctc_low_pct"], "s-", label="CTC low")
    ax2.set_xlabel("cycles + 1")
    ax2.set_ylabel("CTC (% of window)")
    ax2.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
