"""What every role shares, whatever the instrument: the settings cache, identification, the clock,
the run-file snapshot, polling, error reports and shutdown stages.

Settings are sent only when they change: `set_if_changed` keeps a per-instrument record of the
values last written, shared by every role on that instrument and forgotten (`forget_settings`)
on shutdown and on any error, so the hot path is a few messages.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

import numpy as np

from .roles import LimitError, Limits

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Sleep = Callable[[float], None]

_CACHE_ATTR = "_labspin_sent"


# ----- the settings cache -----------------------------------------------------------------------
def sent_settings(inst: Any) -> dict:
    """The per-instrument record of property values last written by a role."""
    cache = inst.__dict__.get(_CACHE_ATTR)
    if cache is None:
        cache = {}
        inst.__dict__[_CACHE_ATTR] = cache
    return cache


def set_if_changed(inst: Any, name: str, value: Any, cache: dict | None = None,
                   before: Callable[[], Any] | None = None) -> bool:
    """Write pymeasure property `name` only if it differs from the value last written
    (`before()` runs first when it will be written: a 6221 role aborts an armed run)."""
    if cache is None:
        cache = sent_settings(inst)
    if name in cache and cache[name] == value:
        return False
    if before is not None:
        before()
    cache.pop(name, None)          # unknown state if the write fails half-way
    setattr(inst, name, value)
    cache[name] = value
    return True


def forget_settings(inst: Any) -> None:
    """Drop the cache: the next call re-sends every setting (after shutdown or an error)."""
    inst.__dict__.pop(_CACHE_ATTR, None)


# ----- identification and the run-file snapshot -------------------------------------------------
def instrument_address(inst: Any) -> str | None:
    """VISA resource name of a pymeasure instrument, if it has one."""
    conn = getattr(getattr(inst, "adapter", None), "connection", None)
    name = getattr(conn, "resource_name", None)
    return name if isinstance(name, str) else None


def query_idn(inst: Any) -> str | None:
    """*IDN? asked directly: pymeasure's `id` refuses classes without the SCPI mixin (SR860);
    not asked again where `labspin.drivers.open_instrument` already did (one *IDN? per opening)."""
    known = inst.__dict__.get("_labspin_idn")
    if known is not None:
        return known
    try:
        return str(inst.ask("*IDN?")).strip()
    except Exception as exc:  # noqa: BLE001 - identification is informative only
        log.warning("%s: *IDN? failed: %s", instrument_address(inst), exc)
        return None


def role_snapshot(role: Any, inst: Any, idn: str | None, extra: dict | None = None) -> dict:
    """JSON-able description of a role: driver, address, *IDN?, settings, limits."""
    settings = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v)
                for k, v in sent_settings(inst).items()}
    snap = {
        "role": type(role).__name__,
        "driver": f"{type(inst).__module__}.{type(inst).__qualname__}",
        "address": instrument_address(inst),
        "idn": idn,
        "settings": settings,
        "limits": role.limits.as_dict(),
    }
    if extra:
        snap.update(extra)
    return snap


# ----- the clock ---------------------------------------------------------------------------------
def clock_sleep(inst: Any) -> Sleep:
    """Wall-clock sleep, or the VISA library's own `sleep` where it simulates time.

    A simulated VISA library that keeps a virtual clock (labspin's SimVisaLibrary) exposes
    `sleep(seconds)`; waiting through it advances that clock instead of blocking.
    """
    from pyvisa.highlevel import VisaLibraryBase

    conn = getattr(getattr(inst, "adapter", None), "connection", None)
    lib = getattr(conn, "visalib", None)
    if not isinstance(lib, VisaLibraryBase):
        return time.sleep
    fn = getattr(lib, "sleep", None)
    return fn if callable(fn) else time.sleep


def clock_now(inst: Any) -> Callable[[], float]:
    """Seconds now: the VISA library's own `now()` where it simulates time (labspin's
    SimVisaLibrary: the bench's virtual clock), or the host's monotonic clock."""
    from pyvisa.highlevel import VisaLibraryBase

    conn = getattr(getattr(inst, "adapter", None), "connection", None)
    lib = getattr(conn, "visalib", None)
    fn = getattr(lib, "now", None) if isinstance(lib, VisaLibraryBase) else None
    return fn if callable(fn) else time.perf_counter


def wait_until(done: Callable[[], bool], sleep: Sleep, expected: float, timeout: float,
               what: str) -> None:
    """Poll `done()` first (a simulator finishes at once), then sleep in short steps."""
    waited = 0.0
    step = min(max(expected / 4, 1e-3), 0.05)
    while not done():
        if waited >= timeout:
            raise TimeoutError(f"{what}: not complete after {waited:.3g} s")
        sleep(step)
        waited += step


def poll_plan(expected: float, timeout: float) -> tuple[float, int]:
    """Poll step (s) and number of polls after the first for a run expected to take `expected`
    seconds: the run may take twice as long, plus `timeout`."""
    step = min(max(expected / 4, 1e-3), 0.05)
    return step, max(1, math.ceil((timeout + 2 * expected) / step - 1e-9))


# ----- limits, errors, shutdown -------------------------------------------------------------------
def check_compliance(limits: Limits, low: float, high: float, model: str) -> None:
    """LimitError unless the station's compliance voltage lies in the instrument's range."""
    cv = limits.compliance_voltage
    if not (math.isfinite(cv) and low <= cv <= high):
        raise LimitError(f"compliance_voltage {cv:.4g} V outside the {model} range [{low:g}, {high:g}] V")


def reraise_with_errors(inst: Any, exc: BaseException) -> None:
    """Re-raise `exc`, naming the instrument's queued errors (if any) in the message."""
    if isinstance(exc, LimitError):
        raise exc
    errors = []
    try:
        for _ in range(10):        # pymeasure's next_error: SYST:ERR? (SCPI instruments only)
            code, msg = inst.next_error[:2]
            if int(code) == 0:
                break
            errors.append(f"{int(code)},{str(msg).strip()}")
    except Exception:  # noqa: BLE001 - best effort only
        pass
    if errors:
        raise RuntimeError(f"{instrument_address(inst)}: {exc} "
                           f"[instrument errors: {'; '.join(errors)}]") from exc
    raise exc


def safely(what: str, action: Callable[[], Any], name: str | None = None) -> None:
    """Run one shutdown stage; log instead of raising."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - shutdown must never raise
        log.error("%s: shutdown could not %s: %s", name, what, exc)
