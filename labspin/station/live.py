"""The live station: roles by name, limits, sample, the clock the runner uses, and one shutdown."""
from __future__ import annotations

import functools
import json
import logging
import operator
import time
from typing import Any

from labspin.drivers.roles import HallReader, Limits, PulseSource

log = logging.getLogger(__name__)


def _close_instrument(inst: Any) -> None:
    try:
        inst.adapter.close()
    except Exception:  # closing is best effort: the connection may already be gone
        log.debug("closing %r failed", inst, exc_info=True)


def _close_bench(bench: Any) -> None:
    try:
        bench.close()
    except Exception:
        log.debug("closing the simulated bench failed", exc_info=True)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


class WallClock:
    """A real bench's clock (`labspin.runner.Clock`): monotonic seconds; waiting sleeps."""
    virtual = False
    now = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


class BenchClock:
    """A simulated bench's virtual clock as a `labspin.runner.Clock`: waiting advances it."""
    virtual = True

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self.now = functools.partial(operator.attrgetter("now"), clock)   # per point: C calls only

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._clock.advance(seconds)


def simulation_sample(device: Any) -> dict:
    """The simulated device's parameters and seed, for a sample that does not name them."""
    params = device.params.to_dict() if hasattr(device.params, "to_dict") else dict(vars(device.params))
    return {"params": params, "seed": int(getattr(device, "seed", 0))}


class Station:
    """The live bench: roles by name, limits, sample, and the clock the runner should use."""

    def __init__(self, *, pulse_source: PulseSource, hall_reader: HallReader, limits: Limits,
                 sample: dict, bench: Any = None, instruments: dict[str, Any] | None = None,
                 addresses: dict[str, str] | None = None, spec: Any = None,
                 owns_bench: bool = False, bus_log: Any = None):
        self.pulse_source = pulse_source
        self.hall_reader = hall_reader
        self.limits = limits
        self.sample = sample
        self.bench = bench
        # the two things the runner and the run file need from the bench (labspin.runner.Clock,
        # .DeviceState): the clock to time points and waits, the device state to store/restore
        self.clock = BenchClock(bench.clock) if bench is not None else WallClock()
        device = getattr(bench, "hallbar", None)
        self.device_state = bench if hasattr(bench, "get_state") else None
        if hasattr(device, "params") and "params" not in sample and "simulation" not in sample:
            self.sample = dict(sample, simulation=simulation_sample(device))
        self.instruments = dict(instruments or {})
        self.addresses = dict(addresses or {})
        self.spec = spec
        self._owns_bench = owns_bench
        self.bus_log = bus_log            # labspin.buslog.BusLog or None; closed with the station
        self.checks: list = []            # pre-flight results (labspin.station.checks.CheckResult)
        self._shut_down = False
        self._closed = False

    @property
    def simulated(self) -> bool:
        return self.bench is not None

    def now(self) -> float:
        """Seconds on the station's clock: virtual on the simulator, monotonic on a real bench."""
        return self.clock.now()

    def wait(self, seconds: float) -> None:
        """Let time pass (retention intervals): advances the virtual clock on the simulator."""
        if seconds > 0:
            self.clock.sleep(seconds)

    def _roles(self) -> list[tuple[str, Any]]:
        roles = [("pulse_source", self.pulse_source)]
        if self.hall_reader is not self.pulse_source:
            roles.append(("hall_reader", self.hall_reader))
        return roles

    def snapshot(self) -> dict:
        """Roles, addresses, *IDN?, settings, limits — JSON-able, for the run file."""
        from labspin.drivers.common import query_idn
        instruments = {}
        for name, inst in self.instruments.items():
            entry: dict[str, Any] = {"address": self.addresses.get(name)}
            if self.spec is not None and name in self.spec.instruments:
                entry["driver"] = self.spec.instruments[name].driver
            entry["idn"] = query_idn(inst)          # None (logged) if it does not answer
            instruments[name] = entry
        roles = {}
        for name, role in (("pulse_source", self.pulse_source), ("hall_reader", self.hall_reader)):
            try:
                roles[name] = role.snapshot()
            except Exception as exc:
                roles[name] = {"class": type(role).__name__, "error": f"{type(exc).__name__}: {exc}"}
            roles[name].setdefault("class", type(role).__name__)
        snap = {
            "name": self.spec.name if self.spec is not None else None,
            "simulated": self.simulated,
            "sim": None if self.spec is None or self.spec.simulator is None
            else self.spec.simulator.device,
            "limits": self.limits.as_dict(),
            "instruments": instruments,
            "roles": roles,
        }
        if self.spec is not None:
            snap["roles"]["hall_reader"].setdefault("mode", self.spec.hall_reader.mode)
        return _jsonable(snap)

    def shutdown(self) -> None:
        """Every role's shutdown (ramp to zero, outputs off). Never raises; safe to call twice."""
        for name, role in self._roles():
            try:
                role.shutdown()
            except BaseException:  # noqa: BLE001 — the one place that must swallow everything
                log.exception("station: %s shutdown failed", name)
        self._shut_down = True

    def close(self) -> None:
        """Shut down (if not done yet) and close every instrument connection.

        A simulated bench that `open()` created is released too (its VISA library registration);
        its state, log and output history stay readable.
        """
        if self._closed:
            return
        if not self._shut_down:
            self.shutdown()
        for inst in self.instruments.values():
            _close_instrument(inst)
        if self._owns_bench:
            _close_bench(self.bench)
        if self.bus_log is not None:
            self.bus_log.close()
        self._closed = True

    def __enter__(self) -> "Station":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
