"""RunWriter append rate beside raw h5py (both SWMR, the same layout of nine 1-D datasets:
store.CHUNK chunks, store.COMPRESSION filters).

Rows:
  raw h5py, flush per row       resize + write the nine columns + File.flush() for every point
  RunWriter, flush per point    on_points with one point, flush_interval ~0 (every point durable)
  RunWriter, default            on_points with 256-point blocks, flush_interval 0.5 s
Target: RunWriter flush-per-point >= 0.8x raw h5py flush-per-row.

`--compression N` instead: bytes/point, write and read MB/s of N points of a simulated staircase
(the columns as a run stores them) per chunk size and filter (none, lzf, gzip 1/4, each with
and without shuffle), written in 256-point SWMR blocks like the RunWriter (issue #16, point 3).

    python benchmarks/bench_store.py [--points N] [--repeat R]
    python benchmarks/bench_store.py --compression 1000000
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import h5py
import numpy as np

from labspin.protocols.recipe import load_recipe
from labspin.runner import RunInfo
from labspin.schema import protocol_info
from labspin.store import CHUNK, COLUMNS, COMPRESSION, DTYPES, RunWriter


def columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    return {"pulse_index": idx, "cycle": (idx // 11).astype(np.int32),
            "step": (idx % 11).astype(np.int32), "pulse_current": rng.normal(size=n),
            "pulse_width": np.full(n, 1e-4), "read_current": np.full(n, 1e-4),
            "hall_voltage": rng.normal(size=n), "hall_resistance": rng.normal(size=n),
            "time": idx * 1e-3}


def info() -> RunInfo:
    return RunInfo(protocol=protocol_info(load_recipe("staircase")), station={}, sample={"id": "bench"},
                   total_points=0, start_index=0, start_time="2026-01-01T00:00:00+00:00",
                   software_version="bench")


def raw_h5py(path: str, data: dict[str, np.ndarray]) -> None:
    """The same layout as a run file's data: chunks and filters (store.CHUNK, store.COMPRESSION)."""
    with h5py.File(path, "w", libver="latest") as f:
        g = f.create_group("entry/data")
        ds = {k: g.create_dataset(k, shape=(0,), maxshape=(None,), chunks=(CHUNK,),
                                  dtype=DTYPES.get(k, "f8"), **COMPRESSION) for k in COLUMNS}
        f.swmr_mode = True
        n = len(data["pulse_index"])
        for i in range(n):
            for k in COLUMNS:
                d = ds[k]
                d.resize((i + 1,))
                d[i:i + 1] = data[k][i:i + 1]
            f.flush()


def writer(path: str, data: dict[str, np.ndarray], block: int, interval: float) -> None:
    w = RunWriter(path, overwrite=True, flush_interval=interval)
    w.on_start(info())
    n = len(data["pulse_index"])
    for i in range(0, n, block):
        w.on_points({k: v[i:i + block] for k, v in data.items()})
    w.on_end("completed", None)


def staircase_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """What a staircase run stores: 11 currents repeating, R_H = level + noise, a clock."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    step = idx % 11
    ladder = np.r_[-9.64e-3, np.linspace(5.4e-3, 6.9e-3, 10)]
    r = np.linspace(-0.8, 0.3, 11)[step] + 0.01 * rng.standard_normal(n)
    return {"pulse_index": idx, "cycle": (idx // 11).astype(np.int32), "step": step.astype(np.int32),
            "pulse_current": ladder[step], "pulse_width": np.full(n, 1e-4),
            "read_current": np.full(n, 1e-4), "hall_voltage": r * 1e-4, "hall_resistance": r,
            "time": np.cumsum(rng.uniform(0.009, 0.011, n))}


def compression(n: int) -> None:
    data = staircase_columns(n)
    raw_bytes = sum(v.nbytes for v in data.values())
    print(f"{n:,} points, {raw_bytes / n:.0f} B/point uncompressed")
    print(f"{'chunk':>6} {'filter':<14} {'B/point':>8} {'ratio':>6} {'write MB/s':>10} {'read MB/s':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "c.h5")
        for chunk in (1024, 16384):
            for comp, opts, shuffle in ((None, None, False), ("lzf", None, False), ("lzf", None, True),
                                        ("gzip", 1, True), ("gzip", 4, True)):
                t = time.perf_counter()
                with h5py.File(p, "w", libver="latest") as f:
                    g = f.create_group("d")
                    ds = {k: g.create_dataset(k, shape=(0,), maxshape=(None,), chunks=(chunk,),
                                              dtype=DTYPES.get(k, "f8"), compression=comp,
                                              compression_opts=opts, shuffle=shuffle) for k in COLUMNS}
                    f.swmr_mode = True
                    for i in range(0, n, 256):
                        for k in COLUMNS:
                            ds[k].resize((min(n, i + 256),))
                            ds[k][i:i + 256] = data[k][i:i + 256]
                w = time.perf_counter() - t
                t = time.perf_counter()
                with h5py.File(p, "r") as f:
                    for k in COLUMNS:
                        f["d"][k][:]
                r = time.perf_counter() - t
                size = os.path.getsize(p)
                name = f"{comp or 'none'}{'' if opts is None else ' ' + str(opts)}{' +shuf' if shuffle else ''}"
                print(f"{chunk:>6} {name:<14} {size / n:>8.1f} {raw_bytes / size:>6.2f} "
                      f"{raw_bytes / w / 1e6:>10.1f} {raw_bytes / r / 1e6:>9.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--compression", type=int, default=0, metavar="N")
    args = ap.parse_args()
    if args.compression:
        compression(args.compression)
        return
    n = args.points
    data = columns(n)
    big = columns(100 * n)
    best = {"raw": float("inf"), "point": float("inf"), "block": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "b.h5")
        for _ in range(args.repeat):           # interleaved, best kept: the machine is shared
            for key, fn in (("raw", lambda: raw_h5py(p, data)),
                            ("point", lambda: writer(p, data, 1, 1e-9)),
                            ("block", lambda: writer(p, big, 256, 0.5))):
                t = time.perf_counter()
                fn()
                best[key] = min(best[key], time.perf_counter() - t)
    raw, per_point, default = n / best["raw"], n / best["point"], 100 * n / best["block"]
    print(f"{'writer':<32} {'points/s':>12} {'vs raw':>8}")
    print(f"{'raw h5py, flush per row':<32} {raw:>12,.0f} {1.0:>8.2f}")
    print(f"{'RunWriter, flush per point':<32} {per_point:>12,.0f} {per_point / raw:>8.2f}")
    print(f"{'RunWriter, 256-blocks, 0.5 s':<32} {default:>12,.0f} {default / raw:>8.2f}")
    verdict = "PASS" if per_point >= 0.8 * raw else "FAIL"
    print(f"target RunWriter flush-per-point >= 0.8x raw: {verdict} ({per_point / raw:.2f}x)")


if __name__ == "__main__":
    main()
