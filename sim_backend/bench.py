"""The simulated bench: one Hall bar, six instruments wired to it, a virtual clock, a log.

Wiring (DESIGN §3.1): every sourcing instrument (6221 DC/pulses, 2400/2450) drives current along
the channel; the 2182A and the SourceMeters' sense leads read the Hall voltage across the cross;
the lock-ins read the AC Hall voltage of either their own sine out (through
``lockin_series_resistance``) or the 6221 sine (external reference).

How current reaches the device: the bench keeps the sum of the DC currents of all outputs as an
open *segment*; when any output changes (or a measurement needs the present state) the segment
is closed and delivered to ``HallBar.pulse(current, duration)``. So a software-timed SourceMeter
pulse has the width of the virtual time between output ON (or the level change) and output OFF;
that time advances with the source delay and NPLC of reads, with ``clock.advance`` (a station's
``wait``) and with ``message_time`` per message. AC currents (sine outs) are not delivered as
pulses.
"""
from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any, NamedTuple

from .clock import VirtualClock

DEFAULT_ADDRESSES = {
    "keithley6221": "GPIB0::12::INSTR",
    "keithley2182": "GPIB0::7::INSTR",
    "sr830": "GPIB0::8::INSTR",
    "sr860": "GPIB0::9::INSTR",
    "keithley2400": "GPIB0::24::INSTR",
    "keithley2450": "GPIB0::18::INSTR",
}
FAULT_KINDS = ("timeout", "late", "error", "disconnect", "compliance")
_counter = itertools.count(1)


class LogRecord(NamedTuple):
    time: float
    address: str
    kind: str        # "write" | "read" | "output"
    message: Any     # the SCPI text; for "output" the tuple (output_on, level)


_record = tuple.__new__     # LogRecord(...) without its Python-level __new__: one per message


class SimBench:
    """A simulated Hall-bar bench served through its own PyVISA library.

    ``device`` is a preset name, a ``DeviceParams`` or an object with the ``HallBar`` interface
    (used as is — handy for tests with a known R_H). Keyword options: ``line_frequency`` (50 or 60
    Hz: PLC durations, and the 6221's line-synchronised Pulse Delta cycles), ``lockin_series_resistance`` (ohm), ``thermal_emf`` / ``thermal_emf_drift``
    (V: offset and amplitude of a 600 s wander of the Hall-lead EMF), ``message_time`` (virtual s
    per written message, default 0), ``bus_latency`` (virtual s per message to a SourceMeter,
    default 1 ms: what a software-timed pulse costs on a real bus), ``log_limit`` (beyond it
    ``log`` drops its oldest half; None keeps all), ``addresses`` (driver name → VISA address; a
    subset builds a smaller bench), ``models`` (driver name → simulated instrument class, for
    names beyond ``instruments.MODELS``).
    """

    def __init__(self, device: Any = "tilted", seed: int = 0, *, line_frequency: float = 50.0,
                 lockin_series_resistance: float = 10e3, thermal_emf: float = 2e-6,
                 thermal_emf_drift: float = 0.3e-6, message_time: float = 0.0,
                 bus_latency: float = 1e-3, log_limit: int | None = 500_000,
                 addresses: dict[str, str] | None = None, models: dict[str, type] | None = None):
        from .errors import SimulatorInputError

        self.seed = int(seed)
        self.hallbar = self._make_hallbar(device, self.seed)
        self.clock = VirtualClock()
        if float(line_frequency) not in (50.0, 60.0):
            raise SimulatorInputError(f"line_frequency: {line_frequency!r} Hz; the power line is 50 or 60 Hz")
        self.line_frequency = float(line_frequency)
        self.lockin_series_resistance = float(lockin_series_resistance)
        self.thermal_emf_offset = float(thermal_emf)
        self.thermal_emf_drift = float(thermal_emf_drift)
        self.message_time = float(message_time)
        self.bus_latency = float(bus_latency)
        self.log: list[LogRecord] = []
        self.log_limit = log_limit
        self._outputs: dict[str, deque] = {}
        self._contrib: dict[str, float] = {}
        self._seg_current = 0.0
        self._seg_start = 0.0
        self._listeners: list = []
        self._noise_buf: list[float] = []
        self._noise_i = 0
        self.addresses = dict(DEFAULT_ADDRESSES if addresses is None else addresses)
        from .instruments import MODELS
        known = {**MODELS, **(models or {})}
        self._instruments: dict[str, Any] = {}
        for name, addr in self.addresses.items():
            if name not in known:
                raise SimulatorInputError(f"addresses: unknown instrument {name!r} (known: {', '.join(known)})")
            self._instruments[addr.upper()] = known[name](self, addr)
        from .visalib import SimVisaLibrary
        self.visa_library = SimVisaLibrary(f"labspin-sim-{next(_counter)}-{id(self):x}")
        self.visa_library.bench = self

    @staticmethod
    def _make_hallbar(device: Any, seed: int):
        if hasattr(device, "pulse") and hasattr(device, "hall_resistance"):
            return device
        from .hallbar import HallBar
        from .params import preset
        params = preset(device) if isinstance(device, str) else device
        return HallBar(params, seed=seed)

    # ---- public API ----------------------------------------------------------------------
    def instrument(self, address: str):
        """The simulated instrument at a VISA address (KeyError if none)."""
        return self._instruments[address.upper()]

    @property
    def instruments(self) -> dict[str, Any]:
        return {name: self.instrument(addr) for name, addr in self.addresses.items()}

    def output_history(self, address: str) -> list[tuple[float, bool, float]]:
        """[(time, output_on, level)] of one instrument, oldest first (the last million kept)."""
        return list(self._outputs.get(address.upper(), ()))

    def inject_fault(self, address: str, kind: str, *, after: int = 0, count: int = 1) -> None:
        """Arm a fault: after ``after`` more commands to ``address``, ``kind`` happens ``count`` times.

        Commands are counted as program message units: a compound write ``A;:B`` counts 2.

        "timeout": the reply of the next query is lost (the read times out); "late": the reply of
        the next query comes too late — the read times out, and the reply then waits for the
        next read (a VISA device clear drops it); "error": an error
        entry (−310 "System error") is queued; "disconnect": all I/O fails until
        :meth:`clear_faults`; "compliance": the next sourcing event trips compliance.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} not in {FAULT_KINDS}")
        if after < 0 or count < 1:
            raise ValueError("after must be >= 0 and count >= 1")
        self.instrument(address).add_fault(kind, int(after), int(count))

    def clear_faults(self, address: str | None = None) -> None:
        """Remove armed faults and reconnect (one instrument, or all)."""
        for addr, inst in self._instruments.items():
            if address is None or addr == address.upper():
                inst.clear_faults()

    def apply_inplane_field(self, hx: float) -> bool:
        """Forward to the Hall bar (polarity reset); False when the device is not resettable."""
        self.flush()
        ok = self.hallbar.apply_inplane_field(hx)
        self._notify()
        return ok

    def close(self) -> None:
        """Forget the VISA library registration so the bench can be garbage collected."""
        from pyvisa.highlevel import VisaLibraryBase

        lib = self.visa_library
        VisaLibraryBase._registry.pop((type(lib), lib.library_path), None)
        lib.sessions.clear()

    # ---- the device's state, for a resumed run ---------------------------------------------
    def get_state(self) -> dict:
        """The device's state (`HallBar.get_state`), JSON-able."""
        return self.hallbar.get_state()

    def set_state(self, state: dict) -> None:
        """Restore the device and continue its time: a new bench's clock starts at 0 while the
        device last read at t on the old one, so the clock moves on to t — the drift, heating
        read-back and thermal EMF go on from where the run stopped, as in a run never stopped."""
        self.hallbar.set_state(state)
        t = (state.get("readout") or {}).get("t")
        if t is not None and float(t) > self.clock.now:
            self.clock.advance(float(t) - self.clock.now)

    # ---- wiring used by the instruments --------------------------------------------------
    @property
    def rng(self):
        return self.hallbar.readout_rng

    def noise(self) -> float:
        """One standard-normal draw from the readout stream (drawn in blocks: a scalar numpy draw
        costs microseconds)."""
        i = self._noise_i
        if i >= len(self._noise_buf):
            self._noise_buf = self.hallbar.readout_rng.standard_normal(1024).tolist()
            i = 0
        self._noise_i = i + 1
        return self._noise_buf[i]

    @property
    def channel_current(self) -> float:
        """Total DC current along the channel now (A)."""
        return self._seg_current

    def thermal_emf(self, t: float | None = None) -> float:
        """Slowly wandering thermoelectric offset of the Hall leads (V); Delta modes cancel it."""
        t = self.clock.now if t is None else t
        return self.thermal_emf_offset + self.thermal_emf_drift * math.sin(2 * math.pi * t / 600.0)

    def hall_voltage(self, current: float, t: float | None = None) -> float:
        """Noise-free DC Hall voltage for a channel current (V), thermal EMF included."""
        return current * self.hallbar.hall_resistance + self.thermal_emf(t)

    def flush(self) -> None:
        """Deliver the open current segment up to now, so reads see the present state."""
        now = self.clock.now
        if now > self._seg_start:
            if self._seg_current != 0.0:
                self.hallbar.pulse(self._seg_current, now - self._seg_start)
                self._notify()
            self._seg_start = now

    def _set_contribution(self, address: str, current: float) -> None:
        if self._contrib.get(address, 0.0) == current:
            return
        self.flush()
        self._seg_start = self.clock.now
        self._contrib[address] = current
        self._seg_current = sum(self._contrib.values())
        self._notify()

    def deliver_pulse(self, address: str, current: float, width: float) -> None:
        """A hardware-timed pulse from ``address``: the other outputs keep flowing meanwhile."""
        base = self._contrib.get(address, 0.0)
        self._set_contribution(address, current)
        self.clock.advance(width)
        self.flush()
        self._set_contribution(address, base)

    def add_listener(self, fn) -> None:
        """``fn()`` runs whenever the device state or a DC current changes (lock-in filters)."""
        self._listeners.append(fn)

    def _notify(self) -> None:
        if self._listeners:
            for fn in self._listeners:
                fn()

    def _log(self, address: str, kind: str, message: Any) -> None:
        if self.message_time and kind == "write":
            self.clock.advance(self.message_time)
        log = self.log
        log.append(_record(LogRecord, (self.clock.now, address, kind, message)))
        if self.log_limit is not None and len(log) > self.log_limit:
            del log[: len(log) - self.log_limit // 2]   # keep the newest half: bounded memory

    def _record_output(self, address: str, on: bool, level: float) -> None:
        now = self.clock.now
        self._outputs.setdefault(address.upper(), deque(maxlen=1_000_000)).append((now, on, level))
        self.log.append(LogRecord(now, address, "output", (on, level)))

    def __repr__(self) -> str:
        name = getattr(getattr(self.hallbar, "params", None), "name", type(self.hallbar).__name__)
        return f"SimBench({name!r}, seed={self.seed}, t={self.clock.now:.6g} s)"
