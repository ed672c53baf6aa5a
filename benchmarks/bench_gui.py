"""Live-plot redraw rate with a large run in memory (offscreen Qt).

Fills the live plots with N synthetic staircase points (11 states, noisy), then times full
redraws: `LivePlots.refresh()` (new data handed to the curves) followed by a synchronous
repaint of the widget, as the 25 Hz timer does during a run. Prints one table row per case:
wall-clock fps, and CPU ms per frame (Qt renders offscreen in this one thread, so 1000 / that
is the fps an unloaded core would give; on a shared machine the wall figure understates it).

    python benchmarks/bench_gui.py [--points 1000000] [--redraws 30]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6 import QtWidgets

from labspin.gui.plots import LivePlots


def staircase_block(start: int, n: int, states: int = 11, seed: int = 0) -> dict:
    rng = np.random.default_rng([seed, start])
    idx = np.arange(start, start + n)
    step = idx % states
    cur = np.where(step == 0, -7.5e-3, 2.5e-3 + 3.5e-3 * (step - 1) / max(1, states - 2))
    r = 1.0 + 0.1 * step + 0.002 * rng.standard_normal(n)
    return {"pulse_index": idx, "cycle": idx // states, "step": step, "pulse_current": cur,
            "pulse_width": np.full(n, 1e-4), "read_current": np.full(n, 1e-4),
            "hall_voltage": r * 1e-4, "hall_resistance": r, "time": idx * 1e-3}


def bench(app, plots: LivePlots, n_points: int, redraws: int, *, appending: bool,
          view: str) -> tuple[float, float]:
    """(frames per wall second, CPU ms per frame) — the CPU figure is what a loaded machine skews least."""
    plots.clear(cycles_hint=(n_points + redraws * 256) // 11 + 1)
    block = 4096
    for i in range(0, n_points, block):
        plots.append(staircase_block(i, min(block, n_points - i)))
    plots.refresh(force_hist=True)
    vb = plots.index_plot.getPlotItem().getViewBox()
    if view == "all":  # the whole run in view, x axis spanning the expected length (as in a run)
        plots.set_span(n_points + redraws * 256)
    else:  # the last 2 % of the run, as when zoomed into recent cycles
        vb.setXRange(n_points * 0.98, n_points, padding=0)
    plots.repaint()
    app.processEvents()
    t0, c0 = time.perf_counter(), time.process_time()
    nxt = n_points
    for _ in range(redraws):
        if appending:  # a runner block per frame: new data, so the curves really are rebuilt
            plots.append(staircase_block(nxt, 256))
            nxt += 256
        else:  # no new data: the user pans, so every curve is re-clipped and redrawn
            x0, x1 = vb.viewRange()[0]
            shift = (x1 - x0) * 0.01
            vb.setXRange(x0 - shift, x1 - shift, padding=0)
        plots.refresh()
        plots.repaint()
        app.processEvents()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return redraws / wall, 1000 * cpu / redraws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--redraws", type=int, default=30)
    args = ap.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    plots = LivePlots()
    plots.resize(1100, 700)
    plots.show()
    print(f"{'points':>10} {'view':>8} {'per frame':>18} {'fps':>8} {'cpu ms/frame':>13} {'cpu-bound fps':>14}")
    for n in args.points:
        for view in ("all", "zoomed"):
            for appending in (True, False):
                fps, cpu_ms = bench(app, plots, n, args.redraws, appending=appending, view=view)
                print(f"{n:>10} {view:>8} {'+256-pt block' if appending else 'pan 1 %':>18} {fps:>8.1f}"
                      f" {cpu_ms:>13.1f} {1000 / cpu_ms:>14.1f}")


if __name__ == "__main__":
    main()
