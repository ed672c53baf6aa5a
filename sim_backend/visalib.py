"""The PyVISA library that serves a SimBench, so unmodified pyvisa/pymeasure code talks to it.

pyvisa caches a ``VisaLibraryBase`` per (class, library_path), so every bench creates its library
under its own unique path (``labspin-sim-<n>-<id>``) and sets ``lib.bench`` afterwards.
Replies end with the session's termination character when one is enabled
(pymeasure's Keithley2182 sets ``read_termination='\\r'``), else with ``\\n`` (GPIB LF + EOI).
"""
from __future__ import annotations

import random
from typing import Any, SupportsInt

from pyvisa import constants, errors, highlevel, rname
from pyvisa.constants import ResourceAttribute as RA
from pyvisa.constants import StatusCode
from pyvisa.util import LibraryPath

__all__ = ["SimVisaLibrary"]

_WRITE_TERMS = ("\r\n", "\n", "\r")


class _Session:
    __slots__ = ("inst", "name", "parsed", "attrs", "pending")

    def __init__(self, inst, name: str, parsed) -> None:
        self.inst = inst
        self.name = name
        self.parsed = parsed
        self.pending = b""
        self.attrs: dict[Any, Any] = {
            RA.timeout_value: 2000,
            RA.termchar: ord("\n"),
            RA.termchar_enabled: False,
            RA.send_end_enabled: True,
            RA.suppress_end_enabled: False,
            RA.resource_name: name,
            RA.resource_class: "INSTR",
            RA.interface_type: constants.InterfaceType.gpib,
            RA.interface_number: int(getattr(parsed, "board", 0) or 0),
            RA.gpib_primary_address: int(getattr(parsed, "primary_address", 0) or 0),
            RA.gpib_secondary_address: constants.VI_NO_SEC_ADDR,
            RA.io_prot: constants.IOProtocol.normal,
            RA.dma_allow_enabled: False,
            RA.resource_manufacturer_name: "labspin",
            RA.resource_impl_version: 1,
            RA.resource_lock_state: constants.AccessModes.no_lock,
            RA.gpib_unadress_enable: False,
            RA.gpib_readdress_enabled: True,
        }


class _IgnoreWarning:
    """`VisaLibraryBase.ignore_warning` as a plain context manager: pyvisa enters it on every
    read, and the generator-based original cost a tenth of a one-step run's host time on the
    simulator (`benchmarks/bench_run.py`, py-spy). Same effect; the set is restored on errors too."""
    __slots__ = ("ignored", "codes")

    def __init__(self, ignored: set, codes: tuple) -> None:
        self.ignored, self.codes = ignored, codes

    def __enter__(self) -> None:
        self.ignored.update(self.codes)

    def __exit__(self, *exc: Any) -> None:
        self.ignored.difference_update(self.codes)


class SimVisaLibrary(highlevel.VisaLibraryBase):
    """A ``VisaLibraryBase`` whose resources are the instruments of one :class:`SimBench`."""

    bench: Any = None

    def ignore_warning(self, session, *warnings_constants: StatusCode) -> _IgnoreWarning:
        return _IgnoreWarning(self._ignore_warning_in_session[session], warnings_constants)

    @staticmethod
    def get_library_paths():
        return (LibraryPath("labspin-sim"),)

    @staticmethod
    def get_debug_info():
        return {"backend": "labspin simulated bench"}

    def _init(self) -> None:
        self.sessions: dict[int, Any] = {}

    # the bench's virtual clock, for drivers that time things themselves (host-timed pulses,
    # settling): they find `now`/`sleep` on the library and never reach into the bench
    def now(self) -> float:
        return self.bench.clock.now

    def sleep(self, seconds: float) -> None:
        self.bench.clock.advance(seconds)

    def _register(self, obj) -> int:
        while True:
            s = random.randint(1_000_000, 9_999_999)
            if s not in self.sessions:
                self.sessions[s] = obj
                return s

    # ---- resource manager ------------------------------------------------------------------
    def open_default_resource_manager(self):
        return self._register(self), StatusCode.success

    def list_resources(self, session, query: str = "?*::INSTR"):
        names = tuple(self.bench.addresses.values()) if self.bench is not None else ()
        found = rname.filter(names, query)
        if found:
            return found
        raise errors.VisaIOError(StatusCode.error_resource_not_found)

    def open(self, session, resource_name: str,
             access_mode: constants.AccessModes = constants.AccessModes.no_lock,
             open_timeout: SupportsInt = constants.VI_TMO_IMMEDIATE):
        try:
            parsed = rname.parse_resource_name(resource_name)
        except rname.InvalidResourceName:
            self.handle_return_value(None, StatusCode.error_invalid_resource_name)
            raise  # pragma: no cover  (handle_return_value raised)
        try:
            inst = self.bench.instrument(str(parsed))
        except (KeyError, AttributeError):
            try:
                inst = self.bench.instrument(resource_name)
            except (KeyError, AttributeError):
                raise errors.VisaIOError(StatusCode.error_resource_not_found) from None
        sess = _Session(inst, str(parsed), parsed)
        return self._register(sess), StatusCode.success

    def close(self, session):
        if self.sessions.pop(session, None) is None:
            return StatusCode.error_invalid_object
        return StatusCode.success

    # ---- message I/O -----------------------------------------------------------------------
    def _sess(self, session) -> _Session:
        try:
            s = self.sessions[session]
        except KeyError:
            raise errors.VisaIOError(StatusCode.error_invalid_object) from None
        if not isinstance(s, _Session):
            raise errors.VisaIOError(StatusCode.error_nonsupported_operation)
        return s

    def write(self, session, data: bytes):
        s = self._sess(session)
        msg = data.decode("ascii", "replace")
        if msg.endswith(_WRITE_TERMS):           # one termination: \r\n, \n or \r
            msg = msg[:-2] if msg.endswith("\r\n") else msg[:-1]
        s.pending = b""  # a new command discards an unread reply (IEEE 488.2 "query interrupted")
        s.inst.write(msg)
        return len(data), StatusCode.success

    def read(self, session, count: int):
        s = self._sess(session)
        buf = s.pending
        if not buf:
            attrs = s.attrs
            term = chr(attrs[RA.termchar]) if attrs[RA.termchar_enabled] else "\n"
            buf = (s.inst.read() + term).encode("ascii", "replace")
        if len(buf) > count:
            s.pending = buf[count:]
            return buf[:count], StatusCode.success_max_count_read
        s.pending = b""
        if s.attrs[RA.termchar_enabled]:
            return buf, StatusCode.success_termination_character_read
        return buf, StatusCode.success

    def clear(self, session):
        s = self._sess(session)
        s.pending = b""
        s.inst.clear()
        return StatusCode.success

    def flush(self, session, mask):
        s = self._sess(session)
        if int(mask) & int(constants.BufferOperation.discard_read_buffer):
            s.pending = b""
        return StatusCode.success

    def assert_trigger(self, session, protocol):
        self._sess(session).inst.trigger()
        return StatusCode.success

    def read_stb(self, session):
        return self._sess(session).inst.stb(), StatusCode.success

    def gpib_control_ren(self, session, mode):
        return StatusCode.success

    # ---- attributes and events -------------------------------------------------------------
    def get_attribute(self, session, attribute):
        obj = self.sessions.get(session)
        if obj is None:
            raise errors.VisaIOError(StatusCode.error_invalid_object)
        if not isinstance(obj, _Session):
            return None, StatusCode.error_nonsupported_attribute
        if attribute in obj.attrs:
            return obj.attrs[attribute], StatusCode.success
        raise errors.VisaIOError(StatusCode.error_nonsupported_attribute)

    def set_attribute(self, session, attribute, attribute_state):
        obj = self.sessions.get(session)
        if obj is None:
            raise errors.VisaIOError(StatusCode.error_invalid_object)
        if isinstance(obj, _Session):
            obj.attrs[attribute] = attribute_state
        return StatusCode.success

    def enable_event(self, session, event_type, mechanism, context=None):
        return StatusCode.success

    def disable_event(self, session, event_type, mechanism):
        return StatusCode.success

    def discard_events(self, session, event_type, mechanism):
        return StatusCode.success

    def wait_on_event(self, session, in_event_type, timeout):
        """Service requests only: returns at once if the instrument's STB has RQS, else times out."""
        s = self._sess(session)
        if s.inst.stb() & 0x40:
            return in_event_type, None, StatusCode.success
        raise errors.VisaIOError(StatusCode.error_timeout)

    def lock(self, session, lock_type, timeout, requested_key=None):
        return "", StatusCode.success

    def unlock(self, session):
        return StatusCode.success

    def uninstall_all_visa_handlers(self, session) -> None:
        return None
