"""`labspin sim`: quick looks at the simulated bench through the real driver stack.

`labspin sim loop --device tilted --seed 1` pulses a simulated Hall bar through an unmodified
pymeasure `Keithley6221` (Pulse Delta pulses, Delta reads via the 2182A) served by
`labspin.sim_backend.SimBench`, and prints the switching loop R_H(I) and its switching currents.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import click
import numpy as np

from labspin.errors import UserError


@dataclass
class LoopResult:
    """A switching loop: up branch (-I_max → +I_max) then down branch (+I_max → -I_max)."""

    branch: np.ndarray          # "up" / "down" per point
    current: np.ndarray         # pulse current (A)
    hall_resistance: np.ndarray  # R_H read after each pulse (ohm)
    switching_current_up: float  # A, where the up branch crosses the middle of its span; nan if none
    switching_current_down: float
    window: float               # ohm, R_H(end of up branch) - R_H(end of down branch)


def loop_currents(max_current: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Pulse currents of the two branches, `steps` points each, both ends included."""
    up = np.linspace(-max_current, max_current, steps)
    return up, up[::-1].copy()


def crossing_current(currents: np.ndarray, r: np.ndarray) -> float:
    """Current where R_H first crosses the midpoint between its start and end (interpolated)."""
    mid = 0.5 * (r[0] + r[-1])
    s = np.sign(r - mid)
    for i in range(1, len(r)):
        if s[i] != 0 and s[i] != s[0]:
            r0, r1 = r[i - 1], r[i]
            t = 0.0 if r1 == r0 else (mid - r0) / (r1 - r0)
            return float(currents[i - 1] + t * (currents[i] - currents[i - 1]))
    return math.nan


def measure_loop(pulse_source, hall_reader, *, max_current: float, steps: int, width: float,
                 read_current: float) -> LoopResult:
    """Reset with one pulse at -I_max, then sweep up and down, reading R_H after every pulse."""
    up, down = loop_currents(max_current, steps)
    pulse_source.pulse(-max_current, width)
    currents = np.concatenate([up, down])
    r = np.empty(len(currents))
    for i, current in enumerate(currents):
        pulse_source.pulse(float(current), width)
        r[i] = hall_reader.read(read_current).hall_resistance
    n = len(up)
    return LoopResult(
        branch=np.array(["up"] * n + ["down"] * n),
        current=currents, hall_resistance=r,
        switching_current_up=crossing_current(up, r[:n]),
        switching_current_down=crossing_current(down, r[n:]),
        window=float(r[n - 1] - r[-1]),
    )


def critical_current(params) -> float:
    """I_c0 = J_c0 · width · thickness of the simulated device (A)."""
    return float(params.J_c0 * params.width * params.thickness)


def run_sim_loop(device: str, seed: int, *, width: float = 100e-6, max_current: float | None = None,
                 steps: int = 41, read_current: float = 100e-6) -> tuple[LoopResult, dict]:
    """Build a simulated bench, open the 6221 through its VISA library, measure one loop."""
    from labspin.drivers import open_instrument
    from labspin.drivers.hall import DeltaHallReader
    from labspin.drivers.pulse import K6221PulseSource
    from labspin.drivers.roles import LimitError, Limits
    from labspin.sim_backend import physics
    from labspin.sim_backend.bench import SimBench

    if device not in physics.PRESETS:
        raise UserError(f"--device {device!r}: unknown (known: {', '.join(sorted(physics.PRESETS))})")
    if steps < 3:
        raise UserError(f"--steps {steps}: need at least 3 points per branch")
    params = physics.preset(device)
    i_c = critical_current(params)
    if max_current is None:
        max_current = min(1.5 * i_c, 0.105)
    if not (math.isfinite(max_current) and 0 < max_current <= 0.105):
        raise UserError(f"--max-current {max_current!r}: must be in (0, 0.105] A (the 6221's range)")
    limits = Limits(max_pulse_current=max_current, max_read_current=max(abs(read_current), 1e-6))
    bench = SimBench(device, seed=seed)
    try:
        k = open_instrument("keithley6221", bench.addresses["keithley6221"],
                            visa_library=bench.visa_library)
        try:
            pulses, reader = K6221PulseSource(k, limits), DeltaHallReader(k, limits)
            try:
                result = measure_loop(pulses, reader, max_current=max_current, steps=steps,
                                      width=width, read_current=read_current)
            except LimitError as exc:
                raise UserError(f"sim loop: {exc}") from None
            finally:
                reader.shutdown()
                pulses.shutdown()
        finally:
            k.adapter.close()
    finally:
        bench.close()
    info = {"device": device, "seed": seed, "width": width, "max_current": max_current,
            "steps": steps, "read_current": read_current, "critical_current": i_c,
            "R_AHE": params.R_AHE}
    return result, info


def format_loop(result: LoopResult, info: dict) -> str:
    lines = [f"# switching loop: device {info['device']}, seed {info['seed']}, "
             f"pulse width {info['width'] * 1e6:g} us, read current {info['read_current'] * 1e6:g} uA, "
             f"I_c0 = {info['critical_current'] * 1e3:.3f} mA",
             f"{'branch':<6} {'current (mA)':>13} {'R_H (ohm)':>12}"]
    for b, i, r in zip(result.branch, result.current, result.hall_resistance):
        lines.append(f"{b:<6} {i * 1e3:>13.4f} {r:>12.6f}")
    lines.append(f"switching current (up branch):   {result.switching_current_up * 1e3:+.3f} mA")
    lines.append(f"switching current (down branch): {result.switching_current_down * 1e3:+.3f} mA")
    lines.append(f"window: {result.window:.4f} ohm")
    return "\n".join(lines)


def plot_loop(result: LoopResult, info: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.current) // 2
    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
    ax.plot(result.current[:n] * 1e3, result.hall_resistance[:n], "o-", ms=3, label="up (−I → +I)")
    ax.plot(result.current[n:] * 1e3, result.hall_resistance[n:], "s-", ms=3, label="down (+I → −I)")
    for i_sw in (result.switching_current_up, result.switching_current_down):
        if math.isfinite(i_sw):
            ax.axvline(i_sw * 1e3, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("pulse current I (mA)")
    ax.set_ylabel("Hall resistance R_H (Ω)")
    ax.set_title(f"{info['device']} (seed {info['seed']}), {info['width'] * 1e6:g} µs pulses")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@click.group()
def sim() -> None:
    """Simulated bench: try the driver stack and device presets without instruments."""


@sim.command("loop")
@click.option("--device", default="tilted", show_default=True, help="device preset (orange_peel, idmi, tilted)")
@click.option("--seed", default=1, show_default=True, type=int, help="simulator seed")
@click.option("--plot", "plot", type=click.Path(dir_okay=False), default=None, help="save the loop as a PNG")
@click.option("--overwrite", is_flag=True, help="replace an existing --plot file")
@click.option("--width", default=100e-6, show_default=True, type=float, help="pulse width (s), 50e-6 … 12e-3")
@click.option("--max-current", default=None, type=float, help="sweep amplitude (A); default 1.5 × I_c0")
@click.option("--steps", default=41, show_default=True, type=int, help="points per branch")
@click.option("--read-current", default=100e-6, show_default=True, type=float, help="Delta read current (A)")
def loop(device: str, seed: int, plot: str | None, overwrite: bool, width: float,
         max_current: float | None, steps: int, read_current: float) -> None:
    """Measure one switching loop R_H(I) on a simulated device and print it."""
    if plot is not None:
        if not plot.lower().endswith(".png"):
            raise UserError(f"--plot {plot}: must be a .png file")
        if os.path.exists(plot) and not overwrite:
            raise UserError(f"--plot {plot}: exists (use --overwrite to replace it)")
        parent = os.path.dirname(os.path.abspath(plot))
        if not os.path.isdir(parent):
            raise UserError(f"--plot {plot}: folder {parent} does not exist")
    if not (50e-6 <= width <= 12e-3):
        raise UserError(f"--width {width!r}: must be within the 6221 Pulse Delta range 50e-6 … 12e-3 s")
    if not (math.isfinite(read_current) and 0 < abs(read_current) <= 0.105):
        raise UserError(f"--read-current {read_current!r}: must be non-zero, |I| <= 0.105 A")
    result, info = run_sim_loop(device, seed, width=width, max_current=max_current, steps=steps,
                                read_current=read_current)
    click.echo(format_loop(result, info))
    if plot is not None:
        plot_loop(result, info, plot)
        click.echo(f"plot: {plot}")
