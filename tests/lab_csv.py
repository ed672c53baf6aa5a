"""Loops "from another lab": a simulated Hall bar of known parameters written as quirky CSV files.

The files have what third-party exports have: a UTF-8 BOM, a quoted header with an embedded
newline and units in brackets, currents in mA, numbers like 0.09999999999999999, ragged rows (the
constant columns written only on the first rows), a sample-name column and a field column.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: the device behind the files (agreed DeviceParams names; `delta` maps to older `delta0`)
TRUTH = {"name": "lab", "delta": 30.0, "J_c0": 1.3e11, "tau0": 1e-9, "sigma_g": 0.12,
         "R_AHE": 0.095, "R0": 1.9, "width": 10e-6, "thickness": 6e-9, "sigma_J": 0.005,
         "thermal_resistance": 0.0, "n_units": 20000, "cluster_size": 10,
         # agreed names a simulator may not have yet (then ignored): none of these effects here
         "J_shift": 0.0, "read_noise": 0.0, "drift": 0.0}
WIDTHS = (1e-4, 1e-3, 1e-2)          # s: within the simulated bench's pulse-width limits
READ_NOISE = 0.65e-3                 # ohm rms


def truth_params():
    from labspin.device_file import params_from_table
    return params_from_table(dict(TRUTH), "TRUTH")[0]


def i_c0() -> float:
    return TRUTH["J_c0"] * TRUTH["width"] * TRUTH["thickness"]


def sweep(max_ma: float = 8.0, step_ma: float = 0.1) -> np.ndarray:
    """0 → +max → −max → 0 in mA."""
    up = np.arange(0, max_ma + 1e-9, step_ma)
    return np.concatenate([up, up[::-1][1:], -up[1:], -up[::-1][1:]])


def loops(width: float, cycles: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(current mA, R_H ohm) of `cycles` loops of the TRUTH device at one pulse width."""
    from labspin.sim_backend.physics import HallBar

    bar = HallBar(truth_params(), seed=seed)
    rng = np.random.default_rng(seed + 1000)
    cur = np.tile(sweep(), cycles + 1)
    r = np.empty(cur.size)
    for k, i in enumerate(cur):
        if i != 0:
            bar.pulse(i * 1e-3, width)
        r[k] = bar.hall_resistance + rng.normal(0, READ_NOISE)
    n = sweep().size
    return cur[n:], r[n:]              # the first cycle only sets the start state


def write_quirky(path: Path, width: float, cycles: int = 3, seed: int = 1) -> Path:
    """One loop file per pulse width, in the quirky format of the module docstring."""
    cur, r = loops(width, cycles, seed)
    lines = ['"Current\n(mA)";"Hall R [Ohm]";"Pulse width (ms)";"Hx (Oe)";"Sample"']
    for k, (i, x) in enumerate(zip(cur.tolist(), r.tolist())):
        cells = ["0.09999999999999999" if i == 0.1 else repr(i), repr(x)]
        if k < 2:                      # constant columns only on the first rows: ragged file
            cells += [f"{width * 1e3:g}", "100", '"D7; lab B"']
        lines.append(";".join(cells))
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path
