"""The run file: one HDF5 file per run (DESIGN.md §3.3), written as a runner listener, read back.

Written with h5py, ``libver="latest"``; every group and dataset is created before
``swmr_mode = True`` so that readers (the GUI, ``labspin info``) can follow a run live, then
points are appended in blocks (``resize``, write, ``flush``). Everything that changes after the
switch to SWMR (status, error, end time, heartbeat, the simulator's device state) lives in a
pre-created fixed-size dataset, because SWMR forbids creating objects or attributes later.

How a reader tells "interrupted" (status still "running" but nobody writing): the writer
stamps ``entry/heartbeat`` = [Unix time, points written] at every flush, and a background
thread keeps stamping it while the run idles (at least every ``min(flush_interval / 2, 1 s)``),
so a live file never has an old heartbeat. A heartbeat older than ``3 * flush_interval + 1 s``
means the writer is gone; on the same host a writer process that no longer exists
(``entry/@writer_host``, ``@writer_pid``) is reported at once.

Resume point: the longest prefix complete in every column (``pulse_index`` is pre-filled with
-1, so unwritten rows show), not past the points count of the last heartbeat and, on the
simulator, not past the point at which the device state (``entry/sample/sim_state``,
zlib-compressed JSON of the station's device state, stored at every data flush) was taken.
Rows after it are dropped, the state is restored, and the run continues from there, so the
resumed file is the run that would have happened without the kill.

A hard kill leaves the superblock's "open for SWMR write" flag set; HDF5 then opens the file
only in SWMR-read mode (``h5py.File(p, "r", libver="latest", swmr=True)``), which is what
``read_run`` always uses. ``RunWriter(resume=True)`` clears the flag exactly like
``h5clear -s`` (:mod:`labspin.superblock`) and reopens the file in append mode.
"""
from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import h5py
import numpy as np
import pandas as pd

from labspin.errors import OutputExists, UserError
from labspin.schema import COLUMNS, DTYPES, UNITS, now_iso  # noqa: F401 - the store's names too
from labspin.superblock import clear_consistency_flags, superblock_flags

FILE_FORMAT = "labspin-run/1"
#: quantities the signal column (dataset ``hall_resistance``) may hold; its ``@quantity`` and
#: ``@units`` say which (absent in older files: hall_resistance in ohm)
SIGNAL_QUANTITIES = {"hall_resistance": "ohm", "resistance": "ohm", "conductance": "S",
                     "current": "A"}
CHUNK = 1024
# gzip 1 + shuffle: 3.2x smaller (64 -> 20 B/point) at the run's write rate, readable by every
# HDF5 tool (lzf needs h5py's plugin); measured in benchmarks/bench_store.py --compression
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
STATUS_LEN, ERROR_LEN, TIME_LEN = 16, 4096, 40
STATUSES = ("running", "completed", "aborted", "failed")


def _s(value: Any) -> str:
    """Decode an h5py scalar string (bytes or str) and strip fixed-length padding."""
    if isinstance(value, np.ndarray):
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("utf-8", "replace")
    return str(value).rstrip("\x00").strip()


def _fixed(text: str | None, length: int) -> np.bytes_:
    raw = (text or "").replace("\n", " ").encode("utf-8")[:length]
    return np.bytes_(raw)


# ---------------------------------------------------------------------------------------------
# writer

def _json(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    return str(obj)


_GEOMETRY_UNITS = {"width": "m", "thickness": "m", "length": "m", "channel_width": "m"}


class RunWriter:
    """Runner listener that writes the run file (SWMR, block appends, periodic flush).

    ``state_provider`` (optional) returns a JSON-able device state (a station's
    ``device_state.get_state``, on the simulator); it is called in the runner thread at every flush and stored with
    the number of points it belongs to, so ``--resume`` restores the device exactly there.
    ``invocation`` (optional, JSON-able) records how the run was started (recipe, overrides,
    station/sim spec) so that ``labspin run --resume`` can rebuild it.
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False,
                 flush_interval: float = 0.5, resume: bool = False,
                 state_provider: Callable[[], dict] | None = None,
                 invocation: dict | None = None,
                 quantity: tuple[str, str] = ("hall_resistance", "ohm")) -> None:
        self.path = str(path)
        self.quantity = quantity        # (name, unit) of the signal column (see SIGNAL_QUANTITIES)
        if not (isinstance(flush_interval, (int, float)) and math.isfinite(flush_interval)
                and flush_interval > 0):
            raise UserError(f"flush_interval: must be a positive number of seconds, got {flush_interval!r}")
        self.flush_interval = float(flush_interval)
        self.overwrite = overwrite
        self.resume = resume
        self.state_provider = state_provider
        self.invocation = invocation
        self._f: h5py.File | None = None
        self._cols: dict[str, h5py.Dataset] = {}
        self._n = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_flush = 0.0
        self._last_state_flush = 0.0
        self.start_index = 0
        self.time_offset = 0.0
        self.sim_state: dict | None = None
        p = Path(self.path)
        if resume:
            point = resume_point(self.path)     # validates: labspin file, interrupted
            self.start_index, self.time_offset, self.sim_state = point
        else:
            from labspin.outputs import check_output_file
            check_output_file(p, overwrite=overwrite)      # the one output rule (labspin.outputs)

    # -- listener interface ----------------------------------------------------------------
    def on_start(self, info: Any) -> None:
        with self._lock:
            if self.resume:
                self._reopen(info)
            else:
                self._create(info)
            self._f.swmr_mode = True
            self._flush_now(state=True)
            self._thread = threading.Thread(target=self._heartbeat, name="labspin-heartbeat",
                                            daemon=True)
            self._thread.start()

    def on_points(self, block: dict[str, np.ndarray]) -> None:
        with self._lock:
            if self._f is None:
                raise RuntimeError("RunWriter.on_points before on_start")
            m = len(block["pulse_index"])
            if m == 0:
                return
            n = self._n
            for name in COLUMNS:
                ds = self._cols[name]
                ds.resize((n + m,))
                ds[n:n + m] = block[name]
            self._n = n + m
            if time.monotonic() - self._last_state_flush >= self.flush_interval:
                self._flush_now(state=True)

    def on_end(self, status: str, error: str | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._f is None:
                return
            end = now_iso()
            entry = self._f["entry"]
            entry["status"][()] = _fixed(status, STATUS_LEN)
            entry["error"][()] = _fixed(error, ERROR_LEN)
            entry["end_time"][()] = _fixed(end, TIME_LEN)
            self._flush_now(state=True)
            self._f.close()
            self._f = None
        # NeXus wants @end_time on the entry; attributes cannot change under SWMR, so set it
        # after closing. Best effort: a reader holding the file open may block the reopen.
        try:
            with h5py.File(self.path, "a", libver="latest") as f:
                f["entry"].attrs["end_time"] = end
        except OSError:
            pass

    def close(self) -> None:
        """Close without a final status (the file then reads as interrupted)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None

    # -- internals -------------------------------------------------------------------------
    def _flush_now(self, *, state: bool) -> None:
        if state and self.state_provider is not None:
            entry = self._f["entry"]
            raw = np.frombuffer(zlib.compress(_json(self.state_provider()).encode()), np.uint8)
            ds = entry["sample/sim_state"]
            if ds.shape[0] < raw.size:
                ds.resize((raw.size,))
            ds[:raw.size] = raw
            entry["sample/sim_state_meta"][...] = (raw.size, self._n)
        # one small dataset, so a durable flush costs one extra metadata write
        self._beat[...] = (time.time(), self._n)
        self._f.flush()
        self._last_flush = time.monotonic()
        if state:
            self._last_state_flush = self._last_flush

    def _heartbeat(self) -> None:
        period = min(max(self.flush_interval / 2, 0.01), 1.0)
        while not self._stop.wait(period):
            with self._lock:
                if self._f is None:
                    return
                if time.monotonic() - self._last_flush >= period:
                    self._flush_now(state=False)

    def _stamp_writer(self, entry: h5py.Group) -> None:
        entry.attrs["writer_host"] = socket.gethostname()
        entry.attrs["writer_pid"] = os.getpid()
        entry.attrs["flush_interval"] = self.flush_interval

    def _create(self, info: Any) -> None:
        if Path(self.path).exists() and not self.overwrite:     # appeared since __init__
            raise OutputExists(self.path, "exists", " to replace it")
        try:
            f = h5py.File(self.path, "w", libver="latest")
        except OSError as exc:
            raise UserError(f"{self.path}: cannot create: {exc}") from None
        self._f = f
        protocol = info.protocol
        f.attrs.update(NX_class="NXroot", default="entry", file_format=FILE_FORMAT,
                       software_version=info.software_version, creator="labspin",
                       HDF5_Version=h5py.version.hdf5_version, h5py_version=h5py.version.version,
                       file_time=now_iso(), file_name=os.path.basename(self.path))
        entry = f.create_group("entry")
        entry.attrs.update(NX_class="NXentry", default="data", start_time=info.start_time)
        self._stamp_writer(entry)
        entry["title"] = protocol["name"]
        entry["start_time"] = info.start_time
        entry.create_dataset("end_time", data=_fixed("", TIME_LEN), dtype=f"S{TIME_LEN}")
        entry.create_dataset("status", data=_fixed("running", STATUS_LEN), dtype=f"S{STATUS_LEN}")
        entry.create_dataset("error", data=_fixed("", ERROR_LEN), dtype=f"S{ERROR_LEN}")
        entry.create_dataset("heartbeat", data=np.array([time.time(), 0.0]), dtype="f8")
        entry["heartbeat"].attrs["fields"] = "unix_time_s, points_written"
        self._beat = entry["heartbeat"]
        entry.create_dataset("total_points", data=int(info.total_points), dtype="i8")
        entry["invocation"] = _json(self.invocation or {})

        proto = entry.create_group("protocol")
        proto.attrs.update(NX_class="NXcollection", name=protocol["name"], kind=protocol["kind"])
        proto["recipe"] = protocol["recipe"]
        proto["parameters"] = _json(protocol["parameters"])
        if protocol.get("recipe_path"):
            proto.attrs["recipe_path"] = str(protocol["recipe_path"])

        inst = entry.create_group("instrument")
        inst.attrs["NX_class"] = "NXinstrument"
        inst["station"] = _json(info.station)

        sample = entry.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        sdict = dict(info.sample or {})
        sample["description"] = _json(sdict)
        sample.create_dataset("sim_state", shape=(0,), maxshape=(None,), chunks=(8192,),
                              dtype="u1")
        sample["sim_state"].attrs["encoding"] = "zlib-compressed JSON of the device state"
        sample.create_dataset("sim_state_meta", data=np.array([0, -1]), dtype="i8")
        sample["sim_state_meta"].attrs["fields"] = "size_bytes, points"
        for key, value in sdict.items():       # scalar fields (id, type, geometry) for NeXus tools
            key = str(key)
            if (isinstance(value, (str, int, float, bool, np.generic)) and key not in sample
                    and "/" not in key):
                sample[key] = value
                if key in _GEOMETRY_UNITS:
                    sample[key].attrs["units"] = _GEOMETRY_UNITS[key]

        data = entry.create_group("data")
        data.attrs.update(NX_class="NXdata", signal="hall_resistance", axes="pulse_index",
                          pulse_index_indices=0)
        for name in COLUMNS:
            ds = data.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(CHUNK,),
                                     dtype=DTYPES[name], **COMPRESSION,
                                     fillvalue=-1 if name == "pulse_index" else 0)
            ds.attrs["units"] = UNITS[name]
            self._cols[name] = ds
        # what the signal column holds: R_H in ohm for a measured run; an imported run may carry
        # another quantity (conductance in uS, ...) under the same dataset name
        qname, qunit = self.quantity
        data["hall_resistance"].attrs.update(quantity=qname, units=qunit)
        data.attrs["quantity"] = qname
        self._n = 0

    def _reopen(self, info: Any) -> None:
        if info.start_index != self.start_index:
            raise RuntimeError(f"resume: runner starts at {info.start_index}, file at {self.start_index}")
        # Re-check under the same conditions as __init__ (nobody started writing meanwhile).
        self.start_index, self.time_offset, self.sim_state = resume_point(self.path)
        clear_consistency_flags(self.path)
        try:
            f = h5py.File(self.path, "a", libver="latest")
        except OSError as exc:
            raise UserError(f"{self.path}: cannot reopen for resume: {exc}") from None
        self._f = f
        entry = f["entry"]
        self._stamp_writer(entry)
        entry.attrs["resumed_at"] = np.append(entry.attrs.get("resumed_at", np.array([], "S40")),
                                              np.bytes_(now_iso()))
        n = self.start_index
        for name in COLUMNS:
            ds = entry["data"][name]
            ds.resize((n,))                 # drop any rows past the consistent resume point
            self._cols[name] = ds
        self._n = n
        entry["status"][()] = _fixed("running", STATUS_LEN)
        entry["error"][()] = _fixed("", ERROR_LEN)
        entry["end_time"][()] = _fixed("", TIME_LEN)
        self._beat = entry["heartbeat"]
        self._beat[...] = (time.time(), n)


# ---------------------------------------------------------------------------------------------
# reader

@dataclass
class RunFile:
    path: str
    status: str
    error: str | None
    interrupted: bool                 # status "running" but nobody writing
    protocol: dict                    # {"name", "kind", "parameters"}
    recipe: str
    station: dict
    sample: dict
    start_time: str
    end_time: str | None
    data: pd.DataFrame                # COLUMNS
    total_points: int | None = None
    software_version: str = ""
    invocation: dict = field(default_factory=dict)
    quantity: str = "hall_resistance"     # what the signal column holds (files before: always R_H)
    unit: str = "ohm"
    points: int = 0                       # rows written (== len(data) unless read with data=False)


def _open(path: str | os.PathLike) -> h5py.File:
    """Open for reading in SWMR mode (works for live, finished and killed files)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such file")
    if p.is_dir():
        raise UserError(f"{path}: is a directory, not a run file")
    try:
        if not h5py.is_hdf5(str(p)):
            raise UserError(f"{path}: not an HDF5 file")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    if superblock_flags(p):
        # open for (SWMR) write, or left so by a killed writer: follow it in SWMR-read mode
        try:
            f = h5py.File(str(p), "r", libver="latest", swmr=True)
        except (OSError, RuntimeError) as exc:
            raise UserError(f"{path}: unreadable HDF5 file: {_one_line(exc)}") from None
    else:
        # a closed file: a plain open, in which libhdf5 checks truncation at once (an SWMR
        # reader would retry a damaged file's metadata for minutes instead)
        try:
            f = h5py.File(str(p), "r")
        except (OSError, RuntimeError) as exc:
            raise UserError(f"{path}: unreadable HDF5 file: {_one_line(exc)}") from None
    try:
        fmt = _s(f.attrs.get("file_format", ""))
        labspin = fmt == FILE_FORMAT and "entry/data" in f
    except (KeyError, *_DAMAGE) as exc:          # h5py: KeyError on a bad object header too
        f.close()
        raise UserError(f"{path}: damaged run file: {_one_line(exc)}") from None
    if not labspin:
        f.close()
        raise UserError(f"{path}: not a labspin run file (file_format {fmt or 'none'!r}, expected {FILE_FORMAT!r})")
    return f


@contextmanager
def _reading(path: str | os.PathLike) -> Iterator[h5py.File]:
    """The run file open for reading (`_open`); a missing object or damage inside it becomes one
    UserError line naming the file, and the file is closed on every path."""
    f = _open(path)
    try:
        yield f
    except KeyError as exc:
        raise UserError(f"{path}: labspin run file is missing {_missing(exc)}") from None
    except _DAMAGE as exc:
        raise UserError(f"{path}: damaged run file: {_one_line(exc)}") from None
    finally:
        f.close()


def _refresh(ds: h5py.Dataset) -> h5py.Dataset:
    try:
        ds.refresh()
    except (ValueError, RuntimeError, OSError):   # not in SWMR mode: nothing to refresh
        pass
    return ds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _writer_gone(entry: h5py.Group) -> bool:
    """True when a "running" file has no live writer (see the module docstring)."""
    interval = float(entry.attrs.get("flush_interval", 0.5))
    host = _s(entry.attrs.get("writer_host", ""))
    pid = int(entry.attrs.get("writer_pid", 0))
    if host == socket.gethostname() and pid > 0 and pid != os.getpid() and not _pid_alive(pid):
        return True
    beat = float(_refresh(entry["heartbeat"])[0])
    return time.time() - beat > 3 * interval + 1.0


def _load_json(group: h5py.Group, name: str) -> Any:
    if name not in group:
        return {}
    try:
        return json.loads(_s(group[name][()]))
    except (ValueError, TypeError):
        return {}


def _columns(data: h5py.Group, names=COLUMNS) -> tuple[dict[str, h5py.Dataset], int]:
    """The column datasets (checked) and the number of rows written: rows not yet written carry
    the fill value pulse_index = -1 at the tail, found by bisection (a few single-row reads)."""
    cols = {name: _refresh(data[name]) for name in dict.fromkeys(("pulse_index", *names))}
    for name, ds in cols.items():
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "iuf":
            what = getattr(ds, "dtype", type(ds).__name__)
            raise ValueError(f"/entry/data/{name}: expected a 1-D numeric column, got {what} "
                             f"of shape {getattr(ds, 'shape', '?')}")
    n = min(ds.shape[0] for ds in cols.values())
    index = cols["pulse_index"]
    lo, hi = 0, n                               # rows [0, lo) written; [hi, n) fill
    while lo < hi:
        mid = (lo + hi) // 2
        if index[mid] < 0:
            hi = mid
        else:
            lo = mid + 1
    return cols, lo


def _read_columns(data: h5py.Group) -> pd.DataFrame:
    cols, n = _columns(data)
    frame = pd.DataFrame({name: ds[:n] for name, ds in cols.items()}, columns=list(COLUMNS))
    bad = np.flatnonzero(frame["pulse_index"].to_numpy() < 0)   # a stray fill row (killed writer)
    if bad.size:
        frame = frame.iloc[:bad[0]]
    return frame


def count_points(path: str | os.PathLike) -> int:
    """Points written to a run file, without reading its data."""
    with _reading(path) as f:
        return _columns(f["entry"]["data"], ("pulse_index",))[1]


def iter_data(path: str | os.PathLike, columns=COLUMNS, *, block: int = 1 << 20,
              step: int = 1):
    """The data of a run file as DataFrames of at most `block` rows (every `step`-th row): memory
    bounded by the block whatever the run's length (`labspin info`, the GUI browser)."""
    if step < 1 or block < 1:
        raise ValueError("iter_data: block and step must be >= 1")
    names = list(columns)
    with _reading(path) as f:
        cols, n = _columns(f["entry"]["data"], names)
        span = block * step
        for start in range(0, n, span):
            stop = min(n, start + span)
            yield pd.DataFrame({name: cols[name][start:stop:step] for name in names}, columns=names)


def read_decimated(path: str | os.PathLike, max_points: int, columns=COLUMNS) -> tuple[pd.DataFrame, int]:
    """Every k-th point of a run, k the smallest step that keeps at most `max_points`; (data, k)."""
    n = count_points(path)
    k = max(1, math.ceil(n / max(1, max_points)))
    parts = list(iter_data(path, columns, step=k))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))
    return data, k


def read_run(path: str | os.PathLike, *, data: bool = True) -> RunFile:
    """Read a run file: completed, aborted, failed, interrupted, or being written right now.
    ``data=False``: the header only (`data` empty, `points` counted): any length, no memory."""
    with _reading(path) as f:
        entry = f["entry"]
        status = _s(_refresh(entry["status"])[()])
        error = _s(_refresh(entry["error"])[()]) or None
        end_time = _s(_refresh(entry["end_time"])[()]) or None
        if data:
            frame = _read_columns(entry["data"])
            points = len(frame)
        else:
            points = _columns(entry["data"], ("pulse_index",))[1]
            frame = pd.DataFrame({c: np.zeros(0, DTYPES[c]) for c in COLUMNS}, columns=list(COLUMNS))
        proto = entry["protocol"]
        protocol = {"name": _s(proto.attrs.get("name", "")), "kind": _s(proto.attrs.get("kind", "")),
                    "parameters": _load_json(proto, "parameters")}
        sample = _load_json(entry["sample"], "description")
        total = int(entry["total_points"][()]) if "total_points" in entry else None
        sig = entry["data"]["hall_resistance"].attrs
        return RunFile(
            path=str(path), status=status, error=error,
            interrupted=status == "running" and _writer_gone(entry),
            protocol=protocol, recipe=_s(proto["recipe"][()]) if "recipe" in proto else "",
            station=_load_json(entry["instrument"], "station"), sample=sample,
            start_time=_s(entry.attrs.get("start_time", "")), end_time=end_time, data=frame,
            total_points=total, software_version=_s(f.attrs.get("software_version", "")),
            invocation=_load_json(entry, "invocation"),
            quantity=_s(sig.get("quantity", "hall_resistance")) or "hall_resistance",
            unit=_s(sig.get("units", "ohm")) or "ohm", points=points)


# statuses `labspin run --resume` continues: interrupted (killed: "running", nobody writing),
# aborted (Ctrl-C, Abort) and failed (instrument error: resume once its cause is fixed)
RESUMABLE = ("running", "aborted", "failed")


def resume_point(path: str | os.PathLike) -> tuple[int, float, dict | None]:
    """Where an interrupted, aborted or failed run continues: (start_index, time_offset, sim state or None).

    The resume point is the longest prefix that is complete in every column
    (pulse_index == 0..n-1) and, for a simulated device, not past the last stored state.
    """
    with _reading(path) as f:
        entry = f["entry"]
        status = _s(_refresh(entry["status"])[()])
        if status not in RESUMABLE:
            raise UserError(f"{path}: run is {status}; nothing to resume")
        if status == "running" and not _writer_gone(entry):
            raise UserError(f"{path}: run is still being written by another process")
        cols, written = _columns(entry["data"])
        idx = cols["pulse_index"][:written]          # the index alone, not every column
        n = int(np.argmin(idx == np.arange(idx.size))) if not np.all(idx == np.arange(idx.size)) else idx.size
        n = min(n, int(_refresh(entry["heartbeat"])[1]))
        state = None
        size, at = (int(v) for v in _refresh(entry["sample/sim_state_meta"])[:])
        if size > 0:
            raw = _refresh(entry["sample/sim_state"])[:size].tobytes()
            try:
                state = json.loads(zlib.decompress(raw))
            except (zlib.error, ValueError):
                raise UserError(f"{path}: stored simulator state is damaged; cannot resume") from None
            if at > n:
                raise UserError(f"{path}: stored simulator state is ahead of the data; cannot resume")
            n = at
        offset = float(cols["time"][n - 1]) if n > 0 else 0.0
        return n, offset, state


# What h5py raises on a garbled object, a truncated chunk or a dataset of the wrong type/shape.
_DAMAGE = (OSError, RuntimeError, ValueError, TypeError, IndexError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:200] + "…") if len(text) > 200 else (text or type(exc).__name__)


def _missing(exc: KeyError) -> str:
    """The object a KeyError from h5py or a dict is about, as one short phrase."""
    text = str(exc.args[0]) if exc.args else ""
    return text if len(text) < 120 and "\n" not in text else "a required group or dataset"
