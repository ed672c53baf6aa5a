"""`labspin sim`: quick looks at the simulated bench through the real driver stack.

`labspin sim loop --device tilted --seed 1` runs the shipped `loop` recipe on a simulated Hall
bar — pymeasure `Keithley6221` Pulse Delta pulses and Delta reads via the 2182A, served by
`labspin.sim_backend.SimBench`, driven by the runner with its limit checks and shutdown — and
prints the switching loop R_H(I) with the switching currents from `labspin.analysis`.
"""
from __future__ import annotations

import math

import click
import numpy as np
import pandas as pd

from labspin.errors import UserError


class _Collect:
    """Runner listener keeping the points in memory (no run file for a quick look)."""

    def __init__(self) -> None:
        self.blocks: list[dict] = []

    def on_start(self, info) -> None:
        self.info = info

    def on_points(self, block: dict) -> None:
        self.blocks.append({k: np.array(v) for k, v in block.items()})

    def on_end(self, status: str, error: str | None) -> None:
        self.status, self.error = status, error

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: np.concatenate([b[k] for b in self.blocks]) for k in self.blocks[0]})


def critical_current(params) -> float:
    """I_c0 = J_c0 · width · thickness of the simulated device (A)."""
    return float(params.J_c0 * params.width * params.thickness)


def run_sim_loop(device: str, seed: int, *, width: float = 100e-6, max_current: float | None = None,
                 steps: int = 21, read_current: float = 100e-6):
    """One `loop` cycle on the simulated device; returns its RunAnalysis (data, I_c±, window)."""
    from labspin.analysis import analyze_run
    from labspin import measure
    from labspin.protocols import load_recipe
    from labspin.device_file import resolve_device
    from labspin.station import sim_station_spec

    params = resolve_device(device)                 # a preset or a device file; UserError
    if max_current is None:
        max_current = 1.5 * critical_current(params)
    recipe = load_recipe("loop", {"max_current": max_current, "current_steps": steps,
                                  "pulse_width": width, "read_current": read_current, "cycles": 1})
    spec = sim_station_spec(f"{device}:{seed}")
    collect = _Collect()        # no run file; limits (|I|·R_xx vs compliance...) refused in one line
    status = measure.run(measure.prepare(recipe, spec, None, [collect])).state
    if status != "completed":
        raise UserError(f"sim loop on {device}: the run ended {status}: {collect.error}")
    data = collect.frame()
    data.attrs.update(path=f"sim:{device}:{seed}", protocol={"name": "loop", "kind": "loop",
                      "parameters": recipe.protocol.parameters()}, sample=spec.sample)
    return analyze_run(data)


def format_loop(a, width: float, read_current: float) -> str:
    d = a.data
    cur, r = d["pulse_current"].to_numpy(), d["hall_resistance"].to_numpy()
    branch = np.where(np.diff(cur, prepend=0.0) >= 0, "up", "down")
    lines = [f"# switching loop: {a.device_id}, pulse width {width * 1e6:g} us, "
             f"read current {read_current * 1e6:g} uA",
             f"{'branch':<6} {'current (mA)':>13} {'R_H (ohm)':>12}"]
    lines += [f"{b:<6} {i * 1e3:>13.4f} {x:>12.6f}" for b, i, x in zip(branch, cur, r)]
    for key, name in (("ic_plus", "up"), ("ic_minus", "down")):
        ic = a.loop[key]["mean"]
        lines.append(f"switching current ({name} branch): {' ' if name == 'up' else ''}  "
                     + (f"{ic * 1e3:+.3f} mA" if math.isfinite(ic) else "none (no crossing)"))
    lines.append(f"window: {a.window['window']:.4f} ohm")
    return "\n".join(lines)


@click.group()
def sim() -> None:
    """Simulated bench: try the driver stack and device presets without instruments."""


@sim.command("loop")
@click.option("--device", default="tilted", show_default=True, help="device preset (orange_peel, idmi, tilted) or a device file (labspin fit -o)")
@click.option("--seed", default=1, show_default=True, type=int, help="simulator seed")
@click.option("--plot", "plot", type=click.Path(dir_okay=False), default=None, help="save the loop as a PNG")
@click.option("--overwrite", is_flag=True, help="replace an existing --plot file")
@click.option("--width", default=100e-6, show_default=True, type=float, help="pulse width (s), 50e-6 … 12e-3")
@click.option("--max-current", default=None, type=float, help="sweep amplitude (A); default 1.5 × I_c0")
@click.option("--steps", default=21, show_default=True, type=int, help="pulses from 0 to the sweep amplitude")
@click.option("--read-current", default=100e-6, show_default=True, type=float, help="Delta read current (A)")
def loop(device: str, seed: int, plot: str | None, overwrite: bool, width: float,
         max_current: float | None, steps: int, read_current: float) -> None:
    """Measure one switching loop R_H(I) on a simulated device and print it."""
    if plot is not None:
        from labspin.outputs import check_output_file
        check_output_file(plot, overwrite=overwrite, suffix=".png", label="--plot")
    a = run_sim_loop(device, seed, width=width, max_current=max_current, steps=steps,
                     read_current=read_current)
    click.echo(format_loop(a, width, read_current))
    if plot is not None:
        from labspin.report import plot_loop
        plot_loop(a, plot)
        click.echo(f"plot: {plot}")
