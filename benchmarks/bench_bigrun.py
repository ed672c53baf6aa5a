"""`labspin info` and `labspin analyze` on a long run file: wall time and peak RSS (issue #16,
point 3: <= 2 GB for 10^8 points, streamed).

Writes a staircase-shaped run of N points (11 states, 2 mOhm read noise on a 1 Ohm window) with
the RunWriter in 2^20-point blocks, then times each command in its own process.

    python benchmarks/bench_bigrun.py [--points 1e8] [--keep DIR]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from labspin.protocols.recipe import load_recipe
from labspin.schema import RunInfo, protocol_info
from labspin.store import RunWriter


def write_run(path: Path, n: int) -> float:
    recipe = load_recipe("staircase", {"cycles": n // 11 + 1})
    info = RunInfo(protocol=protocol_info(recipe), station={}, sample={"id": "bench", "type": "tilted"},
                   total_points=n, start_index=0, start_time="2026-01-01T00:00:00+00:00",
                   software_version="bench")
    w = RunWriter(path, overwrite=True, flush_interval=5.0)
    w.on_start(info)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for s in range(0, n, 1 << 20):
        i = np.arange(s, min(n, s + (1 << 20)))
        step = (i % 11).astype(np.int32)
        w.on_points({"pulse_index": i, "cycle": (i // 11).astype(np.int32), "step": step,
                     "pulse_current": np.where(step == 0, -9e-3, 4e-3 + 1e-4 * step),
                     "pulse_width": np.full(i.size, 1e-4), "read_current": np.full(i.size, 1e-4),
                     "hall_voltage": np.zeros(i.size),
                     "hall_resistance": 10.0 + 0.1 * step + 0.002 * rng.standard_normal(i.size),
                     "time": i * 0.6})
    w.on_end("completed", None)
    return time.perf_counter() - t0


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one command in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=float, default=1e8)
    ap.add_argument("--keep", default=None, help="write the run file here and keep it")
    args = ap.parse_args()
    n = int(args.points)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        path = folder / "long.h5"
        wrote = write_run(path, n)
        print(f"{n:.3g} points, {path.stat().st_size / 1e6:.0f} MB on disk, written in {wrote:.0f} s")
        print(f"{'command':<18} {'wall s':>7} {'peak RSS MB':>12}")
        for name, argv in (("labspin info", ["info", str(path)]),
                           ("labspin analyze", ["analyze", str(path), "-o", str(folder / "rep"),
                                                "--overwrite"])):
            wall, rss = timed([sys.executable, "-m", "labspin", *argv])
            print(f"{name:<18} {wall:7.1f} {rss:12.0f}")
    print("target: <= 2048 MB each (the peak RSS of a child; info runs first, so analyze's is its own "
          "when larger)")


if __name__ == "__main__":
    main()
