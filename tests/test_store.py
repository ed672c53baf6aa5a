"""Run file: layout (NeXus attrs, units, SWMR), live reading, interruption and resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib

import h5py
import numpy as np
import pytest

from labspin.errors import UserError
from labspin.protocols.recipe import load_recipe
from labspin.runner import RunInfo
from labspin.schema import protocol_info
from labspin.store import (COLUMNS, FILE_FORMAT, UNITS, RunWriter, clear_consistency_flags,
                           read_run, resume_point)


def make_info(total: int = 100, start_index: int = 0) -> RunInfo:
    recipe = load_recipe("staircase", {"cycles": 3})
    return RunInfo(protocol=protocol_info(recipe), station={"roles": {"pulse_source": {"class": "X"}}},
                   sample={"id": "D1", "type": "tilted", "width": 10e-6, "thickness": 5e-9,
                           "seed": 4, "params": {"n_units": 1000}},
                   total_points=total, start_index=start_index, start_time="2026-01-01T00:00:00+00:00",
                   software_version="0.1.0")


def block(start: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    idx = np.arange(start, start + n)
    return {"pulse_index": idx, "cycle": (idx // 11).astype(np.int32),
            "step": (idx % 11).astype(np.int32), "pulse_current": rng.normal(size=n) * 1e-3,
            "pulse_width": np.full(n, 1e-4), "read_current": np.full(n, 1e-4),
            "hall_voltage": rng.normal(size=n) * 1e-4, "hall_resistance": rng.normal(size=n),
            "time": idx * 1e-3}


def test_layout_validates(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "run.h5"
    w = RunWriter(path, flush_interval=0.05)
    w.on_start(make_info(total=50))
    blocks = [block(0, 20, rng), block(20, 13, rng)]
    for b in blocks:
        w.on_points(b)
    w.on_end("completed", None)

    with h5py.File(path, "r") as f:     # plain h5py, no SWMR flag needed for a finished file
        assert f.attrs["NX_class"] == "NXroot" and f.attrs["default"] == "entry"
        assert f.attrs["file_format"] == FILE_FORMAT
        assert f.attrs["software_version"] == "0.1.0"
        e = f["entry"]
        assert e.attrs["NX_class"] == "NXentry" and e.attrs["default"] == "data"
        assert e.attrs["start_time"] == "2026-01-01T00:00:00+00:00"
        assert e.attrs["end_time"].startswith("20")
        assert e["status"][()].rstrip(b"\0") == b"completed"
        assert e["error"][()].rstrip(b"\0") == b""
        assert e["protocol"].attrs["name"] == "staircase" and e["protocol"].attrs["kind"] == "staircase"
        assert e["protocol/recipe"][()].decode() == load_recipe("staircase").text
        assert json.loads(e["protocol/parameters"][()])["cycles"] == 3
        assert e["instrument"].attrs["NX_class"] == "NXinstrument"
        assert json.loads(e["instrument/station"][()])["roles"]["pulse_source"]["class"] == "X"
        s = e["sample"]
        assert s.attrs["NX_class"] == "NXsample"
        assert s["id"][()].decode() == "D1" and s["width"].attrs["units"] == "m"
        assert json.loads(s["description"][()])["params"]["n_units"] == 1000
        d = e["data"]
        assert d.attrs["NX_class"] == "NXdata" and d.attrs["signal"] == "hall_resistance"
        assert d.attrs["axes"] == "pulse_index"
        assert set(d) == set(COLUMNS)
        for name in COLUMNS:
            ds = d[name]
            assert ds.maxshape == (None,) and ds.chunks is not None and ds.shape == (33,)
            assert ds.attrs["units"] == UNITS[name]
            expect = np.concatenate([b[name] for b in blocks])
            np.testing.assert_array_equal(ds[:], expect)
        assert d["pulse_index"].dtype == np.int64 and d["cycle"].dtype == np.int32

    rf = read_run(path)
    assert rf.status == "completed" and not rf.interrupted and rf.error is None
    assert list(rf.data.columns) == list(COLUMNS) and len(rf.data) == 33
    assert rf.protocol["kind"] == "staircase" and rf.sample["id"] == "D1" and rf.total_points == 50


def test_failed_status_and_error_text(tmp_path):
    path = tmp_path / "run.h5"
    w = RunWriter(path)
    w.on_start(make_info())
    w.on_points(block(0, 5, np.random.default_rng(1)))
    w.on_end("failed", "VisaIOError: VI_ERROR_TMO (-1073807339): Timeout expired")
    rf = read_run(path)
    assert rf.status == "failed" and "VI_ERROR_TMO" in rf.error and len(rf.data) == 5


def test_overwrite_refused_file_untouched(tmp_path):
    path = tmp_path / "run.h5"
    path.write_bytes(b"precious")
    with pytest.raises(UserError, match="exists"):
        RunWriter(path)
    assert path.read_bytes() == b"precious"
    w = RunWriter(path, overwrite=True)
    w.on_start(make_info())
    w.on_end("completed", None)
    assert read_run(path).status == "completed"


@pytest.mark.parametrize("content", [None, b"not hdf5 at all", "plain-hdf5"])
def test_read_run_refuses_bad_files(tmp_path, content):
    path = tmp_path / "x.h5"
    if content == "plain-hdf5":
        with h5py.File(path, "w") as f:
            f["a"] = 1
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as exc:
        read_run(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_bad_flush_interval():
    with pytest.raises(UserError, match="flush_interval"):
        RunWriter("x.h5", flush_interval=0)


WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    sys.path.insert(0, {tests!r})
    from test_store import make_info, block
    from labspin.store import RunWriter
    w = RunWriter({path!r}, flush_interval=0.05, state_provider=lambda: {{"n": w._n}})
    w.on_start(make_info(total=100000))
    rng = np.random.default_rng(0)
    print("started", flush=True)
    n = 0
    while n < {points}:
        w.on_points(block(n, 7, rng)); n += 7
        time.sleep(0.002)
    w.on_end("completed", None)
""")


def spawn_writer(path, points):
    code = WRITER.format(tests=os.path.dirname(__file__), path=str(path), points=points)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "started"
    return p


def test_swmr_reader_while_writing(tmp_path):
    path = tmp_path / "live.h5"
    p = spawn_writer(path, 700)
    seen = []
    try:
        while p.poll() is None:
            rf = read_run(path)
            if rf.status == "running":
                assert not rf.interrupted
                idx = rf.data["pulse_index"].to_numpy()
                np.testing.assert_array_equal(idx, np.arange(len(idx)))
                seen.append(len(idx))
            time.sleep(0.03)
    finally:
        p.wait(timeout=30)
    assert p.returncode == 0
    assert len(seen) >= 3 and seen[-1] > seen[0]       # saw it grow while it was written
    assert sorted(seen) == seen
    rf = read_run(path)
    assert rf.status == "completed" and len(rf.data) == 700


def test_kill9_interrupted_then_resume(tmp_path):
    path = tmp_path / "killed.h5"
    p = spawn_writer(path, 10**9)
    time.sleep(0.5)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)

    with h5py.File(path, "r", libver="latest", swmr=True) as f:     # plain h5py opens it
        n_disk = f["entry/data/pulse_index"].shape[0]
        assert f["entry/status"][()].rstrip(b"\0") == b"running"
    rf = read_run(path)
    assert rf.status == "running" and rf.interrupted
    idx = rf.data["pulse_index"].to_numpy()
    assert len(idx) > 20
    np.testing.assert_array_equal(idx, np.arange(len(idx)))        # monotonic, no gaps

    start, offset, state = resume_point(path)
    assert state == {"n": start} and 0 < start <= len(idx) <= n_disk
    assert offset == pytest.approx(rf.data["time"].iloc[start - 1])

    w = RunWriter(path, resume=True, flush_interval=0.05)
    assert w.start_index == start and w.sim_state == {"n": start}
    w.on_start(make_info(total=start + 30, start_index=start))
    w.on_points(block(start, 30, np.random.default_rng(2)))
    w.on_end("completed", None)
    with h5py.File(path, "r") as f:                                  # clean again: plain open
        np.testing.assert_array_equal(f["entry/data/pulse_index"][:], np.arange(start + 30))
    rf = read_run(path)
    assert rf.status == "completed" and not rf.interrupted and len(rf.data) == start + 30
    with pytest.raises(UserError, match="completed"):
        RunWriter(path, resume=True)


def test_resume_refuses_live_file(tmp_path):
    path = tmp_path / "live.h5"
    p = spawn_writer(path, 10**9)
    try:
        with pytest.raises(UserError, match="still being written"):
            RunWriter(path, resume=True)
    finally:
        p.kill()
        p.wait()


def test_clear_consistency_flags_is_h5clear(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f["x"] = np.arange(3)
    before = path.read_bytes()
    assert clear_consistency_flags(path) is False and path.read_bytes() == before
    raw = bytearray(before)
    raw[11] = 5                                   # what a killed SWMR writer leaves, bad checksum
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="checksum"):
        clear_consistency_flags(path)


def test_sim_state_round_trip(tmp_path):
    path = tmp_path / "s.h5"
    state = {"m": list(range(3000)), "rng": {"state": 12345678901234567890}}
    w = RunWriter(path, state_provider=lambda: state)
    w.on_start(make_info())
    w.on_points(block(0, 4, np.random.default_rng(0)))
    w.close()                                     # no on_end: reads as interrupted later
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        size = int(f["entry/sample/sim_state_meta"][0])
        assert json.loads(zlib.decompress(f["entry/sample/sim_state"][:size].tobytes())) == state


def test_streamed_reads_match_the_full_read(tmp_path, capsys):
    """iter_data/read_decimated/count_points/read_run(data=False) read a file in bounded memory
    and agree with the full read; `labspin info` uses them (any run length)."""
    from labspin.cli import main
    from labspin.store import count_points, iter_data, read_decimated

    path = tmp_path / "r.h5"
    rng = np.random.default_rng(1)
    w = RunWriter(path)
    w.on_start(make_info(total=5000))
    for start in range(0, 4321, 1000):
        w.on_points(block(start, min(1000, 4321 - start), rng))
    w.on_end("completed", None)
    full = read_run(path).data
    assert count_points(path) == read_run(path, data=False).points == len(full) == 4321
    assert read_run(path, data=False).data.empty
    parts = list(iter_data(path, ("cycle", "hall_resistance"), block=500, step=3))
    assert len(parts) == 3 and max(len(p) for p in parts) <= 500
    joined = np.concatenate([p["hall_resistance"].to_numpy() for p in parts])
    assert np.array_equal(joined, full["hall_resistance"].to_numpy()[::3])
    dec, k = read_decimated(path, 1000)
    assert k == 5 and len(dec) <= 1000 and np.array_equal(dec["cycle"], full["cycle"].to_numpy()[::5])
    with pytest.raises(SystemExit) as e:
        main(["info", str(path)])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "points      4321 of 5000" in out and f"cycles      {full['cycle'].nunique()}" in out
