"""Staircase runs: the CTC average without the reset state (step 0, driven into saturation each
cycle, whose σ is little more than the read noise and flatters the average)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from labspin.analysis.result import RunAnalysis


def ctc_without(states: pd.DataFrame, per: np.ndarray, state: int) -> float | None:
    """The CTC average without one state — the staircase's reset state, driven fully into
    saturation each cycle, whose σ is little more than the read noise and flatters the average."""
    keep = (states["state"].to_numpy() != state) & np.isfinite(per)
    return float(np.mean(per[keep])) if keep.sum() >= 1 and len(states) >= 3 else None


def analyze(a: "RunAnalysis") -> dict[str, Any]:
    """The staircase kind's results: ``ctc_without_reset`` and ``reset_state`` (states from steps)."""
    st = a.states
    if a.state_source != "step" or len(st) < 2 or 0 not in set(st["state"]):
        return {}
    return {"reset_state": 0, "ctc_without_reset": ctc_without(st, st["ctc"].to_numpy(), 0)}


analyze.uses_points = False     # states only: also for a run analysed streamed (every k-th point kept)
