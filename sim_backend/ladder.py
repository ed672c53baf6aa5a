"""Staircase ladder design: reset current and pulse amplitudes that give a simulated device's
staircase equally separated states (docs/physics.md §Staircase ladders). Not physics itself: a
mean-field model of the nominal device (`switching`'s law on a quantile grid of units) gives a first
guess, a seeded Monte-Carlo polish with `HallBarBatch` and the `Readout` read-back rule places the
states as the default read chain sees them.
"""
from __future__ import annotations

import json
import math
import numbers
from functools import lru_cache

import numpy as np

from .errors import SimulatorInputError
from .hallbar import HallBarBatch
from .params import DeviceParams
from .readout import Readout
from .switching import hazard, log_rate, pulse_terms, shifted_density

__all__ = ["READ_PERIOD", "READ_DELAY", "suggested_staircase", "reset_current"]

#: Read timing of the default Hall read chain (6221 Delta with the 2182A, `dc_delta`): one staircase
#: point every 0.606 s (0.1 s arming, three 5-PLC A/Ds, line-synchronised), its Delta reading
#: (A/Ds weighted 1:2:1) seeing the device ≈ 0.4 s after the pulse. The ladder design places the
#: states as such reads see them: the heating read-back of the reset pulse is still cooling.
READ_PERIOD = 0.606      # s between staircase points
READ_DELAY = 0.4         # s from a pulse to the read of its state

# ----------------------------------------------------------------------------------------------
# Mean-field model of the nominal (population) device, used to design staircase ladders.
# ----------------------------------------------------------------------------------------------

class _ladder_model:
    """Expected staircase response of the nominal device (quantile grid of units, jitter quadrature).

    `polarity` +1: positive pulses (the rungs), -1: negative pulses (the reset); the loop shift
    J_shift makes them differ. Currents passed in are magnitudes.
    """

    def __init__(self, p: DeviceParams, width: float, grid: int = 1500, polarity: int = 1) -> None:
        from scipy.special import ndtri
        self.p, self.width, self.polarity = p, width, polarity
        q = (np.arange(grid) + 0.5) / grid
        self.jc = p.J_c0 * np.exp(p.sigma_g * np.clip(ndtri(q), -3.0, 3.0))
        self.inv_jc = 1.0 / self.jc[None, :]
        eta, w = np.polynomial.hermite_e.hermegauss(9)
        self.eta, self.w = eta, w / w.sum()

    def probs(self, current: float, jitter: bool = True) -> np.ndarray:
        """Per-unit switching probability of one pulse (averaged over the drive jitter)."""
        p, pol = self.p, self.polarity
        J = max(0.0, pol * shifted_density(p, pol * abs(current)))   # no drive the other way
        eta = self.eta[:, None] if jitter else np.zeros((1, 1))
        w = self.w[:, None] if jitter else np.ones((1, 1))
        jh, delta, ln_t = pulse_terms(p, current, self.width, J, eta)
        rate = hazard(log_rate(jh, self.inv_jc, delta, ln_t, p.n_exp))
        return (w * -np.expm1(-rate)).sum(axis=0)

    def current_at(self, frac: float, prev: np.ndarray | None = None) -> float:
        """Current whose pulse brings the switched fraction (after `prev`) to frac."""
        prev = np.zeros_like(self.jc) if prev is None else prev
        lo, hi = 0.01 * self.p.J_c0 * self.p.area, 5 * self.p.J_c0 * self.p.area
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            f = (prev + (1 - prev) * self.probs(mid)).mean()
            lo, hi = (mid, hi) if f < frac else (lo, mid)
        return math.sqrt(lo * hi)

    def sigma(self, prev: np.ndarray, current: float) -> tuple[float, np.ndarray]:
        """Cycle-to-cycle σ of the switched fraction after a pulse (jitter + binomial + read), and
        the new state."""
        p = self.p
        new = prev + (1 - prev) * self.probs(current)
        d = 1e-3
        f_hi = (prev + (1 - prev) * self.probs(current * (1 + d), jitter=False)).mean()
        f_lo = (prev + (1 - prev) * self.probs(current * (1 - d), jitter=False)).mean()
        var_j = (p.sigma_J * (f_hi - f_lo) / (2 * d)) ** 2
        new0 = prev + (1 - prev) * self.probs(current, jitter=False)   # thermal part only
        var_b = (new0 * (1 - new0)).mean() / p.n_eff / (1 - 2 * p.hx_jitter) ** 2
        return math.sqrt(var_j + var_b + _read_sigma_fraction(p) ** 2), new


def _read_sigma_fraction(p: DeviceParams) -> float:
    """Device read noise and drift (rms) as a switched fraction of the full swing."""
    return math.hypot(p.read_noise, p.drift) / (2 * p.R_AHE * (1 - 2 * p.hx_jitter)) if p.R_AHE > 0 else 0.0


def reset_current(params: DeviceParams, width: float) -> float:
    """5 % above the current that switches 99.995 % of the nominal device, negative, 3 digits."""
    return -float(f"{_ladder_model(params, width, polarity=-1).current_at(0.99995) * 1.05:.3g}")


def suggested_staircase(params: DeviceParams, n_states: int, width: float = 100e-6,
                        margin: float = 5.6, read_period: float = READ_PERIOD,
                        read_delay: float = READ_DELAY) -> dict:
    """Reset current and an increasing ladder of pulse amplitudes for a staircase protocol.

    Adjacent expected states are spaced in proportion to their predicted cycle-to-cycle σ (plus
    `ladder_evenness`·σ_max, which pulls the states towards even spacing in R_H), i.e. at a constant
    separation/σ ratio K. K is `margin` when the device is quiet enough (the top rung then stays below
    saturation, so no part of the window is wasted), otherwise the largest K whose ladder fits in
    the window (noise-limited device: fewer distinguishable states). Returns
    {"reset_current": A (negative), "amplitudes": [A, ...] (n_states - 1 values, increasing),
    "pulse_width": s, "expected_fraction": [switched fraction after each rung], "margin": K}.
    """
    if isinstance(n_states, bool) or int(n_states) != n_states or n_states < 2:
        raise SimulatorInputError(f"n_states: must be an integer >= 2, got {n_states!r}")
    if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
        raise SimulatorInputError(f"width: must be > 0 s, got {width!r}")
    if not isinstance(params, DeviceParams):
        raise SimulatorInputError(f"params: must be DeviceParams, got {type(params).__name__}")
    for name, v in (("read_period", read_period), ("read_delay", read_delay)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            raise SimulatorInputError(f"{name}: must be >= 0 s, got {v!r}")
    d = _design_staircase(params, int(n_states), float(width), float(margin), float(read_period),
                          float(read_delay))
    return json.loads(json.dumps(d))          # a fresh copy: the cached design stays untouched


@lru_cache(maxsize=64)
def _design_staircase(params: DeviceParams, n_states: int, width: float, margin: float,
                      read_period: float, read_delay: float) -> dict:
    """Analytic first guess (mean-field + predicted σ), then a seeded Monte-Carlo polish (~1 s)."""
    m = _ladder_model(params, width)
    f_top = 0.9995
    # σ(f) for a single pulse from the reset state, on a grid of currents
    i_grid = np.geomspace(m.current_at(1e-4), m.current_at(f_top), 80)
    zero = np.zeros_like(m.jc)
    sig, frac = [], []
    for i in i_grid:
        s, new = m.sigma(zero, i)
        sig.append(s)
        frac.append(new.mean())
    sig, frac = np.array(sig), np.array(frac)
    floor = params.ladder_evenness * sig.max()
    sig_d = sig + floor

    def sd(f: float) -> float:
        return float(np.interp(f, frac, sig_d))

    def shoot(K: float) -> list[float]:
        fs, f, s = [], 0.0, _read_sigma_fraction(params)   # reset state: saturated, read noise only
        for _ in range(n_states - 1):
            lo, hi = f, 2.0
            for _ in range(50):                  # solve g - f = K·(s + σ(g))/2 for g
                g = 0.5 * (lo + hi)
                lo, hi = (g, hi) if g - f < K * (s + sd(g)) / 2 else (lo, g)
            f, s = 0.5 * (lo + hi), sd(0.5 * (lo + hi))
            fs.append(f)
        return fs

    K = margin
    if shoot(K)[-1] > f_top:                     # too noisy for `margin`: use the whole window
        lo, hi = 1e-3, margin
        for _ in range(60):
            K = math.sqrt(lo * hi)
            lo, hi = (K, hi) if shoot(K)[-1] < f_top else (lo, K)
        K = lo
    fs = shoot(K)
    amps, prev = [], zero
    for f in fs:                                # sequential: earlier rungs already switched some units
        i = m.current_at(min(f, f_top), prev)
        prev = prev + (1 - prev) * m.probs(i)
        amps.append(float(f"{i:.4g}"))
    reset = reset_current(params, width)
    amps, fs, K = _refine(params, amps, reset, width, margin, f_top, read_period, read_delay)
    return {"reset_current": reset, "amplitudes": [float(f"{a:.4g}") for a in amps],
            "pulse_width": width, "expected_fraction": [round(float(f), 4) for f in fs],
            "margin": round(float(K), 3)}


def _readback_offsets(p: DeviceParams, currents: list[float], period: float, delay: float) -> np.ndarray:
    """Heating read-back (ohm) in the read of each staircase state (reset first), once the cycle
    repeats: `Readout`'s rule for pulses every `period`, read `delay` after each pulse."""
    ro = Readout(p.replace(read_noise=0.0, drift=0.0), 1, np.random.SeedSequence(0))
    zero, t, out = np.zeros(1), 0.0, []
    for _ in range(3):                        # the third cycle: the previous top rung came before
        out = []
        for a in currents:
            ro.note_pulses(np.array([a * a]))
            ro.read(zero, t)                  # the first read after the pulse: cooling starts
            out.append(float(ro.read(zero, t + delay)[0]))
            t += period
    return np.array(out)


def _refine(params: DeviceParams, amps: list[float], reset: float, width: float, margin: float,
            f_top: float, read_period: float, read_delay: float, iters: int = 6,
            cycles: int = 1024) -> tuple[np.ndarray, np.ndarray, float]:
    """Monte-Carlo polish of a ladder: equalise separation/σ between adjacent staircase states.

    Each iteration runs `cycles` staircase cycles (as many identically made devices, seeded, no
    device-to-device spread), measures each state's mean and σ as a switched fraction, re-spaces
    the targets at a constant ratio K (`margin`, or less if the window is too small) as the reads
    see the states (switched fraction + heating read-back, `_readback_offsets`) and maps them back
    to currents through the measured (state, ln I) relation.
    """
    span = 2.0 * (1.0 - 2.0 * params.hx_jitter)           # Δ(Σ w m) from reset to saturation
    ln_i = np.log(np.asarray(amps, float))
    K = margin
    for it in range(iters + 1):
        b = HallBarBatch(params, cycles, seed=7919 + it, nominal=True)
        b.pulse(reset, width)
        m0 = b.magnetization.mean()
        rows = []
        for a in np.exp(ln_i):
            b.pulse(a, width)
            rows.append((b.magnetization - m0) / span)
        f = np.array(rows)
        mu = f.mean(axis=1)
        sd = np.hypot(f.std(axis=1, ddof=1), _read_sigma_fraction(params))   # switching ⊕ read
        if it == iters:
            break
        sd_d = np.maximum(np.r_[0.0, sd], params.ladder_evenness * sd.max())   # floor: keep tails apart
        sd_d[0] = _read_sigma_fraction(params)             # the saturated reset state: read noise only
        gaps = (sd_d[1:] + sd_d[:-1]) / 2
        off = _readback_offsets(params, [reset, *np.exp(ln_i)], read_period, read_delay) \
            / (params.R_AHE * span)                       # read-back as a switched fraction
        room = f_top - off[0] + off[-1]                    # the top rung's read stays below saturation
        K = margin if gaps.sum() * margin <= room else room / gaps.sum()
        target = off[0] + np.cumsum(K * gaps) - off[1:]    # equal read separations, magnetic targets
        # states vs ln I are close to linear in probit space; interpolate/extrapolate there
        from scipy.special import ndtri
        z = ndtri(np.clip(mu, 1e-5, 1 - 1e-5))
        order = np.argsort(z)
        zt = ndtri(np.clip(target, 1e-5, 1 - 1e-5))
        zs, ls = z[order], ln_i[order]
        new = np.interp(zt, zs, ls)
        lo_slope = (ls[1] - ls[0]) / max(zs[1] - zs[0], 1e-9)
        hi_slope = (ls[-1] - ls[-2]) / max(zs[-1] - zs[-2], 1e-9)
        new = np.where(zt < zs[0], ls[0] + (zt - zs[0]) * lo_slope, new)
        new = np.where(zt > zs[-1], ls[-1] + (zt - zs[-1]) * hi_slope, new)
        ln_i = np.maximum.accumulate(new)
    return np.exp(ln_i), mu, K

