"""What a protocol is: a validated, frozen parameter set that expands into a stream of `Step`s.

Every protocol kind is a frozen dataclass whose fields are its recipe's `[parameters]` (SI units).
Fields are declared with `param(...)`, which records the value kind (float, int, list of floats),
the SI unit (a value may then be written with a unit, "5 mA", see `labspin.units`) and a range check, so that validation — from a recipe file, a GUI form or
`labspin run --set key=value` — is one code path that names the offending key.

The schedule is a few small tables, each repeated (see "the schedule" below): `steps()` streams
them, and the limit check, dry-run counts and estimates cost the same for 10 or 10⁹ cycles.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import Any, Callable, ClassVar, Iterator, NamedTuple

import numpy as np

from labspin.errors import FieldError, UserError
from labspin.protocols import registry
from labspin.units import UnitError, to_si

# Column names of `Protocol.arrays()`, in `Step` field order.
STEP_FIELDS = ("cycle", "step", "pulse_current", "pulse_width", "read_current", "wait")


@dataclass(frozen=True, slots=True)
class Step:
    """One point of a run: an optional write pulse, an optional wait, then one read."""

    cycle: int
    step: int              # index within the cycle (staircase: 0 = reset, k = k-th rung; potdep: pulse no.)
    pulse_current: float   # A; 0.0 = no pulse (read only)
    pulse_width: float     # s (0.0 when there is no pulse)
    read_current: float    # A
    wait: float = 0.0      # s before the read (retention interval); virtual on the simulator
    burst: int = 1         # write pulses in this step: `burst` pulses alternating in sign, ending
                           # with pulse_current, read after the last only (endurance); 0 = no pulse


class ParameterError(FieldError):
    """A protocol parameter is wrong: key "parameters.<name>" (`parameter` is the bare name)."""

    def __init__(self, parameter: str, reason: str, where: str | None = None):
        super().__init__(f"parameters.{parameter}", reason, where)
        self.parameter = parameter


class Demand(NamedTuple):
    """A value the protocol asks of the bench, traced to the parameter that sets it (for the dry-run)."""

    parameter: str      # e.g. "stop", "amplitudes[3]", "pulse_width"
    quantity: str       # "pulse_current" | "pulse_width" | "read_current"
    value: float        # SI


# --- range checks: each returns None when fine, else the reason -------------------------------

Check = Callable[[Any], "str | None"]


def positive(v: float) -> str | None:
    return None if v > 0 else f"must be > 0, got {v!r}"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else f"must be >= 0, got {v!r}"


def nonzero(v: float) -> str | None:
    return None if v != 0 else "must not be 0"


def at_least(n: int, most: int | None = None) -> Check:
    """n <= v (<= most: what sizes one cycle's table, so a typo cannot ask for 10¹² points a cycle)."""
    def check(v: int) -> str | None:
        if v < n:
            return f"must be >= {n}, got {v!r}"
        if most is not None and v > most:
            return f"must be <= {most:g}, got {v!r}"
        return None
    check.limit = f">= {n}" if most is None else f"{n} .. {most:g}"
    return check


MAX_INT = 10**15         # any count beyond this is a typo (and would overflow int64 arithmetic)

# what each check allows, for `labspin recipes NAME` and the GUI
positive.limit = "> 0"
non_negative.limit = ">= 0"
nonzero.limit = "!= 0"


def unit_note(unit: str) -> str:
    """" (in A)" — appended to parameter errors so the user knows the expected unit."""
    return f" (in {unit})" if unit else ""


def param(default: Any = MISSING, *, kind: str = "float", unit: str = "", check: Check | None = None,
          doc: str = "") -> Any:
    """Declare a protocol parameter. kind: "float" | "int" | "floats" (a non-empty list of numbers)."""
    return field(default=default, metadata={"kind": kind, "unit": unit, "check": check, "doc": doc})


def _coerce(key: str, kind: str, value: Any, unit: str = "") -> Any:
    """TOML gives int/float/list; accept ints for floats, refuse bools, demand finite. A string
    for a parameter with a unit is a number with a unit ("5 mA"), converted to SI."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ParameterError(key, f"expected an integer, got {value!r}")
        if abs(int(value)) > MAX_INT:
            raise ParameterError(key, f"must be <= {MAX_INT:g}, got {value!r}")
        return int(value)
    if kind == "float":
        try:
            value = to_si(value, unit)
        except UnitError as exc:
            raise ParameterError(key, str(exc)) from None
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ParameterError(key, f"expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(key, f"must be finite, got {value!r}")
        return value
    if kind == "floats":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ParameterError(key, f"expected a list of numbers, got {value!r}")
        items = list(value)
        if not items:
            raise ParameterError(key, "must not be empty")
        return tuple(_coerce(f"{key}[{i}]", "float", v, unit) for i, v in enumerate(items))
    raise AssertionError(f"unknown parameter kind {kind!r}")


@dataclass(frozen=True)
class Protocol(ABC):
    """Base of the protocol kinds. Subclasses are frozen dataclasses of `param(...)` fields.

    A subclass with its own ``kind`` registers itself (`labspin.protocols.registry`); these class
    attributes are its registry entry: what the analysis and the report do with its runs.
    """

    kind: ClassVar[str]
    states_from_step: ClassVar[bool] = False   # `Step.step` names a device state (CTC per state)
    analysis: ClassVar[Any] = None             # "module:function" (RunAnalysis) -> dict of results
    report: ClassVar[Any] = None               # "module:Class" of a labspin.report.ReportSection

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            registry.register_protocol(cls)

    def __post_init__(self) -> None:
        for f in fields(self):
            kind = f.metadata.get("kind")
            if kind is None:
                continue
            value = getattr(self, f.name)
            if value is None:  # optional parameter left unset
                continue
            try:
                value = _coerce(f.name, kind, value, f.metadata.get("unit", ""))
                check = f.metadata.get("check")
                if check is not None:
                    items = value if kind == "floats" else (value,)
                    for i, v in enumerate(items):
                        reason = check(v)
                        if reason:
                            raise ParameterError(f"{f.name}[{i}]" if kind == "floats" else f.name, reason)
            except ParameterError as exc:
                raise ParameterError(exc.parameter, exc.reason if "(in " in exc.reason       # a unit error names it
                                     else exc.reason + unit_note(f.metadata.get("unit", ""))) from None
            object.__setattr__(self, f.name, value)
        self._check()

    def _check(self) -> None:
        """Cross-parameter rules; raise ParameterError. Default: none."""

    # --- construction from a recipe ------------------------------------------------------------

    @classmethod
    def parameter_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if "kind" in f.metadata]

    @classmethod
    def from_parameters(cls, params: dict, source: str = "parameters") -> "Protocol":
        """Validate a `[parameters]` table; UserError "<source>: parameters.<key>: <reason>"."""
        if not isinstance(params, dict):
            raise UserError(f"{source}: parameters: expected a table, got {params!r}")
        allowed = cls.parameter_names()
        for key in params:
            if key not in allowed:
                raise ParameterError(key, f"unknown parameter for kind {cls.kind!r} (allowed: "
                                     f"{', '.join(allowed)}; `labspin recipes` shows them with units)", source)
        for f in fields(cls):
            if "kind" in f.metadata and f.name not in params and f.default is MISSING:
                raise ParameterError(f.name, f"missing (required for kind {cls.kind!r})"
                                     + unit_note(f.metadata.get("unit", "")), source)
        try:
            return cls(**params)
        except ParameterError as exc:
            raise ParameterError(exc.parameter, exc.reason, source) from None

    def parameters(self) -> dict:
        """JSON-able, SI: what the run file stores and the GUI edits."""
        out = {}
        for f in fields(self):
            if "kind" not in f.metadata:
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    # --- the schedule --------------------------------------------------------------------------
    #
    # A schedule is a list of segments, each a small table of steps repeated `repeats` times
    # (a staircase: one cycle × `cycles`). Everything that walks the schedule — the limit check,
    # the dry-run's counts, the runner's steps — works per segment and multiplies, so its cost
    # does not grow with the number of cycles: a 10⁹-pulse recipe checks as fast as a 10-pulse one.
    # `arrays()` materialises the whole schedule and is for small schedules (tests, previews).

    def _segments(self) -> list[Segment]:
        """Schedule as segments: arrays keyed by STEP_FIELDS (+ optional "burst"; `step` sets the
        length, the others may be scalars), `cycle` counted from 0 within one repeat.
        Default: `_build()` once."""
        return [Segment(self._build(), 1)]

    def _build(self) -> dict[str, np.ndarray]:
        """Full schedule as arrays keyed by STEP_FIELDS; kinds override this or `_segments`."""
        raise NotImplementedError

    @abstractmethod
    def demands(self) -> list[Demand]:
        """Currents and widths this protocol will ask for, each traced to its parameter."""

    @cached_property
    def _segs(self) -> tuple["_Seg", ...]:
        out = []
        index = cycle = 0
        for raw, repeats in self._segments():
            repeats = int(repeats)
            n = len(raw["step"])
            if n == 0 or repeats <= 0:
                continue
            cols = {}
            for key in STEP_FIELDS + ("burst",):
                dtype = np.int64 if key in ("cycle", "step", "burst") else np.float64
                arr = np.ascontiguousarray(np.broadcast_to(np.asarray(raw.get(key, 1), dtype=dtype), (n,)))
                cols[key] = arr
            # no pulse means no width: keeps energy and duration honest
            pulsed = cols["pulse_current"] != 0.0
            cols["pulse_width"] = np.where(pulsed, cols["pulse_width"], 0.0)
            cols["burst"] = np.maximum(cols["burst"], 1)
            for arr in cols.values():
                arr.flags.writeable = False
            per = int(cols["cycle"].max()) + 1
            out.append(_Seg(cols, repeats, per, index, cycle))
            index += n * repeats
            cycle += per * repeats
        return tuple(out)

    def arrays(self) -> dict[str, np.ndarray]:
        """Read-only arrays `pulse_index` + STEP_FIELDS (+ `burst`) of the full schedule.

        Materialises every point: for previews and tests, not for 10⁹-pulse schedules."""
        parts: dict[str, list] = {k: [] for k in STEP_FIELDS + ("burst",)}
        for seg in self._segs:
            for k in parts:
                col = np.tile(seg.cols[k], seg.repeats)
                if k == "cycle":
                    col = col + np.repeat(seg.cycle + seg.per * np.arange(seg.repeats), len(seg))
                parts[k].append(col)
        out = {k: (np.concatenate(v) if v else np.empty(0, np.int64 if k in ("cycle", "step", "burst")
                                                         else np.float64)) for k, v in parts.items()}
        out["pulse_index"] = np.arange(len(out["cycle"]), dtype=np.int64)
        for arr in out.values():
            arr.flags.writeable = False
        return out

    def steps(self, start: int = 0) -> Iterator[Step]:
        """Steps from pulse_index `start` on (resume continues at the first missing index),
        generated segment by segment: memory independent of the schedule's length."""
        if start < 0:
            raise ValueError("start must be >= 0")
        for seg in self._segs:
            n = len(seg)
            if start >= seg.index + n * seg.repeats:
                continue
            rep, offset = divmod(max(0, start - seg.index), n)
            rows = list(zip(*(seg.cols[k].tolist() for k in STEP_FIELDS + ("burst",))))
            for r in range(rep, seg.repeats):
                base = seg.cycle + r * seg.per
                for c, st, pc, pw, rc, wt, b in (rows[offset:] if r == rep else rows):
                    yield Step(base + c, st, pc, pw, rc, wt, b)
                offset = 0

    def distinct(self, start: int = 0) -> dict[str, np.ndarray]:
        """The distinct (pulse_current, pulse_width, read_current, burst) rows from `start` on:
        what the limit check needs, from each segment's table once (not per repeat)."""
        rows = []
        for seg in self._segs:
            n = len(seg)
            if start >= seg.index + n * seg.repeats:
                continue
            rep, offset = divmod(max(0, start - seg.index), n)
            sl = slice(offset, None) if rep == seg.repeats - 1 else slice(None)
            rows.append(np.stack([seg.cols["pulse_current"][sl], seg.cols["pulse_width"][sl],
                                  seg.cols["read_current"][sl],
                                  np.minimum(seg.cols["burst"][sl], 2).astype(float)], axis=1))
        table = np.unique(np.concatenate(rows), axis=0) if rows else np.empty((0, 4))
        return {"pulse_current": table[:, 0], "pulse_width": table[:, 1],
                "read_current": table[:, 2], "burst": table[:, 3].astype(np.int64)}

    def __len__(self) -> int:
        return sum(len(seg) * seg.repeats for seg in self._segs)

    @property
    def n_pulses(self) -> int:
        """Write pulses, a burst counting all its pulses."""
        return int(sum(int(seg.cols["burst"][seg.cols["pulse_current"] != 0.0].sum()) * seg.repeats
                       for seg in self._segs))

    @property
    def n_cycles(self) -> int:
        return sum(seg.per * seg.repeats for seg in self._segs)

    @property
    def peak_current(self) -> float:
        """Largest |pulse current| (A)."""
        return max((float(np.abs(seg.cols["pulse_current"]).max()) for seg in self._segs), default=0.0)

    @property
    def peak_read_current(self) -> float:
        return max((float(np.abs(seg.cols["read_current"]).max()) for seg in self._segs), default=0.0)

    def pulse_width_range(self) -> tuple[float, float] | None:
        """(min, max) width over the pulses actually sent; None without pulses."""
        ws = [seg.cols["pulse_width"][seg.cols["pulse_current"] != 0.0] for seg in self._segs]
        ws = [w for w in ws if len(w)]
        if not ws:
            return None
        return float(min(w.min() for w in ws)), float(max(w.max() for w in ws))

    def duration(self, overhead: float = 0.0) -> float:
        """Estimated seconds: pulse widths + waits + `overhead` per point (reads, bus traffic)."""
        total = sum(float(np.sum(seg.cols["pulse_width"] * seg.cols["burst"]) + seg.cols["wait"].sum())
                    * seg.repeats for seg in self._segs)
        return float(total + overhead * len(self))

    def energy(self, r_xx: float) -> float:
        """Estimated Joule energy (J) dissipated by the write pulses in the channel: Σ I²·R_xx·t_p."""
        return float(sum(np.sum(seg.cols["pulse_current"] ** 2 * seg.cols["pulse_width"]
                                * seg.cols["burst"]) * seg.repeats for seg in self._segs) * r_xx)


class Segment(NamedTuple):
    """Part of a schedule: `arrays` (keyed by STEP_FIELDS, + optional "burst") done `repeats` times."""

    arrays: dict
    repeats: int


class _Seg(NamedTuple):
    cols: dict            # normalised read-only columns of one repeat
    repeats: int
    per: int              # cycles per repeat
    index: int            # pulse_index of the segment's first step
    cycle: int            # cycle of the segment's first step

    def __len__(self) -> int:
        return len(self.cols["cycle"])
