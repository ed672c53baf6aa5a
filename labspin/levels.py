"""Level tables: the measured device states handed from analysis to the quantized-CNN evaluator.

Two on-disk forms (DESIGN §3.4): ``levels.json`` (``"format": "labspin-levels/1"``, with device,
sources and the CTC definition, so a table says where it came from) and a NeuroSim-style
``states,mean,std`` CSV (``mem_states.csv``). ``load_levels`` accepts either and validates, so
the evaluator never quantizes to a table that is unsorted, has NaNs or a single level.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labspin.errors import FieldError, UserError
from labspin.outputs import check_output_file

FORMAT = "labspin-levels/1"
CTC_DEFINITIONS = ("window", "state")
CSV_COLUMNS = ("states", "mean", "std")


@dataclass
class LevelTable:
    """K device levels sorted by mean; ``state`` i of the files is the i-th row here."""

    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray
    quantity: str = "hall_resistance"
    unit: str = "ohm"
    device: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    ctc_definition: str = "window"
    extra: dict = field(default_factory=dict)  # e.g. {"ctc": 0.02, "k": 5, "distinguishable_states": 11}

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=float).reshape(-1)
        self.std = np.asarray(self.std, dtype=float).reshape(-1)
        self.n = np.asarray(self.n, dtype=np.int64).reshape(-1)
        if not (self.mean.shape == self.std.shape == self.n.shape):
            raise ValueError("LevelTable: mean, std and n must have the same length")

    def __len__(self) -> int:
        return int(self.mean.size)

    @classmethod
    def from_stats(cls, mean, std, n=None, **meta: Any) -> "LevelTable":
        """Build a table from unsorted per-state statistics (sorted here, by mean)."""
        mean = np.asarray(mean, dtype=float)
        std = np.asarray(std, dtype=float)
        n = np.zeros(mean.shape, dtype=np.int64) if n is None else np.asarray(n, dtype=np.int64)
        order = np.argsort(mean, kind="stable")
        return cls(mean[order], std[order], n[order], **meta)

    def validate(self, source: str = "level table") -> "LevelTable":
        """Raise UserError(source: reason) unless sorted, finite, >= 2 levels and std >= 0."""
        _validate(self.mean, self.std, source)
        if self.ctc_definition not in CTC_DEFINITIONS + ("unknown",):
            raise UserError(f"{source}: ctc_definition {self.ctc_definition!r} is not one of "
                            f"{', '.join(CTC_DEFINITIONS)}")
        return self

    def to_dict(self) -> dict:
        """The labspin-levels/1 JSON document."""
        doc = {
            "format": FORMAT,
            "device": dict(self.device),
            "sources": [str(s) for s in self.sources],
            "quantity": self.quantity,
            "unit": self.unit,
            "ctc_definition": self.ctc_definition,
        }
        doc.update({k: v for k, v in self.extra.items() if k not in doc and k != "levels"})
        doc["levels"] = [
            {"state": i, "mean": float(m), "std": float(s), "n": int(c)}
            for i, (m, s, c) in enumerate(zip(self.mean, self.std, self.n))
        ]
        return doc

    def save_json(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        self.validate(str(path))
        text = json.dumps(to_jsonable(self.to_dict()), indent=2) + "\n"
        return _write_text(path, text, overwrite)

    def save_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """NeuroSim ``mem_states.csv``: ``states,mean,std``, one row per level, sorted by mean."""
        self.validate(str(path))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for i, (m, s) in enumerate(zip(self.mean, self.std)):
            w.writerow([i, repr(float(m)), repr(float(s))])
        return _write_text(path, buf.getvalue(), overwrite)


SELECTIONS = ("all", "distinguishable")


def distinguishable_index(mean, std, k: float = 5.0) -> list[int]:
    """Indices (into the mean-sorted levels) kept greedily from the lowest, each ≥ k·(σ_a + σ_b)/2
    above the last kept one — DESIGN §5's rule, the one ``analysis.distinguishable`` counts."""
    mean, std = np.asarray(mean, float), np.nan_to_num(np.asarray(std, float))
    kept = [0] if mean.size else []
    for j in range(1, mean.size):
        a = kept[-1]
        if mean[j] - mean[a] >= k * (std[a] + std[j]) / 2:
            kept.append(j)
    return kept


def select_levels(table: LevelTable, select: str = "all", k: float = 5.0,
                  source: str = "select") -> LevelTable:
    """``all``: the table as is; ``distinguishable``: only its k·σ-separated levels (the table
    records which states were kept and the k used)."""
    if select not in SELECTIONS:
        raise FieldError(source, f"unknown {select!r} (choose from {', '.join(SELECTIONS)})")
    if select == "all":
        return table
    keep = distinguishable_index(table.mean, table.std, k)
    if len(keep) < 2:
        raise FieldError(source, f"fewer than 2 usable levels after selection ({len(keep)} at k = {k:g})")
    extra = {**table.extra, "selection": {"select": select, "k": k, "states": keep,
                                          "from_levels": len(table)}}
    return LevelTable(table.mean[keep], table.std[keep], table.n[keep], table.quantity, table.unit,
                      dict(table.device), list(table.sources), table.ctc_definition, extra)


def load_levels(path: str | os.PathLike) -> LevelTable:
    """Read a levels.json (labspin-levels/1) or a states,mean,std CSV; UserError on anything bad."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: level table not found")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read level table ({exc.__class__.__name__})") from None
    if p.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        table = _from_json(text, str(p))
    else:
        table = _from_csv(text, str(p))
    return table.validate(str(p))


# --------------------------------------------------------------------------- helpers

def _from_json(text: str, src: str) -> LevelTable:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{src}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise UserError(f"{src}: expected a JSON object with a 'levels' list")
    if doc.get("format") != FORMAT:
        raise UserError(f"{src}: format: expected {FORMAT!r}, got {doc.get('format')!r}")
    levels = doc.get("levels")
    if not isinstance(levels, list):
        raise UserError(f"{src}: levels: missing or not a list")
    mean, std, n = [], [], []
    for i, lv in enumerate(levels):
        if not isinstance(lv, dict) or "mean" not in lv or "std" not in lv:
            raise UserError(f"{src}: levels[{i}]: needs 'mean' and 'std'")
        try:
            mean.append(float(lv["mean"]))
            std.append(float(lv["std"]))
            n.append(int(lv.get("n", 0)))
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"{src}: levels[{i}]: mean/std/n must be numbers") from None
    known = {"format", "device", "sources", "quantity", "unit", "ctc_definition", "levels"}
    device = doc.get("device") or {}
    sources = doc.get("sources") or []
    if not isinstance(device, dict):
        raise UserError(f"{src}: device: expected an object")
    if not isinstance(sources, list):
        raise UserError(f"{src}: sources: expected a list")
    return LevelTable(
        mean=np.array(mean), std=np.array(std), n=np.array(n, dtype=np.int64),
        quantity=str(doc.get("quantity", "hall_resistance")), unit=str(doc.get("unit", "ohm")),
        device=device, sources=[str(s) for s in sources],
        ctc_definition=str(doc.get("ctc_definition", "unknown")),
        extra={k: v for k, v in doc.items() if k not in known},
    )


def _from_csv(text: str, src: str) -> LevelTable:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise UserError(f"{src}: empty level table")
    header = [c.strip().lower() for c in rows[0]]
    missing = [c for c in ("mean", "std") if c not in header]
    if missing:
        raise UserError(f"{src}: header must have columns states,mean,std (missing {', '.join(missing)})")
    im, isd = header.index("mean"), header.index("std")
    inn = header.index("n") if "n" in header else None
    mean, std, n = [], [], []
    for line, r in enumerate(rows[1:], start=2):
        try:
            mean.append(float(r[im]))
            std.append(float(r[isd]))
            n.append(int(float(r[inn])) if inn is not None else 0)
        except (IndexError, ValueError):
            raise UserError(f"{src}: line {line}: mean/std must be numbers") from None
    mean_a, std_a, n_a = np.array(mean), np.array(std), np.array(n, dtype=np.int64)
    extra: dict = {}
    if mean_a.size > 1 and np.all(np.isfinite(mean_a)) and np.any(np.diff(mean_a) < 0):
        # NeuroSim's mem_states.csv may list states in any order: sort by mean, and say so
        order = np.argsort(mean_a, kind="stable")
        mean_a, std_a, n_a = mean_a[order], std_a[order], n_a[order]
        extra["notes"] = [f"{src}: rows were not ordered by mean; sorted (file rows "
                          f"{', '.join(str(int(i) + 2) for i in order)} became states 0..{order.size - 1})"]
    # a bare CSV does not say what it measured: no R_H/ohm label on what may be a conductance
    return LevelTable(mean=mean_a, std=std_a, n=n_a, quantity="unspecified", unit="",
                      sources=[], ctc_definition="unknown", extra=extra)


def _validate(mean: np.ndarray, std: np.ndarray, src: str) -> None:
    if mean.size < 2:
        raise UserError(f"{src}: needs at least 2 levels, found {mean.size}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        bad = int(np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)))[0])
        raise UserError(f"{src}: level {bad}: mean/std not finite")
    if np.any(std < 0):
        raise UserError(f"{src}: level {int(np.flatnonzero(std < 0)[0])}: std is negative")
    if np.any(np.diff(mean) <= 0):     # equal means are one state, not two weight levels
        raise UserError(f"{src}: levels are not strictly increasing by mean "
                        f"(level {int(np.flatnonzero(np.diff(mean) <= 0)[0]) + 1})")


def to_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays and NaN → plain JSON (NaN/inf become null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _write_text(path: str | os.PathLike, text: str, overwrite: bool) -> Path:
    """Write atomically; never replace an existing file without overwrite=True."""
    p = Path(path)
    check_output_file(p, overwrite=overwrite)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{p}: cannot write ({exc.strerror or exc})") from None
    return p
