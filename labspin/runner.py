"""The runner: does a recipe's steps on a station, safely, and hands the points to listeners.

Safety model: the whole remaining schedule is checked against the station limits before the
first instrument write; then one ``try/finally`` owns the run, and its ``finally`` runs the one
shutdown routine (``station.shutdown()``: abort sweeps, ramp to zero, outputs off) on every exit
path — normal end, exception (VISA timeout, compliance trip, LimitError, a listener failing),
Ctrl-C, SIGTERM and ``abort()`` from another thread. Ctrl-C and SIGTERM are turned into an abort
request (checked between steps) while the runner owns the main thread, and are held off while
the shutdown runs, so a second Ctrl-C cannot interrupt the ramp-down.

A Hall reader with ``run_block(steps)`` (the 6221 Pulse Delta reader) gets runs of steps as
hardware-timed blocks (see ``_loop``); abort and pause are honoured between blocks.

A protocol with ``stop_rule()`` (endurance) is asked after every block of points whether the run
is over; then it ends "completed" with error "stopped: <reason>", through the same shutdown.

What the runner needs of a station: the roles (``pulse_source``, ``hall_reader``), ``limits``,
``sample``, ``snapshot()``, ``shutdown()`` and ``clock`` (`Clock`: points are timed and waits taken
on it). It never looks at a simulator; the device state (`DeviceState`) is for the run file,
wired by `labspin.measure.prepare`. Listeners get `RunInfo` (plain dicts, `labspin.schema`).

Listeners are called in the runner thread: ``on_start`` once, ``on_points`` with blocks of
points (every ``block_points`` points or ``block_seconds`` of wall time, and at the end), and
``on_end(status, error)`` once, after the shutdown.
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Any, Iterator, Protocol as _TypingProtocol

import numpy as np

from labspin import __version__
from labspin.errors import UserError
from labspin.schema import COLUMNS, DTYPES, RunInfo, now_iso, protocol_info

__all__ = ["Runner", "RunInfo", "Listener", "Clock", "DeviceState", "check_limits", "check_schedule"]


class Listener(_TypingProtocol):
    def on_start(self, info: RunInfo) -> None: ...
    def on_points(self, block: dict[str, np.ndarray]) -> None: ...   # keys = labspin.schema.COLUMNS
    def on_end(self, status: str, error: str | None) -> None: ...     # "completed" | "aborted" | "failed"


class Clock(_TypingProtocol):
    """The station's clock (``station.clock``): the runner's only notion of time."""
    virtual: bool                   # True: time passes only when advanced (a simulator); waits cost nothing
    def now(self) -> float: ...     # seconds, any origin
    def sleep(self, seconds: float) -> None: ...


class DeviceState(_TypingProtocol):
    """A station's device-state provider (``station.device_state``, None on a real bench): the
    state the run file stores at every flush and a resumed run restores."""
    def get_state(self) -> dict: ...                # JSON-able
    def set_state(self, state: dict) -> None: ...


class _Aborted(Exception):
    """Raised inside the loop when abort() was requested."""


class _Stopped(Exception):
    """Raised inside the loop when the protocol's stop rule says the run is over."""


def check_schedule(recipe: Any, limits: Any, start_index: int = 0,
                   hall_mode: str | None = None, host_timed: bool = False) -> None:
    """Refuse (UserError) a schedule that any step would violate the limits with.

    Works on the protocol's distinct schedule rows (`Protocol.distinct`), testing each distinct
    (current, width) pair once, so a 10⁹-pulse schedule is checked in milliseconds. Nothing is sent to any instrument. With
    ``hall_mode="pulse_delta"`` every read is a pulse too, checked as one: at its step's write
    width, or the lone-read width for a step without a write pulse (in a block such a read takes
    the block's write width, which the writes' check already covers). ``host_timed`` (a
    SourceMeter pulse source) also refuses widths under ``limits.min_smu_pulse_width``.
    """
    proto = recipe.protocol
    source = getattr(recipe, "path", None) or getattr(recipe, "name", "recipe")
    if hasattr(proto, "distinct"):      # the distinct rows of the schedule: cost independent of cycles
        a = proto.distinct(start_index)
        cur, wid, rd = (np.asarray(a[k], float) for k in ("pulse_current", "pulse_width", "read_current"))
        burst = np.asarray(a["burst"])
    else:
        steps = list(proto.steps(start_index))
        cur = np.array([s.pulse_current for s in steps], float)
        wid = np.array([s.pulse_width for s in steps], float)
        rd = np.array([s.read_current for s in steps], float)
        burst = np.array([getattr(s, "burst", 1) for s in steps])
    pulsed = cur != 0.0
    # a burst alternates sign: its pulses are ±pulse_current
    alt = pulsed & (burst > 1)
    cur_all = np.concatenate([cur[pulsed], -cur[alt]])
    wid_all = np.concatenate([wid[pulsed], wid[alt]])
    pairs = np.unique(np.stack([cur_all, wid_all], axis=1), axis=0) if pulsed.any() else []
    try:
        for c, w in pairs:
            limits.check_pulse(float(c), float(w))
            if host_timed and w < limits.min_smu_pulse_width:
                raise ValueError(f"pulse width {w:.4g} s is below min_smu_pulse_width "
                                 f"{limits.min_smu_pulse_width:.4g} s (a SourceMeter pulse is host-timed)")
        for r in np.unique(rd):
            limits.check_read(float(r))
        if hall_mode == "pulse_delta":
            from labspin.drivers.roles import pulse_delta_read_width
            rwid = np.where(pulsed, wid, pulse_delta_read_width(limits))
            for r, w in np.unique(np.stack([rd, rwid], axis=1), axis=0):
                limits.check_pulse(float(r), float(w))
    except ValueError as exc:           # LimitError is a ValueError
        raise UserError(f"{source}: schedule exceeds station limits: {exc}") from None


def check_limits(recipe: Any, spec: Any, limits: Any, start_index: int = 0) -> None:
    """Every limit check there is, before anything is sent: the dry-run's (which also checks
    |I|·R_xx against the compliance) where the station has a spec, then the schedule's."""
    mode, host_timed = None, False
    if spec is not None:
        from labspin.dryrun import check
        check(recipe, spec)
        mode = spec.hall_reader.mode
        source = spec.instruments.get(spec.pulse_source)
        if source is not None:          # a source without hardware-timed pulses (registry)
            from labspin.drivers import registry
            cap = registry.entry(source.driver).capabilities
            host_timed = cap is not None and cap.min_pulse_width is None
    check_schedule(recipe, limits, start_index, mode, host_timed)


def _error_text(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ").strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Runner:
    """Runs ``recipe`` on ``station``; see the module docstring for the safety model."""

    def __init__(self, station: Any, recipe: Any, listeners: list[Any], *,
                 start_index: int = 0, time_offset: float = 0.0,
                 block_points: int = 256, block_seconds: float = 0.05,
                 block_steps: int = 64, limits_checked: bool = False) -> None:
        self.station = station
        # True when the caller ran `check_limits` for this recipe, station and start index
        # already (`labspin.measure.prepare` does, before opening the station): checked once
        self.limits_checked = bool(limits_checked)
        self.recipe = recipe
        self.listeners = list(listeners)
        self.start_index = int(start_index)
        self.time_offset = float(time_offset)
        self.block_points = max(1, int(block_points))
        self.block_seconds = float(block_seconds)
        self.block_steps = max(1, int(block_steps))    # steps per hardware-timed block, at most
        self.state = "idle"
        self.error: str | None = None
        self.points_done = 0
        self.stop_reason: str | None = None   # set when the protocol's stop rule ended the run
        rule = getattr(getattr(recipe, "protocol", None), "stop_rule", None)
        self._stop_rule = rule() if rule is not None else None
        self._cond = threading.Condition()
        self._abort = False
        self._pause = False
        self._finishing = False

    # -- control (thread-safe) -------------------------------------------------------------
    def pause(self) -> None:
        """Stop at the next step boundary with outputs safe, until resume() or abort()."""
        with self._cond:
            self._pause = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._pause = False
            self._cond.notify_all()

    def abort(self) -> None:
        """Stop at the next step boundary; the run ends "aborted" after the shutdown."""
        with self._cond:
            self._abort = True
            self._cond.notify_all()

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> str:
        """Blocking. Returns the final status; UserError (nothing sent) if over the limits."""
        with self._cond:
            if self.state != "idle":
                raise RuntimeError(f"Runner.run: already {self.state}")
            self.state = "running"
        if not self.limits_checked:
            try:
                check_limits(self.recipe, getattr(self.station, "spec", None), self.station.limits,
                             self.start_index)
            except UserError:
                self.state = "failed"
                raise
            self.limits_checked = True
        restore = self._install_signals()
        status, error = "completed", None
        reraise: BaseException | None = None
        buf = _Buffer(self.block_points)
        try:
            self._start()
            self._loop(buf)
        except _Stopped:
            status, error = "completed", f"stopped: {self.stop_reason}"
        except (_Aborted, KeyboardInterrupt):
            status = "aborted"
        except BaseException as exc:         # noqa: BLE001 - every failure ends in shutdown
            status, error = "failed", _error_text(exc)
            if not isinstance(exc, Exception):
                reraise = exc                # SystemExit etc.: clean up, then let it go
        finally:
            status, error = self._finish(status, error, buf, restore)
        if reraise is not None:
            raise reraise
        return status

    def _start(self) -> None:
        st = self.station
        sample = dict(getattr(st, "sample", {}) or {})
        self.info = RunInfo(protocol=protocol_info(self.recipe), station=st.snapshot(), sample=sample,
                            total_points=len(self.recipe.protocol), start_index=self.start_index,
                            start_time=now_iso(), software_version=__version__)
        for lst in self.listeners:
            lst.on_start(self.info)

    def _loop(self, buf: "_Buffer") -> None:
        """Steps one by one: pulse, wait, read.

        A Hall reader with `run_block` (hardware-timed list sweeps) gets runs of steps instead:
        consecutive steps without a wait and with one write-pulse width go out as one block (at
        most one protocol cycle and `block_steps` steps, so abort/pause wait for at most one
        block); steps with a wait still run one by one. Each block point's time is the clock
        after the block minus the instrument's time stamps (the same time base). Points reach the
        listeners only at group boundaries, so a stored simulator state never runs ahead of the
        stored points (what `--resume` needs).
        """
        st = self.station
        pulse, read, now = st.pulse_source.pulse, st.hall_reader.read, st.clock.now
        run_block = getattr(st.hall_reader, "run_block", None)
        steps = self.recipe.protocol.steps(self.start_index)
        groups = (_blocks(steps, max(1, min(self.block_steps, buf.size))) if run_block is not None
                  else ([s] for s in steps))
        t0 = now()
        offset = self.time_offset
        idx = self.start_index
        last_emit = time.monotonic()
        for group in groups:
            if self._abort or self._pause:
                self._checkpoint(buf)
            if buf.n + len(group) > buf.size:
                self._emit(buf)
                last_emit = time.monotonic()
            if run_block is None or group[0].wait > 0 or getattr(group[0], "burst", 1) > 1:  # one step
                step = group[0]
                width = None         # a software-timed source returns the width that flowed
                if step.pulse_current != 0.0:
                    if getattr(step, "burst", 1) > 1:
                        self._burst(step)
                    else:
                        width = pulse(step.pulse_current, step.pulse_width)
                if step.wait > 0:
                    self._wait(step.wait)
                buf.add(idx, step, read(step.read_current), offset + now() - t0, width)
                idx += 1
            else:
                readings = run_block(group)
                if len(readings) != len(group):
                    raise RuntimeError(f"run_block returned {len(readings)} readings for {len(group)} steps")
                t_end = now() - t0
                ts_last = readings[-1].timestamp
                for step, r in zip(group, readings):
                    t = t_end if ts_last is None or r.timestamp is None \
                        else t_end - max(0.0, ts_last - r.timestamp)
                    buf.add(idx, step, r, offset + t)
                    idx += 1
            if buf.n >= buf.size or time.monotonic() - last_emit >= self.block_seconds:
                self._emit(buf)
                last_emit = time.monotonic()
        self._emit(buf)

    def _burst(self, step: Any) -> None:
        """`step.burst` write pulses alternating in sign, the last one `step.pulse_current`.

        A Hall reader or pulse source with ``burst(current, width, n)`` runs them as
        hardware-timed trains (the pulse_delta reader: 6221 list sweeps, the block mechanism of
        ``run_block``); otherwise they go pulse by pulse, checking for abort between pulses."""
        src = self.station.pulse_source
        burst = getattr(self.station.hall_reader, "burst", None) or getattr(src, "burst", None)
        if burst is not None:
            burst(step.pulse_current, step.pulse_width, int(step.burst))
            return
        for k in range(int(step.burst)):
            if self._abort:
                raise _Aborted
            sign = 1.0 if (step.burst - 1 - k) % 2 == 0 else -1.0
            src.pulse(sign * step.pulse_current, step.pulse_width)

    def _emit(self, buf: "_Buffer") -> None:
        if buf.n == 0:
            return
        block = buf.take()
        self.points_done += len(block["pulse_index"])
        for lst in self.listeners:
            lst.on_points(block)
        if self._stop_rule is not None:
            reason = self._stop_rule.update(block)
            if reason:
                self.stop_reason = reason
                raise _Stopped

    def _checkpoint(self, buf: "_Buffer") -> None:
        """Between steps: honour abort, or pause with outputs safe until resumed."""
        if self._abort:
            raise _Aborted
        self._emit(buf)                      # listeners see everything before the pause
        with self._cond:
            if not self._pause:
                return
        err = self._safe_shutdown()          # outputs off before anyone is told "paused"
        if err:
            raise RuntimeError(f"pause: shutdown failed: {err}")
        with self._cond:
            self.state = "paused"
            while self._pause and not self._abort:
                self._cond.wait(0.2)
            if self._abort:
                raise _Aborted
            self.state = "running"

    def _wait(self, seconds: float) -> None:
        """Wait before a read; in slices on a real clock so abort() stays responsive."""
        clock = self.station.clock
        if clock.virtual:
            clock.sleep(seconds)             # virtual clock: instantaneous
            return
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            if self._abort:
                raise _Aborted
            clock.sleep(min(left, 0.1))

    def _safe_shutdown(self) -> str | None:
        try:
            self.station.shutdown()
        except BaseException as exc:         # noqa: BLE001 - contract says never raises; be sure
            return _error_text(exc)
        return None

    def _finish(self, status: str, error: str | None, buf: "_Buffer", restore) -> tuple[str, str | None]:
        """The one shutdown routine, then the last points and on_end for every listener."""
        self._finishing = True
        held = _hold_signals()
        try:
            shut_err = self._safe_shutdown()
            if shut_err and status != "failed":
                status, error = "failed", f"shutdown: {shut_err}"
            if buf.n:
                block = buf.take()
                self.points_done += len(block["pulse_index"])
                for lst in self.listeners:
                    try:
                        lst.on_points(block)
                    except Exception as exc:  # noqa: BLE001
                        if status != "failed":
                            status, error = "failed", _error_text(exc)
            for lst in self.listeners:
                try:
                    lst.on_end(status, error)
                except Exception as exc:      # noqa: BLE001
                    if status != "failed":
                        status, error = "failed", _error_text(exc)
        finally:
            _release_signals(held)
            restore()
            with self._cond:
                self.state = status
                self.error = error
        return status, error

    def _install_signals(self):
        """In the main thread, Ctrl-C and SIGTERM request an abort instead of unwinding."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {}

        def handler(signum, frame):
            if self._finishing:                           # shutdown under way: nothing to do
                return
            if self._abort and signum == signal.SIGINT:   # second Ctrl-C: unwind now
                raise KeyboardInterrupt
            self.abort()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass

        def restore():
            for sig, h in old.items():
                signal.signal(sig, h)
        return restore


def _hold_signals():
    """Block SIGINT/SIGTERM during the shutdown (main thread only); returns what to restore."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, OSError, ValueError):
        return None


def _release_signals(held) -> None:
    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _blocks(steps: Iterator[Any], limit: int) -> Iterator[list[Any]]:
    """Group steps for `run_block`: no waits, one write width (read-only steps join any block),
    one protocol cycle, at most `limit` steps. A step with a wait or a burst is a group of its own."""
    group: list[Any] = []
    width = None
    for s in steps:
        if s.wait > 0 or getattr(s, "burst", 1) > 1:
            if group:
                yield group
                group, width = [], None
            yield [s]
            continue
        w = s.pulse_width if s.pulse_current != 0.0 else None
        if group and (len(group) >= limit or s.cycle != group[0].cycle
                      or (w is not None and width is not None and w != width)):
            yield group
            group, width = [], None
        group.append(s)
        if w is not None:
            width = w
    if group:
        yield group


class _Buffer:
    """Preallocated column arrays for one block of points."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.n = 0
        self._alloc()

    def _alloc(self) -> None:
        s = self.size
        self.cols = {name: np.empty(s, DTYPES[name]) for name in COLUMNS}

    def add(self, idx: int, step: Any, reading: Any, t: float, width: float | None = None) -> None:
        i = self.n
        c = self.cols
        c["pulse_index"][i] = idx
        c["cycle"][i] = step.cycle
        c["step"][i] = step.step
        c["pulse_current"][i] = step.pulse_current
        c["pulse_width"][i] = step.pulse_width if width is None else width
        c["read_current"][i] = reading.read_current
        c["hall_voltage"][i] = reading.hall_voltage
        c["hall_resistance"][i] = reading.hall_resistance
        c["time"][i] = t
        self.n = i + 1

    def take(self) -> dict[str, np.ndarray]:
        n = self.n
        block = {name: self.cols[name][:n] for name in COLUMNS}
        self._alloc()
        self.n = 0
        return block
