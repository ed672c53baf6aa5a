"""What a protocol is: a validated, frozen parameter set that expands into a stream of `Step`s.

Every protocol kind is a frozen dataclass whose fields are its recipe's `[parameters]` (SI units).
Fields are declared with `param(...)`, which records the value kind (float, int, list of floats),
the unit and a range check, so that validation — from a recipe file, a GUI form or
`labspin run --set key=value` — is one code path that names the offending key.

The schedule is computed once as numpy arrays (`arrays()`); `steps()` iterates over them, which
keeps a 200k-point run cheap, and the dry-run and the GUI read the arrays directly.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import Any, Callable, ClassVar, Iterator, NamedTuple

import numpy as np

from labspin.errors import UserError

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


class ParameterError(UserError):
    """A protocol parameter is wrong; `key` names it so callers can prefix the recipe file."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"parameters.{key}: {reason}")
        self.key = key
        self.reason = reason


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


def at_least(n: int) -> Check:
    def check(v: int) -> str | None:
        return None if v >= n else f"must be >= {n}, got {v!r}"
    check.limit = f">= {n}"
    return check


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


def _coerce(key: str, kind: str, value: Any) -> Any:
    """TOML gives int/float/list; accept ints for floats, refuse bools and strings, demand finite."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ParameterError(key, f"expected an integer, got {value!r}")
        return int(value)
    if kind == "float":
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
        return tuple(_coerce(f"{key}[{i}]", "float", v) for i, v in enumerate(items))
    raise AssertionError(f"unknown parameter kind {kind!r}")


@dataclass(frozen=True)
class Protocol(ABC):
    """Base of the protocol kinds. Subclasses are frozen dataclasses of `param(...)` fields."""

    kind: ClassVar[str]

    def __post_init__(self) -> None:
        for f in fields(self):
            kind = f.metadata.get("kind")
            if kind is None:
                continue
            value = getattr(self, f.name)
            if value is None:  # optional parameter left unset
                continue
            try:
                value = _coerce(f.name, kind, value)
                check = f.metadata.get("check")
                if check is not None:
                    items = value if kind == "floats" else (value,)
                    for i, v in enumerate(items):
                        reason = check(v)
                        if reason:
                            raise ParameterError(f"{f.name}[{i}]" if kind == "floats" else f.name, reason)
            except ParameterError as exc:
                raise ParameterError(exc.key, exc.reason + unit_note(f.metadata.get("unit", ""))) from None
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
                raise UserError(f"{source}: parameters.{key}: unknown parameter for kind "
                                f"{cls.kind!r} (allowed: {', '.join(allowed)}; "
                                f"`labspin recipes` shows them with units)")
        for f in fields(cls):
            if "kind" in f.metadata and f.name not in params and f.default is MISSING:
                raise UserError(f"{source}: parameters.{f.name}: missing (required for kind {cls.kind!r})"
                                + unit_note(f.metadata.get("unit", "")))
        try:
            return cls(**params)
        except ParameterError as exc:
            raise UserError(f"{source}: {exc}") from None

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

    @abstractmethod
    def _build(self) -> dict[str, np.ndarray]:
        """Full schedule as arrays keyed by STEP_FIELDS."""

    @abstractmethod
    def demands(self) -> list[Demand]:
        """Currents and widths this protocol will ask for, each traced to its parameter."""

    @cached_property
    def _arrays(self) -> dict[str, np.ndarray]:
        raw = self._build()
        n = len(raw["cycle"])
        out = {"pulse_index": np.arange(n, dtype=np.int64)}
        for key in STEP_FIELDS:
            dtype = np.int64 if key in ("cycle", "step") else np.float64
            arr = np.ascontiguousarray(np.broadcast_to(np.asarray(raw[key], dtype=dtype), (n,)))
            arr.flags.writeable = False
            out[key] = arr
        # no pulse means no width: keeps energy and duration honest
        width = np.where(out["pulse_current"] == 0.0, 0.0, out["pulse_width"])
        width.flags.writeable = False
        out["pulse_width"] = width
        out["pulse_index"].flags.writeable = False
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Read-only arrays `pulse_index` + STEP_FIELDS of the full schedule (dry-run, GUI preview)."""
        return dict(self._arrays)

    def steps(self, start: int = 0) -> Iterator[Step]:
        """Steps from pulse_index `start` on (resume continues at the first missing index)."""
        if start < 0:
            raise ValueError("start must be >= 0")
        a = self._arrays
        cols = [a[k][start:].tolist() for k in STEP_FIELDS]
        for values in zip(*cols):
            yield Step(*values)

    def __len__(self) -> int:
        return len(self._arrays["cycle"])

    @property
    def n_pulses(self) -> int:
        return int(np.count_nonzero(self._arrays["pulse_current"]))

    @property
    def n_cycles(self) -> int:
        c = self._arrays["cycle"]
        return int(c.max()) + 1 if len(c) else 0

    @property
    def peak_current(self) -> float:
        """Largest |pulse current| (A)."""
        p = self._arrays["pulse_current"]
        return float(np.abs(p).max()) if len(p) else 0.0

    @property
    def peak_read_current(self) -> float:
        r = self._arrays["read_current"]
        return float(np.abs(r).max()) if len(r) else 0.0

    def duration(self, overhead: float = 0.0) -> float:
        """Estimated seconds: pulse widths + waits + `overhead` per point (reads, bus traffic)."""
        a = self._arrays
        return float(a["pulse_width"].sum() + a["wait"].sum() + overhead * len(self))

    def energy(self, r_xx: float) -> float:
        """Estimated Joule energy (J) dissipated by the write pulses in the channel: Σ I²·R_xx·t_p."""
        a = self._arrays
        return float(np.sum(a["pulse_current"] ** 2 * a["pulse_width"]) * r_xx)
