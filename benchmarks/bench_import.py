"""`labspin import` of a large CSV: seconds for 1e6 rows (target ≤ 5 s), split into parse,
map (units, constants, kind) and write, beside pandas.read_csv of the same file alone.

The file is a loop export like a third party writes it: BOM, a quoted header with units, currents
in mA, R_H in ohm, a pulse-width and a sample column given on the first row only (ragged rows).

    python benchmarks/bench_import.py [--rows N] [--repeat R]
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

import numpy as np
import pandas as pd

from labspin.importer import import_files, map_file, read_table


def write_csv(path: str, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    sweep = np.r_[np.linspace(0, 8, 81), np.linspace(8, -8, 161)[1:], np.linspace(-8, 0, 81)[1:]]
    cur = np.resize(sweep, rows)
    r = 1.9 + 0.095 * np.tanh((cur - 4 * np.sign(np.gradient(cur))) / 0.5) + rng.normal(0, 6e-4, rows)
    buf = io.StringIO()
    pd.DataFrame({"a": cur, "b": r}).to_csv(buf, header=False, index=False, float_format="%.10g")
    body = buf.getvalue().split("\n", 1)
    first = body[0] + ",1,D7\n"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        fh.write('"Current (mA)","Hall R (ohm)","Pulse width (ms)",Sample\n')
        fh.write(first)
        fh.write(body[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "big.csv")
        write_csv(src, args.rows)
        size = os.path.getsize(src) / 1e6
        best: dict[str, float] = {}

        def clock(name: str, fn) -> None:
            t = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)

        for k in range(args.repeat):
            out = os.path.join(tmp, f"big{k}.h5")
            clock("pandas.read_csv alone", lambda: pd.read_csv(src, low_memory=False))
            clock("parse (read_table)", lambda: read_table(src))
            t = read_table(src)
            clock("map (units, constants)", lambda: map_file(t, [], {}))
            clock("labspin import, end to end", lambda: import_files([src], out))
        print(f"# labspin import: {args.rows:,} rows, {size:.1f} MB CSV, best of {args.repeat}")
        print(f"{'step':<34} {'seconds':>8} {'rows/s':>12}")
        for name, sec in best.items():
            print(f"{name:<34} {sec:>8.2f} {args.rows / sec:>12,.0f}")
        import subprocess
        import sys
        out = os.path.join(tmp, "cold.h5")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "labspin", "import", src, "-o", out], check=True,
                       capture_output=True)
        cold = time.perf_counter() - t
        print(f"{'labspin import CLI (new process)':<34} {cold:>8.2f} {args.rows / cold:>12,.0f}")
        verdict = "meets" if best["labspin import, end to end"] <= 5.0 else "MISSES"
        print(f"target: end to end <= 5 s for 1e6 rows -> {verdict} "
              f"(CLI: {'meets' if cold <= 5.0 else 'MISSES'})")


if __name__ == "__main__":
    main()
