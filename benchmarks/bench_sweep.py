"""`labspin sweep` scaling: the device-to-device study (docs/sweeps/d2d.toml) on 1 and 2 workers.

Target (issue #16): 2 workers >= 1.7x one worker on 2 cores. Each row is a fresh output folder
(nothing skipped) and a fresh LocalCluster; the time includes starting the cluster.

    python benchmarks/bench_sweep.py [--devices 64] [--cycles 20]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from labspin.sweep import load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=64)
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "d2d.toml"
        text = (ROOT / "docs" / "sweeps" / "d2d.toml").read_text()
        text = text.replace("count = 64", f"count = {args.devices}").replace("cycles = [100]",
                                                                             f"cycles = [{args.cycles}]")
        f.write_text(text)
        sw = load_sweep(f)
        print(f"d2d: {len(sw.tasks)} simulated tilted devices, staircase {args.cycles} cycles, "
              f"{os.cpu_count()} CPU(s)")
        print(f"{'workers':>7} | {'wall s':>7} | {'tasks/s':>7} | {'speed-up':>8}")
        base = None
        for w in (int(x) for x in args.workers.split(",")):
            t0 = time.perf_counter()
            table = run_sweep(sw, Path(tmp) / f"w{w}", workers=w, progress=False)
            wall = time.perf_counter() - t0
            assert (table["status"] == "completed").all(), table["error"].tolist()
            base = base or wall
            print(f"{w:7d} | {wall:7.1f} | {len(table) / wall:7.2f} | {base / wall:8.2f}")


if __name__ == "__main__":
    main()
