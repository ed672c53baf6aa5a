"""Start-up cost vs schedule length: `labspin dry-run` time and peak RSS, and the time until a
`labspin run` has its first point on disk, for potdep recipes of 10³ … 10⁹ write pulses.

Targets (issue #16): a 10⁹-pulse recipe dry-runs in <= 1 s and <= 300 MB RSS, and any run
writes its first point <= 3 s after start (simulator, 2 cores). Each row is a fresh process
(`python -m labspin ...`), so the times include the interpreter and imports.

    python benchmarks/bench_schedule.py [--pulses 1e3,1e6,1e9] [--recipe potdep]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

import h5py

PULSES_PER_CYCLE = {"potdep": 100, "staircase": 11, "endurance": 2}   # at the shipped parameters


def _overrides(recipe: str, pulses: float) -> list[str]:
    cycles = max(1, int(pulses) // PULSES_PER_CYCLE[recipe])
    return ["--set", f"cycles={cycles}"]


_DRY = ("import resource, sys\nfrom labspin.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)")


def dry_run(recipe: str, pulses: float) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one `labspin dry-run` process."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _DRY, "dry-run", recipe, "--sim", "tilted",
                          *_overrides(recipe, pulses)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return wall, int(out.stderr.strip().splitlines()[-1]) / 1024


def first_point(recipe: str, pulses: float, tmp: str) -> float:
    """Seconds from starting `labspin run` until its run file holds a point (then Ctrl-C)."""
    path = os.path.join(tmp, f"{recipe}-{pulses:.0e}.h5")
    cmd = [sys.executable, "-m", "labspin", "run", recipe, "--sim", "tilted", "-o", path,
           "--flush-interval", "0.05", "--no-progress", *_overrides(recipe, pulses)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while time.perf_counter() - t0 < 60:
            if proc.poll() is not None:
                raise SystemExit(f"run ended: {proc.stderr.read()}")
            try:
                with h5py.File(path, "r", libver="latest", swmr=True) as f:
                    if f["entry/heartbeat"][1] >= 1:
                        return time.perf_counter() - t0
            except (OSError, KeyError, RuntimeError):
                pass
            time.sleep(0.02)
        return float("nan")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pulses", default="1e3,1e6,1e9")
    ap.add_argument("--recipe", default="potdep", choices=sorted(PULSES_PER_CYCLE))
    args = ap.parse_args()
    sizes = [float(p) for p in args.pulses.split(",")]
    print(f"recipe {args.recipe}, simulated tilted device, {os.cpu_count()} CPU(s)")
    print(f"{'pulses':>8} | {'dry-run s':>9} | {'peak RSS MB':>11} | {'first point s':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for p in sizes:
            wall, rss = dry_run(args.recipe, p)
            fp = first_point(args.recipe, p, tmp)
            print(f"{p:8.0e} | {wall:9.2f} | {rss:11.0f} | {fp:13.2f}")


if __name__ == "__main__":
    main()
