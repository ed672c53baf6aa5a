"""The bus transcript: every VISA message of a session, one per line, as the instruments saw it.

Hooked on each pymeasure adapter (its ``write``/``read`` and their byte forms), so it is the same on
a real bench and on the simulator::

    0.000000 GPIB0::12::INSTR > *IDN?
    0.000000 GPIB0::12::INSTR < KEITHLEY INSTRUMENTS INC.,MODEL 6221,4115312,D03  /700x
    0.041200 GPIB0::12::INSTR ! VisaIOError: VI_ERROR_TMO (-1073807339): Timeout expired before ...

``>`` a message written, ``<`` a reply read, ``!`` a read or write that failed (the next line the
program sees is its own recovery). Seconds are on the station's clock (virtual on the simulator)
since the transcript started. An instrument opened under `constructing` is recorded from its
first message, what its pymeasure class writes while it is constructed included (the 2400's
``:FORM:ELEM``). `read_bus_log` parses a transcript back.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from labspin.errors import UserError
from labspin.outputs import check_output_file

_WRAPPED = ("write", "read", "write_bytes", "read_bytes")
_CONSTRUCTING = threading.Lock()


@dataclass(frozen=True)
class BusLine:
    time: float
    resource: str
    direction: str        # ">" written, "<" read, "!" failed
    message: str


def _one_line(text: Any) -> str:
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("ascii", errors="backslashreplace")
    return str(text).rstrip("\r\n").replace("\r", "\\r").replace("\n", "\\n")


class BusLog:
    """Writes the transcript to ``path``; `attach` an instrument to record its traffic."""

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        p = Path(path)
        check_output_file(p, overwrite=overwrite, label="bus log")
        try:
            self._file: TextIO | None = open(p, "w", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise UserError(f"{path}: cannot write the bus log: {exc.strerror or exc}") from None
        self.path = str(p)
        self._lock = threading.Lock()
        self._clock = clock
        self._t0 = clock()
        self._lines = 0

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Count on ``clock`` (the station's: virtual on the simulator) from now; from 0 if no
        message was recorded yet, else continuing the times written so far."""
        with self._lock:
            elapsed = self._clock() - self._t0 if self._lines else 0.0
            self._clock = clock
            self._t0 = clock() - elapsed

    def record(self, resource: str, direction: str, message: Any) -> None:
        with self._lock:
            if self._file is None:
                return
            self._file.write(f"{self._clock() - self._t0:.6f} {resource} {direction} "
                             f"{_one_line(message)}\n")
            self._lines += 1

    def attach(self, inst: Any, resource: str | None = None) -> None:
        """Record every message of a pymeasure instrument (its adapter's I/O)."""
        self._attach_adapter(inst.adapter, resource)

    @contextmanager
    def constructing(self, resource: str):
        """Record the adapters pymeasure creates inside the block from their first message: a
        pymeasure class makes its adapter and may write in its constructor, before `attach` could
        see it. (pymeasure builds the adapter from the class's own keywords — termination
        characters and the like — so labspin cannot hand it a recorded one.)"""
        from pymeasure.adapters import VISAAdapter

        with _CONSTRUCTING:                   # one construction at a time patches the class
            init = VISAAdapter.__init__

            def recorded_init(adapter: Any, *args: Any, **kwargs: Any) -> None:
                init(adapter, *args, **kwargs)
                self._attach_adapter(adapter, resource)

            VISAAdapter.__init__ = recorded_init
            try:
                yield
            finally:
                VISAAdapter.__init__ = init

    def _attach_adapter(self, adapter: Any, resource: str | None) -> None:
        if any(getattr(getattr(adapter, n, None), "__labspin_bus_log__", None) is self
               for n in _WRAPPED):
            return                            # attached while it was constructed
        resource = resource or getattr(getattr(adapter, "connection", None), "resource_name", None) \
            or repr(adapter)
        for name in _WRAPPED:
            original = getattr(adapter, name, None)
            if original is not None:
                setattr(adapter, name, self._wrap(original, resource, name.startswith("write")))

    def _wrap(self, original: Callable, resource: str, is_write: bool) -> Callable:
        def logged(*args: Any, **kwargs: Any) -> Any:
            if is_write:
                self.record(resource, ">", args[0] if args else kwargs.get("command",
                                                                             kwargs.get("content")))
            try:
                reply = original(*args, **kwargs)
            except Exception as exc:
                self.record(resource, "!", f"{type(exc).__name__}: {exc}")
                raise
            if not is_write:
                self.record(resource, "<", reply)
            return reply
        logged.__wrapped__ = original
        logged.__labspin_bus_log__ = self
        return logged

    def close(self) -> None:
        """Close the file; one that recorded nothing (no instrument was reached) is removed."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                if not self._lines:
                    Path(self.path).unlink(missing_ok=True)


def read_bus_log(path: str | os.PathLike) -> list[BusLine]:
    """Parse a transcript; UserError naming the line for anything that is not one."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split(" ", 3)
            if len(parts) < 3 or parts[2] not in "><!" or len(parts[2]) != 1:
                raise UserError(f"{path}:{n}: not a bus-log line: {line.strip()[:80]!r}")
            try:
                t = float(parts[0])
            except ValueError:
                raise UserError(f"{path}:{n}: bad time {parts[0]!r}") from None
            out.append(BusLine(t, parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
    return out
