"""Read + analyse speed of run files (target: 1,000,000 points in ≤ 2 s on 2 cores).

Writes staircase run files of growing size with labspin.store.RunWriter, then times
`read_run` and `analyze_run` (states from steps, CTC, distinguishable states) and, separately,
the data-driven `--states auto` clustering. Prints a table; asserts nothing.

    python benchmarks/bench_analysis.py [--points 10000 100000 1000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from labspin.analysis import analyze_run
from labspin.schema import RunInfo
from labspin.store import COLUMNS, RunWriter, read_run

N_STATES = 11


def write(path: Path, n_points: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    cycles = n_points // N_STATES
    n = cycles * N_STATES
    step = np.tile(np.arange(N_STATES), cycles)
    r = -0.5 + step / (N_STATES - 1) + rng.normal(0, 0.018, n)
    block = {"pulse_index": np.arange(n), "cycle": np.repeat(np.arange(cycles), N_STATES), "step": step,
             "pulse_current": np.where(step == 0, -8e-3, step * 1e-3), "pulse_width": np.full(n, 1e-3),
             "read_current": np.full(n, 1e-4), "hall_voltage": r * 1e-4, "hall_resistance": r,
             "time": np.arange(n) * 1e-3}
    info = RunInfo(protocol={"name": "staircase", "kind": "staircase", "recipe": "", "recipe_path": None,
                             "parameters": {}}, station={}, sample={"id": "bench", "type": "tilted"},
                   total_points=n, start_index=0, start_time="2026-01-01T00:00:00+00:00",
                   software_version="bench")
    w = RunWriter(path, overwrite=True)
    w.on_start(info)
    for i in range(0, n, 100_000):
        w.on_points({c: block[c][i:i + 100_000] for c in COLUMNS})
    w.on_end("completed", None)


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'points':>10} {'read s':>8} {'analyse s':>10} {'read+analyse s':>15} {'auto-states s':>14}"
          f" {'states':>7} {'auto':>5} {'CTC %':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.points:
            path = Path(tmp) / f"run{n}.h5"
            write(path, n)
            t_read, run = best(lambda: read_run(path), args.repeat)
            t_an, a = best(lambda: analyze_run(run), args.repeat)
            t_both, _ = best(lambda: analyze_run(read_run(path)), args.repeat)
            t_auto, b = best(lambda: analyze_run(run, states="auto"), args.repeat)
            print(f"{len(run.data):>10} {t_read:>8.3f} {t_an:>10.3f} {t_both:>15.3f} {t_auto:>14.3f}"
                  f" {a.distinguishable:>7} {len(b.states):>5} {a.ctc * 100:>6.2f}")


if __name__ == "__main__":
    main()
