"""The result of analysing a run: ``RunAnalysis``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from labspin.errors import FieldError
from labspin.levels import LevelTable

# results of the shipped kinds that summary.json always carries (null when the kind has none)
SHIPPED_RESULTS = ("ctc_without_reset", "reset_state", "potdep", "loop", "retention", "crossings")


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
    quantity: str = "hall_resistance"   # what the signal holds (an imported run may be a conductance)
    unit: str = "ohm"
    parameters: dict = field(default_factory=dict)   # the protocol's parameters, as the run file has them
    results: dict = field(default_factory=dict)      # what the kind's analysis added, by name
    stride: int = 1                   # `data` holds every stride-th point (a run analysed streamed)

    # results of the shipped kinds (None for runs of other kinds)
    @property
    def potdep(self) -> dict | None:
        """potdep: per-branch fits, nonlinearity, asymmetry."""
        return self.results.get("potdep")

    @property
    def loop(self) -> dict | None:
        """loop: ic_plus/ic_minus mean, std, n; midpoint."""
        return self.results.get("loop")

    @property
    def crossings(self) -> pd.DataFrame | None:
        """loop: each (cycle, sweep)'s first midpoint crossing."""
        return self.results.get("crossings")

    @property
    def ctc_without_reset(self) -> float | None:
        """staircase: the CTC average over the programmed states only."""
        return self.results.get("ctc_without_reset")

    @property
    def reset_state(self) -> int | None:
        """staircase: step 0, the full reset (σ ≈ read noise)."""
        return self.results.get("reset_state")

    @property
    def retention(self) -> dict | None:
        """retention: drift per state, see ``labspin.analysis.retention.retention_drift``."""
        return self.results.get("retention")

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
        """JSON-able summary (one entry of summary.json); a kind's other results (not DataFrames)
        are entries of their own."""
        out = {
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
        for name, value in self.results.items():       # results of a kind registered elsewhere
            if name not in SHIPPED_RESULTS and not isinstance(value, pd.DataFrame):
                out.setdefault(name, value)
        return out
