"""End-to-end points/s: staircase recipe on the simulator, driver -> PyVISA -> simulator -> storage.

Rows (same recipe, same simulated device and seed, same driver stack, in the same process):
  labspin Runner + RunWriter (HDF5, SWMR)     what `labspin run` does
  labspin Runner, no listener                 the instrument loop alone (upper bound)
  pymeasure Procedure + Results (CSV) Worker  the same loop and labspin's roles, pymeasure's storage
  pymeasure, stock drivers                    the loop as a pymeasure user writes it today: stock
                                              Keithley6221 (Pulse Delta by raw writes, as pymeasure
                                              has no property for it; Delta by its properties),
                                              static settings once in startup(), CSV Results
  labspin pulse_delta blocks + RunWriter      hall_reader mode "pulse_delta": each staircase cycle
                                              is ONE hardware-timed 6221 list sweep (write and read
                                              pulses), fetched once (issue #3)
  pymeasure, stock, pulse-delta reads + CSV   the same pulse-delta-read loop as a stock Procedure:
                                              raw writes per pulse, one write pulse + one read pulse
                                              (fixed-output Pulse Delta) per point, CSV Results
Targets: labspin >= 2,000 points/s and >= 2x pymeasure (stock drivers).

    python benchmarks/bench_run.py [--cycles N] [--preset tilted]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import pandas as pd

from labspin.protocols.recipe import load_recipe
from labspin.runner import Runner
from labspin.station import sim_station_spec
from labspin.store import RunWriter, read_run


MESSAGES: dict[str, float] = {}      # path name -> messages sent on the bus per point


def _messages(bench, n: int) -> float:
    return sum(1 for r in bench.log if r.kind == "write") / n


def run_labspin(recipe, spec: str, path: str | None, hall_mode: str = "dc_delta") -> tuple[float, int]:
    station = sim_station_spec(spec, hall_mode=hall_mode).open()
    listeners = [RunWriter(path, overwrite=True)] if path else []
    runner = Runner(station, recipe, listeners)
    t = time.perf_counter()
    status = runner.run()
    dt = time.perf_counter() - t
    MESSAGES["labspin" if hall_mode == "dc_delta" else "labspin-pd"] = \
        _messages(station.bench, len(recipe.protocol))
    station.close()
    assert status == "completed", runner.error
    if path:
        assert len(read_run(path).data) == len(recipe.protocol)
    return dt, len(recipe.protocol)


COLUMNS = ["pulse_index", "cycle", "step", "pulse_current", "pulse_width", "read_current",
           "hall_voltage", "hall_resistance", "time"]


def _row(i, s, read_current: float, v: float, t: float) -> dict:
    """One emitted row of the pymeasure loops (the same columns as the run file)."""
    return {"pulse_index": i, "cycle": s.cycle, "step": s.step, "pulse_current": s.pulse_current,
            "pulse_width": s.pulse_width, "read_current": read_current, "hall_voltage": v,
            "hall_resistance": v / read_current, "time": t}


def _time_procedure(procedure, path: str, n: int) -> tuple[float, int]:
    """Run a Procedure through pymeasure's Worker into CSV Results; seconds and rows written."""
    from pymeasure.experiment import Results, Worker

    if os.path.exists(path):
        os.remove(path)                     # Results appends to an existing file
    worker = Worker(Results(procedure, path))
    t = time.perf_counter()
    worker.start()
    worker.join(timeout=3600)              # Worker.shutdown stops the CSV Recorder (joins it)
    dt = time.perf_counter() - t
    rows = len(pd.read_csv(path, comment="#"))
    assert rows == n, rows
    return dt, rows


def _stock_6221(spec: str, commands: tuple[str, ...]):
    """A simulated bench and a stock pymeasure Keithley6221 on it, Pulse Delta set up by raw writes."""
    from pymeasure.instruments.keithley import Keithley6221
    from labspin.sim_backend import SimBench
    from labspin.station import parse_sim_spec

    bench = SimBench(*parse_sim_spec(spec))
    k = Keithley6221(bench.addresses["keithley6221"], visa_library=bench.visa_library)
    k.source_compliance = 10
    for cmd in (":SOUR:PDEL:LOW 0", ":SOUR:PDEL:COUN 1", ":SOUR:PDEL:RANG BEST",
                ":SOUR:PDEL:INT 5", ":SOUR:PDEL:SWE OFF", ":SOUR:PDEL:LME 2") + commands:
        k.write(cmd)
    return bench, k


def _wait_armed(k, query: str) -> None:
    """Arming takes time (the 6221 configures the 2182A, UM 5-34): wait, then poll `…:ARM?`
    before `:INIT:IMM`. A stock user sleeps; on the simulator that is its virtual clock."""
    clock = k.adapter.connection.visalib.bench.clock
    clock.advance(0.1)
    while int(k.ask(query)) != 1:
        clock.advance(0.01)


def _fire_pulse_delta(k, high: float, width: float) -> None:
    """One fixed-output Pulse Delta pulse by raw writes (pymeasure has no property for it)."""
    k.write(f":SOUR:PDEL:HIGH {high:g}")
    k.write(f":SOUR:PDEL:WIDT {width:g}")
    k.write(f":SOUR:PDEL:SDEL {max(width / 2, 16e-6):g}")
    k.write(":TRAC:CLE")
    k.write(":SOUR:PDEL:ARM")
    _wait_armed(k, ":SOUR:PDEL:ARM?")
    k.write(":INIT:IMM")
    while float(k.ask(":TRAC:POIN:ACT?")) < 1:
        pass


def run_pymeasure(recipe, spec: str, path: str) -> tuple[float, int]:
    from pymeasure.experiment import Procedure
    from pymeasure.experiment.parameters import IntegerParameter

    class Staircase(Procedure):
        """The staircase loop as a pymeasure Procedure (pulse, read, emit one row)."""

        seed = IntegerParameter("Seed", default=1)
        DATA_COLUMNS = COLUMNS

        def startup(self):
            self.station = sim_station_spec(spec).open()

        def execute(self):
            st = self.station
            t0 = st.now()
            for i, s in enumerate(recipe.protocol.steps()):
                if self.should_stop():
                    break
                if s.pulse_current != 0.0:
                    st.pulse_source.pulse(s.pulse_current, s.pulse_width)
                r = st.hall_reader.read(s.read_current)
                self.emit("results", _row(i, s, r.read_current, r.hall_voltage, st.now() - t0))

        def shutdown(self):
            MESSAGES["pymeasure"] = _messages(self.station.bench, len(recipe.protocol))
            self.station.shutdown()
            self.station.close()

    return _time_procedure(Staircase(), path, len(recipe.protocol))


def run_pymeasure_stock(recipe, spec: str, path: str) -> tuple[float, int]:
    from pymeasure.experiment import Procedure

    class Staircase(Procedure):
        DATA_COLUMNS = COLUMNS

        def startup(self):
            self.bench, self.k = _stock_6221(spec, ())
            k = self.k
            k.delta_delay = 2e-3
            k.delta_cycles = 1
            k.delta_measurement_sets = 1
            k.buffer_points = 2

        def execute(self):
            k, clock = self.k, self.bench.clock
            t0 = clock.now
            for i, s in enumerate(recipe.protocol.steps()):
                if self.should_stop():
                    break
                if s.pulse_current != 0.0:
                    _fire_pulse_delta(k, s.pulse_current, s.pulse_width)
                    k.write(":SOUR:SWE:ABOR")
                k.delta_high_source = s.read_current
                k.write(":TRAC:CLE")
                k.delta_arm()
                _wait_armed(k, ":SOUR:DELT:ARM?")
                k.delta_start()
                v = k.delta_values[0]
                k.delta_abort()
                self.emit("results", _row(i, s, s.read_current, v, clock.now - t0))

        def shutdown(self):
            MESSAGES["stock"] = _messages(self.bench, len(recipe.protocol))
            self.k.shutdown()
            self.bench.close()

    return _time_procedure(Staircase(), path, len(recipe.protocol))


def run_pymeasure_stock_pulse_delta(recipe, spec: str, path: str) -> tuple[float, int]:
    """Stock pymeasure, reads as Pulse Delta pulses: two fixed-output Pulse Delta runs per point."""
    from pymeasure.experiment import Procedure

    class Staircase(Procedure):
        DATA_COLUMNS = COLUMNS

        def startup(self):
            self.bench, self.k = _stock_6221(spec, (":FORM:ELEM READ,TST", ":UNIT:VOLT:DC V"))
            self.k.buffer_points = 2

        def pulse_delta(self, high: float, width: float) -> float:
            k = self.k
            _fire_pulse_delta(k, high, width)
            v = float(k.ask(":TRAC:DATA?").split(",")[0])
            k.write(":SOUR:SWE:ABOR")
            return v

        def execute(self):
            clock = self.bench.clock
            t0 = clock.now
            for i, s in enumerate(recipe.protocol.steps()):
                if self.should_stop():
                    break
                width = s.pulse_width if s.pulse_current != 0.0 else 110e-6
                if s.pulse_current != 0.0:
                    self.pulse_delta(s.pulse_current, width)
                v = self.pulse_delta(s.read_current, width)
                self.emit("results", _row(i, s, s.read_current, v, clock.now - t0))

        def shutdown(self):
            MESSAGES["stock-pd"] = _messages(self.bench, len(recipe.protocol))
            self.k.shutdown()
            self.bench.close()

    return _time_procedure(Staircase(), path, len(recipe.protocol))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--preset", default="tilted")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats; best time is kept")
    args = ap.parse_args()
    recipe = load_recipe("staircase", {"cycles": args.cycles})
    spec = f"{args.preset}:1"
    names = ["labspin Runner + RunWriter (HDF5)", "labspin Runner, no listener",
             "pymeasure Procedure + Results CSV", "pymeasure, stock drivers + CSV",
             "labspin pulse_delta blocks + RunWriter", "labspin pulse_delta blocks, no listener",
             "pymeasure, stock, pulse-delta reads + CSV"]
    keys = ("labspin", "labspin", "pymeasure", "stock", "labspin-pd", "labspin-pd", "stock-pd")
    best = dict.fromkeys(names, float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        run_labspin(recipe, spec, None)                     # warm-up: imports, first bench
        run_labspin(recipe, spec, None, "pulse_delta")
        for _ in range(args.repeat):                        # interleaved: the machine is shared
            for name, fn in zip(names, (
                    lambda: run_labspin(recipe, spec, os.path.join(tmp, "run.h5")),
                    lambda: run_labspin(recipe, spec, None),
                    lambda: run_pymeasure(recipe, spec, os.path.join(tmp, "run.csv")),
                    lambda: run_pymeasure_stock(recipe, spec, os.path.join(tmp, "stock.csv")),
                    lambda: run_labspin(recipe, spec, os.path.join(tmp, "pd.h5"), "pulse_delta"),
                    lambda: run_labspin(recipe, spec, None, "pulse_delta"),
                    lambda: run_pymeasure_stock_pulse_delta(recipe, spec,
                                                            os.path.join(tmp, "stock-pd.csv")))):
                dt, n = fn()
                best[name] = min(best[name], dt)
    n = len(recipe.protocol)
    rate = {k: n / v for k, v in best.items()}
    base = rate[names[3]]
    print(f"staircase, {args.cycles} cycles = {n} points, simulator {spec}, best of {args.repeat}")
    print(f"{'path':<42} {'points/s':>10} {'vs pymeasure':>13} {'us/pt over loop':>16} {'msgs/pt':>8}")
    for name, key in zip(names, keys):
        loop = names[5] if key.endswith("-pd") else names[1]   # labspin's loop with the same reads
        over = (best[name] - best[loop]) / n * 1e6
        print(f"{name:<42} {rate[name]:>10,.0f} {rate[name] / base:>13.2f} {over:>16.1f}"
              f" {MESSAGES.get(key, float('nan')):>8.2f}")
    print("vs pymeasure: against the stock-driver loop with Delta reads (the issue's baseline);"
          " us/pt over loop: over labspin's listener-free loop with the same kind of reads")
    print("msgs/pt: messages written to the instruments per point; on a real GPIB bus (~1 ms each)"
          " they, not the host, set the rate")
    ours, blocks = rate[names[0]], rate[names[4]]
    pd_base = rate[names[6]]
    print(f"target >= 2,000 points/s: {'PASS' if ours >= 2000 else 'FAIL'} ({ours:,.0f});"
          f" target >= 2x pymeasure (stock drivers): per step {'PASS' if ours >= 2 * base else 'FAIL'}"
          f" ({ours / base:.2f}x), pulse_delta blocks {'PASS' if blocks >= 2 * base else 'FAIL'}"
          f" ({blocks / base:.2f}x); blocks vs the stock pulse-delta-read loop: {blocks / pd_base:.2f}x;"
          f" vs pymeasure storage on labspin's roles: {ours / rate[names[2]]:.2f}x")


if __name__ == "__main__":
    main()
