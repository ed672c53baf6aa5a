"""Fit a simulated device to measured runs (``labspin fit``): a digital twin of a Hall bar.

Loops at one or more pulse widths are fitted with the mean-field form of the simulator's
ensemble (labspin.sim_backend.physics, docs/physics.md): units with log-normal thresholds
I_c,j = I_c0·exp(σ_g·z_j) (z_j the normal quantiles of a grid), each switching in a pulse
(I, t_p) with P = 1 − exp(−(t_p/τ0)·exp(−Δ·x)), x = max(0, 1 − |I − I_shift|/I_c,j), towards
sign(I − I_shift)·polarity; the expected R_H = R0 + R_AHE·(2ū − 1) follows each measured current
sequence pulse by pulse (two passes, so the start state is the loop's own). Least squares
(scipy ``least_squares``) over all loops together give I_c0, Δ (with loops at ≥ 2 widths; else
fixed), σ_g, R_AHE, R0, I_shift and optionally τ0, with standard errors from the Jacobian.
Read noise and drift come from the residuals on the plateaus. Staircase / potentiation runs add
the CTC and its origin (read noise vs the device's stochastic switching, i.e. N_eff).

The refit check simulates the fitted device (``HallBar``, same currents and widths, the fitted
read noise) and tabulates measured vs simulated I_c±, window and transition width.

Joule heating is not modelled separately: I_c0 and Δ are effective values at the measured widths
(the device file sets ``thermal_resistance = 0`` so the simulator does not count it twice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from labspin.errors import FieldError, UserError

GRID = 64                     # quantile units of the mean-field model
DEFAULT_DELTA = 40.0          # Δ used when one pulse width cannot determine it


@dataclass
class Track:
    """One measured loop cycle: its pulse currents, width and signal."""

    width: float
    current: np.ndarray
    signal: np.ndarray
    run: str
    cycle: int


@dataclass
class FitResult:
    values: dict[str, float]                 # I_c0, delta, tau0, sigma_g, R_AHE, R0, I_shift, ...
    errors: dict[str, float | None]
    fixed: list[str]
    polarity: int
    tracks: list[Track]
    residual_rms: float
    notes: list[str] = field(default_factory=list)
    ctc: dict | None = None
    sources: list[str] = field(default_factory=list)
    sample: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- model

def _quantiles(n: int = GRID) -> np.ndarray:
    from scipy.special import ndtri
    return ndtri((np.arange(n) + 0.5) / n)


def model_tracks(tracks: Sequence[Track], I_c0: float, delta: float, tau0: float, sigma_g: float,
                 R_AHE: float, R0: float, I_shift: float, polarity: int = 1,
                 z: np.ndarray | None = None) -> list[np.ndarray]:
    """Expected signal of every track under the mean-field ensemble (see the module docstring)."""
    z = _quantiles() if z is None else z
    ic = I_c0 * np.exp(sigma_g * z)                        # (M,)
    T = max(t.current.size for t in tracks)
    K = len(tracks)
    cur = np.zeros((K, T))
    mask = np.zeros((K, T), dtype=bool)
    logw = np.empty((K, 1))
    for k, t in enumerate(tracks):
        cur[k, :t.current.size] = t.current
        mask[k, :t.current.size] = True
        logw[k, 0] = math.log(t.width / tau0)
    drive = cur - I_shift
    u = np.full((K, ic.size), 0.5)
    out = np.zeros((K, T))
    for _ in range(2):                                    # pass 1 sets the start state
        for s in range(T):
            d = drive[:, s:s + 1]
            x = np.maximum(0.0, 1.0 - np.abs(d) / ic[None, :])
            P = -np.expm1(-np.exp(logw - delta * x))
            P = np.where(mask[:, s:s + 1] & (d != 0), P, 0.0)
            up = (polarity * d) > 0
            u = np.where(up, u + (1 - u) * P, u - u * P)
            out[:, s] = u.mean(axis=1)
    return [R0 + R_AHE * (2 * out[k, :t.current.size] - 1) for k, t in enumerate(tracks)]


# --------------------------------------------------------------------------- data

def loop_tracks(analyses: Sequence[Any]) -> list[Track]:
    """Every loop cycle of the runs, with its median pulse width."""
    tracks: list[Track] = []
    for a in analyses:
        if a.kind != "loop":
            continue
        if getattr(a, "unit", "ohm") != "ohm":
            raise UserError(f"{a.sources[0]}: the device model fits R_H in ohm, this run holds "
                            f"{a.quantity} [{a.unit}]")
        d = a.data
        for cyc, g in d.groupby("cycle", sort=True):
            w = float(np.nanmedian(g["pulse_width"].to_numpy(float)))
            if not (math.isfinite(w) and w > 0):
                raise FieldError("pulse_width", f"cycle {cyc} has none (import the run with a "
                                 "pulse_width constant or a width column)", str(a.sources[0]))
            tracks.append(Track(width=w, current=g["pulse_current"].to_numpy(float),
                                signal=g["hall_resistance"].to_numpy(float), run=a.name,
                                cycle=int(cyc)))
    return tracks


def _initial(tracks: Sequence[Track], analyses: Sequence[Any], tau0: float) -> dict:
    from labspin.analysis import across_runs

    y = np.concatenate([t.signal for t in tracks])
    lo, hi = np.percentile(y, [5, 95])
    cur = np.concatenate([t.current for t in tracks])
    big = np.abs(cur) >= 0.7 * np.abs(cur).max()
    # polarity: the signal after strong positive pulses is high for +1
    pos = y[big & (cur > 0)]
    neg = y[big & (cur < 0)]
    polarity = 1 if (pos.size == 0 or neg.size == 0 or pos.mean() >= neg.mean()) else -1
    res = across_runs([a for a in analyses if a.kind == "loop"], tau0=tau0)
    table = res["widths"]
    guess = {"R0": (lo + hi) / 2, "R_AHE": max((hi - lo) / 2, 1e-12), "polarity": polarity,
             "I_shift": float(np.nanmean(table["shift"])) if len(table) else 0.0}
    half = np.abs(table["ic_half"].to_numpy(float)) if len(table) else np.array([])
    widths = table["pulse_width"].to_numpy(float) if len(table) else np.array([])
    from labspin.analysis import thermal_activation_fit
    ta = thermal_activation_fit(widths, half, tau0) if np.unique(widths).size >= 2 else {}
    if ta.get("delta") and 3 < ta["delta"] < 1000:
        guess["delta"], guess["I_c0"] = float(ta["delta"]), float(ta["I_c0"])
    else:
        guess["delta"] = DEFAULT_DELTA
        ic = float(np.nanmedian(half)) if half.size and np.isfinite(half).any() else 0.5 * np.abs(cur).max()
        w = float(np.nanmedian(widths)) if widths.size else float(np.median([t.width for t in tracks]))
        guess["I_c0"] = ic / max(0.05, 1 - math.log(w / tau0) / DEFAULT_DELTA)
    guess["sigma_g"] = 0.15
    return guess


# --------------------------------------------------------------------------- fit

def fit_loops(analyses: Sequence[Any], *, tau0: float = 1e-9, fit_tau0: bool = False,
              delta: float | None = None) -> FitResult:
    """Least-squares fit of the mean-field loop model to every loop cycle of ``analyses``."""
    from scipy.optimize import least_squares

    tracks = loop_tracks(analyses)
    if not tracks:
        raise UserError(f"{analyses[0].sources[0] if analyses else 'fit'}: no loop runs to fit "
                        "(the loop model needs R_H vs pulse current)")
    notes: list[str] = []
    widths = sorted({t.width for t in tracks})
    g = _initial(tracks, analyses, tau0)
    polarity = int(g.pop("polarity"))
    fixed = []
    if delta is not None:
        g["delta"] = float(delta)
        fixed.append("delta")
    elif len(widths) < 2:
        fixed.append("delta")
        notes.append(f"one pulse width: Δ cannot be separated from I_c0; fixed at {g['delta']:g} "
                     "(give delta, or loops at several widths)")
    if not fit_tau0:
        fixed.append("tau0")
    elif len(widths) < 3:
        notes.append("τ0 fitted from fewer than 3 widths: poorly determined")
    I0 = g["I_c0"]
    R_scale = g["R_AHE"]
    # free parameters in scaled form: I_c0/I0, ln Δ, σ_g, R_AHE/Rs, (R0-g)/Rs, I_shift/I0, ln τ0
    names = ["I_c0", "delta", "sigma_g", "R_AHE", "R0", "I_shift", "tau0"]
    free = [n for n in names if n not in fixed]

    def unpack(x: np.ndarray) -> dict:
        v = {"delta": g["delta"], "tau0": tau0}
        it = iter(x)
        for n in free:
            val = next(it)
            if n == "I_c0":
                v[n] = val * I0
            elif n == "delta":
                v[n] = math.exp(val)
            elif n == "sigma_g":
                v[n] = val
            elif n == "R_AHE":
                v[n] = val * R_scale
            elif n == "R0":
                v[n] = g["R0"] + val * R_scale
            elif n == "I_shift":
                v[n] = val * I0
            elif n == "tau0":
                v[n] = math.exp(val)
        return v

    x0, lo, hi = [], [], []
    for n in free:
        if n == "I_c0":
            x0.append(1.0); lo.append(0.05); hi.append(20.0)
        elif n == "delta":
            x0.append(math.log(g["delta"])); lo.append(math.log(2.0)); hi.append(math.log(2000.0))
        elif n == "sigma_g":
            x0.append(g["sigma_g"]); lo.append(1e-3); hi.append(2.0)
        elif n == "R_AHE":
            x0.append(1.0); lo.append(1e-3); hi.append(10.0)
        elif n == "R0":
            x0.append(0.0); lo.append(-np.inf); hi.append(np.inf)
        elif n == "I_shift":
            x0.append(g["I_shift"] / I0); lo.append(-0.9); hi.append(0.9)
        elif n == "tau0":
            x0.append(math.log(tau0)); lo.append(math.log(1e-13)); hi.append(math.log(1e-6))
    y = np.concatenate([t.signal for t in tracks])
    z = _quantiles()

    def resid(x: np.ndarray) -> np.ndarray:
        v = unpack(x)
        m = model_tracks(tracks, v["I_c0"], v["delta"], v["tau0"], v["sigma_g"], v["R_AHE"],
                         v["R0"], v["I_shift"], polarity, z)
        return (np.concatenate(m) - y) / R_scale

    x0 = np.clip(np.array(x0), np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", diff_step=1e-4, max_nfev=400)
    v = {k: float(x) for k, x in unpack(sol.x).items()}
    # standard errors: cov = s²·(JᵀJ)⁻¹ in the scaled parameters, mapped back (delta method)
    J = sol.jac
    dof = max(1, y.size - len(free))
    s2 = float(np.sum(sol.fun ** 2) / dof)
    errors: dict[str, float | None] = {n: None for n in names}
    try:
        cov = np.linalg.pinv(J.T @ J) * s2
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        for i, n in enumerate(free):
            scale = {"I_c0": I0, "delta": v["delta"], "sigma_g": 1.0, "R_AHE": R_scale,
                     "R0": R_scale, "I_shift": I0, "tau0": v["tau0"]}[n]
            errors[n] = float(sd[i] * scale)
    except np.linalg.LinAlgError:
        notes.append("uncertainties unavailable (singular Jacobian)")
    model = np.concatenate(model_tracks(tracks, v["I_c0"], v["delta"], v["tau0"], v["sigma_g"],
                                        v["R_AHE"], v["R0"], v["I_shift"], polarity, z))
    noise, drift = read_noise_and_drift(tracks, model, v)
    v["read_noise"], v["drift"] = noise, drift
    errors["read_noise"] = errors["drift"] = None
    sample = dict(analyses[0].device) if analyses else {}
    sources = [s for a in analyses for s in a.sources]
    return FitResult(values=v, errors=errors, fixed=fixed, polarity=polarity, tracks=tracks,
                     residual_rms=float(np.sqrt(np.mean((model - y) ** 2))), notes=notes,
                     sources=sources, sample=sample)


def read_noise_and_drift(tracks: Sequence[Track], model: np.ndarray, v: dict) -> tuple[float, float]:
    """White read noise (from successive differences of the residual on the saturated plateaus)
    and the slower drift (plateau residual variance beyond it), both in ohm rms."""
    y = np.concatenate([t.signal for t in tracks])
    res = y - model
    frac = (model - v["R0"]) / v["R_AHE"] if v["R_AHE"] > 0 else np.zeros_like(model)
    plateau = np.abs(frac) > 0.97
    # successive pairs within one track, both on a plateau
    ends = np.cumsum([t.signal.size for t in tracks])
    same = np.ones(y.size - 1, dtype=bool)
    same[ends[:-1] - 1] = False
    pair = same & plateau[1:] & plateau[:-1]
    d = np.diff(res)[pair]
    if d.size < 3:
        return 0.0, 0.0
    mad = float(np.median(np.abs(d - np.median(d)))) * 1.4826
    white = mad / math.sqrt(2)
    p = res[plateau]
    total = float(np.std(p, ddof=1)) if p.size > 1 else 0.0
    return white, math.sqrt(max(0.0, total ** 2 - white ** 2))


# --------------------------------------------------------------------------- CTC and its origin

def simulate_run(params: Any, data: pd.DataFrame, seed: int = 0, read_noise: float = 0.0) -> pd.DataFrame:
    """The run's own pulse sequence (current, width per point) on a simulated device; a read
    (with white read noise) after each point, like the measurement."""
    from labspin.sim_backend.physics import HallBar

    bar = HallBar(params, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    cur = data["pulse_current"].to_numpy(float)
    wid = data["pulse_width"].to_numpy(float)
    r = np.empty(cur.size)
    for k in range(cur.size):
        if cur[k] != 0 and math.isfinite(cur[k]) and wid[k] > 0:
            bar.pulse(float(cur[k]), float(wid[k]))
        r[k] = bar.hall_resistance
    if read_noise > 0:
        r = r + rng.normal(0.0, read_noise, r.size)
    out = data[["pulse_index", "cycle", "step", "pulse_current", "pulse_width"]].copy()
    out["hall_resistance"] = r
    for c in ("read_current", "hall_voltage", "time"):
        out[c] = 0.0
    return out


def fit_ctc(analyses: Sequence[Any], fit: FitResult, params: Any, seed: int = 0,
            cluster_size: int = 10) -> dict | None:
    """CTC of a staircase / potdep run and its origin: the read-noise share (fitted read noise
    over the reads averaged per state) and the device's stochastic switching, whose size sets
    the number of independent units N_eff. N_eff is calibrated by simulating the run's own
    pulse sequence on the fitted device (CTC² ∝ 1/N_eff for independent units), twice."""
    from labspin.analysis import analyze_run

    runs = [a for a in analyses if a.kind in ("staircase", "potdep") and len(a.states) >= 2
            and a.ctc is not None and "pulse_width" in a.data and np.isfinite(a.data["pulse_width"]).all()]
    if not runs:
        return None
    a = runs[0]
    if getattr(a, "unit", "ohm") != "ohm":
        return None
    window = a.window["window"]
    read = fit.values.get("read_noise", 0.0)
    per = a.data[a.data["state"] >= 0].groupby(["state", "cycle"]).size()
    reads = float(per.median()) if len(per) else 1.0
    read_ctc = read / math.sqrt(max(reads, 1.0)) / window if window > 0 else 0.0
    device_ctc = math.sqrt(max(0.0, a.ctc ** 2 - read_ctc ** 2))
    kind = a.kind
    meta = {"path": "fit", "protocol": {"kind": kind, "name": kind}, "sample": {}}

    def sim_ctc(n_units: int) -> float:
        p = params.replace(n_units=int(n_units), cluster_size=cluster_size)
        d = simulate_run(p, a.data, seed=seed, read_noise=0.0)
        d.attrs.update(meta)
        c = analyze_run(d).ctc
        return c if c is not None else math.nan

    n = max(cluster_size, int(params.n_units))
    trace = []
    for _ in range(2):
        c = sim_ctc(n)
        trace.append({"n_units": n, "device_ctc_sim": c})
        if not (c > 0 and device_ctc > 0):
            break
        n = int(np.clip(round(n * (c / device_ctc) ** 2), cluster_size, 5_000_000))
    final = sim_ctc(n)
    trace.append({"n_units": n, "device_ctc_sim": final})
    return {"run": a.name, "ctc": a.ctc, "ctc_definition": a.ctc_definition,
            "states": a.distinguishable, "read_noise_ctc": read_ctc, "device_ctc": device_ctc,
            "reads_per_state": reads, "n_units": n, "cluster_size": cluster_size,
            "n_eff": n / cluster_size, "device_ctc_sim": final,
            "origin": ("device switching (independent units, N_eff)" if device_ctc >= read_ctc
                       else "read noise"),
            "calibration": trace}


# --------------------------------------------------------------------------- device file

def device_table(fit: FitResult, *, width: float | None = None,
                 thickness: float | None = None, cluster_size: int = 10) -> tuple[dict, dict, list[str]]:
    """([device] table in DeviceParams names, [fit] table, notes)."""
    from labspin.sim_backend.physics import DeviceParams

    notes = []
    base = DeviceParams()
    w = width or fit.sample.get("width")
    t = thickness or fit.sample.get("thickness")
    if not w or not t:
        notes.append(f"channel geometry not in the run's sample: using width {base.width:g} m, "
                     f"thickness {base.thickness:g} m (give width and thickness): J_c0 and "
                     "J_shift scale with it, I_c0 does not")
        w, t = w or base.width, t or base.thickness
    area = float(w) * float(t)
    v, e = fit.values, fit.errors
    n_units = max(int((fit.ctc or {}).get("n_units") or base.n_units), cluster_size)
    dev = {
        "name": f"fit-{fit.sample.get('id', 'device')}",
        "delta": v["delta"], "J_c0": v["I_c0"] / area, "tau0": v["tau0"],
        "sigma_g": v["sigma_g"], "R_AHE": v["R_AHE"], "R0": v["R0"],
        "J_shift": v["I_shift"] / area, "read_noise": v["read_noise"], "drift": v["drift"],
        "width": float(w), "thickness": float(t), "theta_sh_sign": int(fit.polarity),
        "sigma_J": 0.0, "thermal_resistance": 0.0, "n_units": n_units, "cluster_size": cluster_size,
    }
    if fit.sample.get("r_xx"):
        dev["R_xx"] = float(fit.sample["r_xx"])
    unc = {"delta": e.get("delta"), "J_c0": None if e.get("I_c0") is None else e["I_c0"] / area,
           "tau0": e.get("tau0"), "sigma_g": e.get("sigma_g"), "R_AHE": e.get("R_AHE"),
           "R0": e.get("R0"), "J_shift": None if e.get("I_shift") is None else e["I_shift"] / area}
    fit_doc = {"sources": fit.sources, "I_c0": v["I_c0"], "I_c0_err": e.get("I_c0"),
               "I_shift": v["I_shift"], "fixed": fit.fixed, "residual_rms": fit.residual_rms,
               "widths": sorted({tr.width for tr in fit.tracks}), "notes": fit.notes + notes,
               "uncertainty": {k: val for k, val in unc.items() if val is not None}}
    if fit.ctc:
        fit_doc["ctc"] = {k: val for k, val in fit.ctc.items() if val is not None and k != "calibration"}
    return dev, fit_doc, notes


# --------------------------------------------------------------------------- refit check

def simulate_tracks(params: Any, tracks: Sequence[Track], seed: int = 0,
                    read_noise: float = 0.0) -> list[np.ndarray]:
    """The fitted device on the simulator (``HallBar``): same currents and widths, plus white
    read noise. A warm-up pass of each width's first track sets the start state."""
    from labspin.sim_backend.physics import HallBar

    bar = HallBar(params, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    out = []
    warmed: set[float] = set()
    for t in tracks:
        if t.width not in warmed:
            for i in t.current:
                if i != 0:
                    bar.pulse(float(i), t.width)
            warmed.add(t.width)
        r = np.empty(t.current.size)
        for k, i in enumerate(t.current):
            if i != 0:
                bar.pulse(float(i), t.width)
            r[k] = bar.hall_resistance
        out.append(r + rng.normal(0.0, read_noise, r.size) if read_noise > 0 else r)
    return out


def transition_width(current: np.ndarray, signal: np.ndarray, lo: float, hi: float) -> float:
    """(I_90 − I_10)/I_50 on the rising part of a loop (NaN if it does not cross)."""
    span = hi - lo
    if span == 0:
        return math.nan
    cur, f = np.asarray(current, float), (np.asarray(signal, float) - lo) / span
    i_top = int(np.argmax(cur))
    # the up branch: from the lowest current before the maximum to the maximum
    start = int(np.argmin(cur[:i_top + 1])) if i_top > 0 else 0
    c, y = cur[start:i_top + 1], f[start:i_top + 1]
    if c.size < 3 or not (y.min() < 0.1 and y.max() > 0.9):
        return math.nan
    if y[-1] < y[0]:          # negative polarity: falling up branch
        y = 1 - y

    def cross(level: float) -> float:
        k = int(np.argmax(y >= level))
        if k == 0:
            return float(c[0])
        return float(c[k - 1] + (level - y[k - 1]) / (y[k] - y[k - 1]) * (c[k] - c[k - 1]))

    i50 = cross(0.5)
    return (cross(0.9) - cross(0.1)) / i50 if i50 else math.nan


def figures(tracks: Sequence[Track], signals: Sequence[np.ndarray]) -> pd.DataFrame:
    """Per pulse width: I_c±, window and transition width of the given signals."""
    from labspin.analysis import switching_currents

    rows = []
    by_w: dict[float, list[int]] = {}
    for k, t in enumerate(tracks):
        by_w.setdefault(t.width, []).append(k)
    for w, ks in sorted(by_w.items()):
        y = np.concatenate([signals[k] for k in ks])
        lo, hi = np.percentile(y, [2, 98])
        d = pd.DataFrame({"cycle": np.concatenate([np.full(tracks[k].current.size, k) for k in ks]),
                          "pulse_current": np.concatenate([tracks[k].current for k in ks]),
                          "hall_resistance": y})
        lp, _ = switching_currents(d, (lo + hi) / 2)
        tw = [transition_width(tracks[k].current, signals[k], lo, hi) for k in ks]
        tw = [x for x in tw if math.isfinite(x)]
        rows.append({"pulse_width": w, "ic_plus": lp["ic_plus"]["mean"],
                     "ic_minus": lp["ic_minus"]["mean"], "window": hi - lo,
                     "transition": float(np.mean(tw)) if tw else math.nan})
    return pd.DataFrame(rows)


def compare(fit: FitResult, params: Any, seed: int = 0) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Measured vs refit-simulated figures per pulse width; also the simulated tracks."""
    sim = simulate_tracks(params, fit.tracks, seed, fit.values.get("read_noise", 0.0))
    meas = figures(fit.tracks, [t.signal for t in fit.tracks])
    simf = figures(fit.tracks, sim)
    table = meas.merge(simf, on="pulse_width", suffixes=("_meas", "_sim"))
    return table, sim


def format_result(fit: FitResult, device: dict, table: pd.DataFrame) -> str:
    v, e = fit.values, fit.errors

    def pm(name: str, scale: float = 1.0, unit: str = "", fmt: str = ".4g") -> str:
        err = e.get(name)
        txt = f"{v[name] * scale:{fmt}}"
        if name in fit.fixed:
            return f"{txt} {unit} (fixed)".replace("  ", " ")
        return (f"{txt} ± {err * scale:.2g} {unit}" if err is not None else f"{txt} {unit}").rstrip()

    lines = ["fitted parameters (± standard error):",
             f"  I_c0      {pm('I_c0', 1e3, 'mA')}   (J_c0 = {device['J_c0']:.4g} A/m²)",
             f"  delta     {pm('delta')}",
             f"  tau0      {pm('tau0', 1.0, 's')}",
             f"  sigma_g   {pm('sigma_g')}   (transition width)",
             f"  R_AHE     {pm('R_AHE', 1.0, 'ohm')}   (ΔR_H = {2 * v['R_AHE']:.4g} ohm)",
             f"  R0        {pm('R0', 1.0, 'ohm')}",
             f"  I_shift   {pm('I_shift', 1e3, 'mA')}   (J_shift = {device['J_shift']:.4g} A/m²)",
             f"  read_noise {v['read_noise']:.3g} ohm rms, drift {v['drift']:.3g} ohm rms (plateau residuals)",
             f"  polarity  {'+' if fit.polarity > 0 else '-'} (theta_sh_sign = {fit.polarity}); "
             f"residual rms {fit.residual_rms:.3g} ohm"]
    if fit.ctc:
        c = fit.ctc
        pct = (lambda x: "—" if x is None else f"{x * 100:.3g} %")
        lines.append(f"  CTC ({c['ctc_definition']}) {pct(c['ctc'])} from {c['run']}: read noise "
                     f"{pct(c['read_noise_ctc'])}, device switching {pct(c['device_ctc'])} -> "
                     f"N_eff = {c['n_eff']:.0f} independent units (simulated: "
                     f"{pct(c['device_ctc_sim'])}); origin: {c['origin']}")
    lines.append("measured vs refit-simulated:")
    lines.append(f"  {'width (s)':>10} {'Ic+ meas':>9} {'Ic+ sim':>9} {'Ic- meas':>9} {'Ic- sim':>9} "
                 f"{'window meas':>11} {'window sim':>10} {'trans meas':>10} {'trans sim':>9}")
    for r in table.itertuples():
        lines.append(f"  {r.pulse_width:>10.3g} {r.ic_plus_meas * 1e3:>7.4g}mA {r.ic_plus_sim * 1e3:>7.4g}mA "
                     f"{r.ic_minus_meas * 1e3:>7.4g}mA {r.ic_minus_sim * 1e3:>7.4g}mA "
                     f"{r.window_meas:>11.4g} {r.window_sim:>10.4g} {r.transition_meas:>10.3g} "
                     f"{r.transition_sim:>9.3g}")
    for note in fit.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def plot_overlay(fit: FitResult, sim: Sequence[np.ndarray], path: str | Path) -> Path:
    """Measured (points) and refit-simulated (lines) loops, one colour per pulse width."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    widths = sorted({t.width for t in fit.tracks})
    cmap = matplotlib.colormaps["viridis"]
    seen: set[float] = set()
    for t, s in zip(fit.tracks, sim):
        col = cmap(widths.index(t.width) / max(1, len(widths) - 1))
        first = t.width not in seen
        seen.add(t.width)
        ax.plot(t.current * 1e3, t.signal, "o", ms=2.5, color=col, alpha=0.6,
                label=f"measured, {t.width:g} s" if first else None)
        ax.plot(t.current * 1e3, s, "-", lw=1.2, color=col,
                label=f"simulated fit, {t.width:g} s" if first else None)
    v = fit.values
    ax.set_xlabel("pulse current (mA)")
    ax.set_ylabel("Hall resistance R$_H$ (Ω)")
    ax.set_title(f"labspin fit: Δ = {v['delta']:.3g}, I$_{{c0}}$ = {v['I_c0'] * 1e3:.3g} mA, "
                 f"σ$_g$ = {v['sigma_g']:.2g}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120)
    return Path(path)
