"""Points per second of pulse() + read() through the real driver stack on the simulated bench.

One point = one write pulse + one Hall read (what the runner does per step). Prints a table:
role pair, points, wall seconds, points/s (wall and CPU), simulator log records per point
(a write is one record, a query two: the write and its reply).

    python benchmarks/bench_drivers.py [--points 2000] [--device tilted]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from labspin.cli.sim import critical_current
from labspin.drivers import open_instrument
from labspin.drivers.hall import DeltaHallReader, LockinHallReader, SourceMeterHallReader
from labspin.drivers.pulse import K6221PulseSource, SourceMeterPulseSource
from labspin.drivers.roles import Limits
from labspin.sim_backend.bench import SimBench


def _messages(bench) -> int:
    return sum(1 for r in bench.log if r.kind in ("write", "read"))


def measure(name: str, build, device: str, points: int, seed: int = 0, width: float = 100e-6) -> tuple:
    bench = SimBench(device, seed=seed)
    try:
        i_max = 1.5 * critical_current(bench.hallbar.params)
        limits = Limits(max_pulse_current=i_max)
        src, reader = build(bench, limits)
        currents = np.where(np.arange(points) % 2 == 0, i_max, -i_max) * np.linspace(0.5, 1, points)
        src.pulse(float(currents[0]), width)       # first point sends the settings
        reader.read(1e-4)
        m0 = _messages(bench)
        t0, c0 = time.perf_counter(), time.process_time()
        for current in currents:
            src.pulse(float(current), width)
            reader.read(1e-4)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        per_point = (_messages(bench) - m0) / points
        src.shutdown()
        reader.shutdown()
    finally:
        bench.close()
    return name, points, wall, points / wall, points / cpu, per_point


def k6221_delta(bench, limits):
    k = open_instrument("keithley6221", bench.addresses["keithley6221"], visa_library=bench.visa_library)
    return K6221PulseSource(k, limits), DeltaHallReader(k, limits)


def k6221_sr830(bench, limits):
    k = open_instrument("keithley6221", bench.addresses["keithley6221"], visa_library=bench.visa_library)
    li = open_instrument("sr830", bench.addresses["sr830"], visa_library=bench.visa_library)
    return K6221PulseSource(k, limits), LockinHallReader(li, limits, bench.lockin_series_resistance)


def k2400_2400(bench, limits):
    smu = open_instrument("keithley2400", bench.addresses["keithley2400"], visa_library=bench.visa_library)
    return SourceMeterPulseSource(smu, limits), SourceMeterHallReader(smu, limits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--device", default="tilted")
    args = ap.parse_args()
    rows = [measure("6221 Pulse Delta + 6221/2182A Delta", k6221_delta, args.device, args.points),
            measure("6221 Pulse Delta + SR830 lock-in", k6221_sr830, args.device, args.points),
            # a SourceMeter pulse is host-timed: min_smu_pulse_width (5 ms) is its shortest
            measure("2400 pulse + 2400 +-I read", k2400_2400, args.device, max(args.points // 4, 10),
                    width=5e-3)]
    # points per CPU-second is the figure to compare on a shared machine; wall is what a user sees
    print(f"{'roles':<38} {'points':>7} {'wall s':>8} {'points/s':>9} {'pts/CPU-s':>9} {'records/pt':>10}")
    for name, n, wall, rate, cpu_rate, per_point in rows:
        print(f"{name:<38} {n:>7d} {wall:>8.3f} {rate:>9.0f} {cpu_rate:>9.0f} {per_point:>10.1f}")


if __name__ == "__main__":
    main()
