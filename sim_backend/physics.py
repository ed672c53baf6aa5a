"""Device physics of a simulated field-free SOT Hall bar: an ensemble of thermally activated units.

A µm Hall bar switches by nucleation and domain-wall motion, so the device is modelled as
N_eff = n_units / cluster_size independent switching units (avalanche clusters), each with a
local magnetisation m_i = ±1, equal weight 1/N_eff, a log-normal critical current density
J_c,i = J_c0·exp(σ_g ξ_i) and a local sign s_i of the effective in-plane field (a fraction
`hx_jitter` of units is reversed). A rectangular pulse (J, t_p) switches a unit that is not yet in
its target state with probability

    P_i = -expm1(-(t_p/τ0)·exp(-Δ(T)·x^n)),   x = max(0, 1 - |J_eff| / (J_c,i·h(T)))

towards  m = -c·sign(θ_SH)·sign(J - J_shift)·s_i·sign(H_x)  (c = SWITCH_SIGN, chosen so that a
positive pulse raises R_H for the default polarity; J_shift moves the loop's centre). Joule heating
ΔT = R_xx·R_th·I²·(1 - e^(-t_p/τ_th)) lowers J_c by h(T) = 1 - ΔT/T_scale and Δ by
h·T_amb/(T_amb+ΔT); each pulse carries one drive jitter draw J_eff = |J - J_shift|·(1 + σ_J·η).
With Δ ≈ 30 the median unit follows J_sw ≈ J_c0·h·[1 - ln(t_p/τ0)/Δ] + J_shift, σ_g sets the
loop's transition width, and the binomial count of units near their threshold is the CTC.
Units are grouped into bins of equal sign and similar J_c and each pulse draws one binomial
number of switching units per bin, so large N_eff costs no more than a few dozen bins (bins with
P < 7e-13 per unit are left alone for that pulse). `HallBar.pulse` runs that loop compiled
(`pulse_kernel`, exact binomials); `HallBarBatch` runs it as numpy over devices × bins
(`_draw_switches`).

    R_H = R0 + R_AHE·Σ w_i m_i      (|R_H - R0| ≤ R_AHE always; `hall_resistance`)

A read at bench time t (`read_resistance(t)`) adds a heating read-back readback·H (H: largest I² of
the pulses since the last read, cooling with tau_readback), a 1/f-like drift (sum of OU processes,
rms `drift`) and white device read noise (`read_noise`). Equations, parameters and their sources:
docs/physics.md.

Random streams: SeedSequence(seed).spawn(3) → fabrication (unit draws), switching (pulses),
readout (`readout_rng` for the simulated instruments' noise, and its first child for the device's
read noise and drift), so adding reads never changes the switching history.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from typing import Any

import numpy as np

from .errors import SimulatorInputError   # one-line input errors (labspin maps them)
from .wear import Wear, WearParams

__all__ = [
    "SWITCH_SIGN", "READ_PERIOD", "READ_DELAY", "DeviceParams", "PRESETS", "preset", "suggested_staircase",
    "HallBar", "HallBarBatch",
]

LOG_COLD = -28.0     # ln(rate) below which a bin is left alone this pulse (P < 7e-13 per unit)
LOG_SURE = 4.0       # ln(rate) above which every candidate switches (1 - P < 1e-23)

#: Global sign flag c of the target state m = -c·sign(θ_SH)·sign(J)·sign(H_x): with θ_SH > 0 and
#: H_x > 0 (the default polarity) a positive pulse drives units to m = +1, i.e. R_H up.
SWITCH_SIGN = -1

#: Read timing of the default Hall read chain (6221 Delta with the 2182A, `dc_delta`): one staircase
#: point every 0.606 s (0.1 s arming, three 5-PLC A/Ds, line-synchronised), its Delta reading
#: (A/Ds weighted 1:2:1) seeing the device ≈ 0.4 s after the pulse. The ladder design places the
#: states as such reads see them: the heating read-back of the reset pulse is still cooling.
READ_PERIOD = 0.606      # s between staircase points
READ_DELAY = 0.4         # s from a pulse to the read of its state


@dataclass(frozen=True)
class DeviceParams:
    """One documented, copyable parameter set of a simulated Hall bar (SI units)."""

    name: str = "custom"
    # ensemble
    n_units: int = 10000           # microscopic units (grains / nucleation sites)
    cluster_size: int = 10         # units switching together (avalanche); N_eff = n_units / cluster_size
    n_bins: int = 48               # bins per sign group in the binned-binomial update
    sigma_g: float = 0.10          # log-normal spread of J_c,i
    J_c0: float = 1.3e11           # A/m^2, median intrinsic critical current density (at τ0)
    delta: float = 32.0            # thermal stability factor Δ (barrier / kT) at ambient temperature
    tau0: float = 1e-9             # s, attempt time
    n_exp: float = 1.0             # barrier exponent n in Δ·x^n (≈1 for SOT)
    sigma_J: float = 0.005         # relative per-pulse jitter of the effective drive
    sigma_d2d: float = 0.002       # device-to-device log-spread of J_c0 (fabrication stream)
    hx_jitter: float = 0.0         # fraction of units whose local H_x,eff is reversed
    hx_coercive: float = 0.02      # T, in-plane field that resets the polarity (if resettable)
    polarity_resettable: bool = False
    theta_sh_sign: int = 1         # sign of the spin Hall angle of the current-carrying layer
    # electrical
    R_AHE: float = 0.8             # ohm, anomalous Hall amplitude
    R0: float = 0.0                # ohm, Hall offset (lead misalignment: a share of R_xx)
    J_shift: float = 0.0           # A/m^2, loop shift along the current axis (centre of the loop)
    read_noise: float = 0.0        # ohm rms per read, device part (on top of the instrument's)
    drift: float = 0.0             # ohm rms of the 1/f-like drift of R_H (sum of OU processes)
    drift_tau_min: float = 0.1     # s, shortest correlation time of the drift (one OU process a decade)
    drift_tau_max: float = 1000.0  # s, longest correlation time of the drift
    readback: float = 0.0          # ohm/A^2, heating read-back: R_H += readback·I_prev^2 (decaying)
    tau_readback: float = 1.0      # s, cooling time of the read-back after a pulse (substrate)
    R_xx: float = 800.0            # ohm, two-terminal channel resistance (compliance)
    width: float = 10e-6           # m, channel width
    thickness: float = 6e-9        # m, thickness of the current-carrying (heavy-metal) layer
    # Joule heating
    thermal_resistance: float = 300.0   # K/W
    tau_th: float = 50e-9          # s, thermal time constant
    T_ambient: float = 300.0       # K
    T_scale: float = 400.0         # K, J_c(T) = J_c·(1 - ΔT/T_scale)
    # staircase ladder design only (not physics): floor on each state's σ, as a fraction of the
    # largest, used when spacing the states; 0 = pure equal margins, larger = more even in R_H
    ladder_evenness: float = 0.35

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> SimulatorInputError:
            return SimulatorInputError(f"DeviceParams.{name}: {why}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("float", "int") and (isinstance(v, bool) or not isinstance(v, numbers.Real)
                                               or not math.isfinite(v)):
                raise bad(f.name, f"must be a finite number, got {v!r}")
        if not isinstance(self.name, str):
            raise bad("name", "must be a string")
        for name in ("n_units", "cluster_size", "n_bins"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise bad(name, f"must be a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))     # 1e4 from a TOML/HDF5 float -> 10000
        if self.n_units < self.cluster_size:
            raise bad("n_units", "must be >= cluster_size")
        for name in ("J_c0", "delta", "tau0", "n_exp", "R_xx", "width", "thickness",
                     "tau_th", "T_ambient", "T_scale", "hx_coercive", "drift_tau_min", "tau_readback"):
            if getattr(self, name) <= 0:
                raise bad(name, f"must be > 0, got {getattr(self, name)!r}")
        for name in ("sigma_g", "sigma_J", "sigma_d2d", "thermal_resistance", "R_AHE", "ladder_evenness",
                     "read_noise", "drift", "readback"):
            if getattr(self, name) < 0:
                raise bad(name, f"must be >= 0, got {getattr(self, name)!r}")
        if self.drift_tau_max < self.drift_tau_min:
            raise bad("drift_tau_max", f"must be >= drift_tau_min, got {self.drift_tau_max!r}")
        if not 0 <= self.hx_jitter < 0.5:
            raise bad("hx_jitter", f"must be in [0, 0.5), got {self.hx_jitter!r}")
        if self.theta_sh_sign not in (1, -1):
            raise bad("theta_sh_sign", "must be +1 or -1")
        object.__setattr__(self, "theta_sh_sign", int(self.theta_sh_sign))
        if not isinstance(self.polarity_resettable, bool):
            raise bad("polarity_resettable", "must be true or false")

    # -- derived ----------------------------------------------------------------------------
    @property
    def n_eff(self) -> int:
        """Number of independent switching units (clusters)."""
        return max(1, int(self.n_units) // int(self.cluster_size))

    @property
    def area(self) -> float:
        """Cross-section of the current-carrying layer (m^2)."""
        return self.width * self.thickness

    @property
    def drift_taus(self) -> np.ndarray:
        """Correlation times of the drift's OU processes: one a decade, drift_tau_min … drift_tau_max."""
        n = 1 + int(round(math.log10(self.drift_tau_max / self.drift_tau_min)))
        return np.geomspace(self.drift_tau_min, self.drift_tau_max, n)

    def joule_rise(self, current: float, width: float) -> float:
        """Temperature rise (K) at the end of a pulse."""
        return self.R_xx * self.thermal_resistance * current * current * -math.expm1(-width / self.tau_th)

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceParams":
        """Build from a dict (e.g. a run file's sample group); SimulatorInputError on unknown keys or bad values."""
        if not isinstance(d, dict):
            raise SimulatorInputError("DeviceParams: expected a table of parameters")
        if "delta0" in d:                     # run files before the rename of Δ
            if "delta" in d:
                raise SimulatorInputError("DeviceParams.delta0: give delta (delta0 is its old name), not both")
            d = {("delta" if k == "delta0" else k): v for k, v in d.items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SimulatorInputError(f"DeviceParams.{unknown[0]}: unknown parameter")
        return cls(**d)

    def replace(self, **changes: Any) -> "DeviceParams":
        return replace(self, **changes)

    # -- staircase advice ----------------------------------------------------------------------
    def staircase_ladder(self, n_states: int, width: float = 100e-6) -> list[float]:
        """Positive pulse amplitudes (A) giving n_states staircase states (reset state included)."""
        return suggested_staircase(self, n_states, width)["amplitudes"]

    def reset_current(self, width: float = 100e-6) -> float:
        """Negative pulse amplitude (A) that saturates the device (switches >99.99 % of units)."""
        return _reset_current(self, width)


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
        eta, w = np.polynomial.hermite_e.hermegauss(9)
        self.eta, self.w = eta, w / w.sum()

    def probs(self, current: float, jitter: bool = True) -> np.ndarray:
        """Per-unit switching probability of one pulse (averaged over the drive jitter)."""
        p = self.p
        dT = p.joule_rise(current, self.width)
        h = max(0.05, 1.0 - dT / p.T_scale)
        delta = p.delta * h * p.T_ambient / (p.T_ambient + dT)
        J = max(0.0, abs(current) / p.area - self.polarity * p.J_shift)
        eta = self.eta[:, None] if jitter else np.zeros((1, 1))
        w = self.w[:, None] if jitter else np.ones((1, 1))
        x = np.maximum(0.0, 1.0 - J * (1 + p.sigma_J * eta) / (self.jc[None, :] * h))
        rate = np.exp(np.minimum(math.log(self.width / p.tau0) - delta * x ** p.n_exp, 50.0))
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


def _reset_current(params: DeviceParams, width: float) -> float:
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
    reset = _reset_current(params, width)
    amps, fs, K = _refine(params, amps, reset, width, margin, f_top, read_period, read_delay)
    return {"reset_current": reset, "amplitudes": [float(f"{a:.4g}") for a in amps],
            "pulse_width": width, "expected_fraction": [round(float(f), 4) for f in fs],
            "margin": round(float(K), 3)}


def _readback_offsets(p: DeviceParams, currents: list[float], period: float, delay: float) -> np.ndarray:
    """Heating read-back (ohm) in the read of each staircase state (reset first), once the cycle
    repeats: `_Readout`'s rule for pulses every `period`, read `delay` after each pulse."""
    ro = _Readout(p.replace(read_noise=0.0, drift=0.0), 1, np.random.SeedSequence(0))
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


# ----------------------------------------------------------------------------------------------
# Fabrication: draw units, group them into bins
# ----------------------------------------------------------------------------------------------

def _fabricate(p: DeviceParams, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one device's units and bin them: returns (jc per bin, sign per bin, units per bin).

    J_c,i are stratified log-normal draws (one per quantile slot, so a device's threshold law has
    no sampling holes in its tails) times a device-wide factor exp(sigma_d2d·ζ): device-to-device
    spread comes from that factor, the reversed-unit draw and the within-slot positions. Draws are
    clipped at ±3σ_g (a real film has no arbitrarily weak grain).

    Each sign group is sorted by J_c and cut into `n_bins` contiguous quantile bins (one unit per
    bin when the group is small); a bin's J_c is the geometric mean of its units. Empty bins get
    count 0 so that every device has the same number of bins (2·n_bins when hx_jitter > 0).
    """
    from scipy.special import ndtri
    n = p.n_eff
    if rng is None:                                      # the nominal device (ladder design)
        scale, xi = 0.0, ndtri((np.arange(n) + 0.5) / n)
        reversed_ = (np.arange(n) * p.hx_jitter) % 1.0 + p.hx_jitter >= 1.0
    else:
        scale = p.sigma_d2d * rng.standard_normal()
        xi = ndtri((np.arange(n) + rng.random(n)) / n)  # stratified: every device spans the full law
        reversed_ = rng.random(n) < p.hx_jitter if p.hx_jitter > 0 else np.zeros(n, bool)
    xi = np.clip(xi, -3.0, 3.0)                          # finite grains: no unit beyond ±3σ_g
    lnjc = math.log(p.J_c0) + scale + p.sigma_g * xi
    groups = [(1, lnjc[~reversed_])] + ([(-1, lnjc[reversed_])] if p.hx_jitter > 0 else [])
    jc, sign, count = [], [], []
    nb = p.n_bins
    for s, g in groups:
        g = np.sort(g)
        if g.size > nb:      # half the edges equal in ln J_c (fine tails), half equal in count
            t = np.linspace(0.0, 1.0, nb + 1)
            by_value = np.searchsorted(g, g[0] + t * (g[-1] - g[0]), side="left")
            mid = ((by_value + t * g.size) / 2).round().astype(int)[1:-1]
            edges = np.unique(np.r_[0, mid, g.size])
            edges = np.r_[edges, np.full(nb + 1 - edges.size, g.size)]
        else:
            edges = np.r_[np.arange(g.size + 1), np.full(nb - g.size, g.size)]
        for a, b in zip(edges[:-1], edges[1:]):
            count.append(b - a)
            jc.append(math.exp(g[a:b].mean()) if b > a else math.inf)
            sign.append(s)
    return np.array(jc), np.array(sign, dtype=np.int64), np.array(count, dtype=np.int64)


def _draw_switches(rng: np.random.Generator, c: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Number of the c candidates per bin that switch, each with P = 1 - exp(-rate).

    Exact binomial where it matters; bins with c·rate < 1e-3 draw one uniform (at most one switch,
    with the exact probability of >= 1; error ~ (c·rate)^2/2), bins with rate > 54 all switch.
    Binomial draws cost ~0.3 µs each, uniforms ~3 ns: most bins of a pulse are cold or sure.
    """
    k = np.zeros(c.size, dtype=np.int64)
    cold = c * rate < 1e-3
    if cold.any():
        k[cold] = rng.random(int(cold.sum())) < -np.expm1(-c[cold] * rate[cold])
    sure = rate > 54.0
    k[sure] = c[sure]
    hot = ~(cold | sure)
    if hot.any():
        k[hot] = rng.binomial(c[hot], -np.expm1(-rate[hot]))
    return k


def _rng_state(rng: np.random.Generator) -> dict:
    return json.loads(json.dumps(rng.bit_generator.state))


class _Readout:
    """What a read adds to the magnetic R_H: heating read-back, 1/f-like drift, read noise.

    Arrays over devices (one for a HallBar). The drift is a sum of Ornstein-Uhlenbeck processes,
    one a decade between drift_tau_min and drift_tau_max, of equal variance drift²/K: their sum has
    a 1/f spectrum between the corners and a bounded rms `drift`. The read-back is readback·H,
    H the largest I² of the pulses since the last read (or the earlier H, decayed with
    tau_readback from the read that first saw it). Draws come from a child of the readout seed,
    saved with the state, so a restored device reads exactly as the original (the instruments'
    own noise, drawn in blocks from `readout_rng`, does not shift it). A clock that restarts
    (a resumed run's new bench) continues the drift and read-back as if no time had passed.
    """

    def __init__(self, p: DeviceParams, n: int, seed: np.random.SeedSequence) -> None:
        """`seed`: the device's readout SeedSequence."""
        self.p, self.n = p, n
        # the readout seed's first child, built without spawning (so every _Readout gets the same)
        self.rng = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 0)))
        self.taus = p.drift_taus
        self.x: np.ndarray | list | None = None   # OU values (n, K) (read_one: a list of one row)
        self.t: float | None = None               # time of the last read
        self.heat = np.zeros(n)                   # A^2, as of the last read
        self.pending: np.ndarray | None = None    # devices whose heat came from a pulse after it
        self._coef = (None, None, None)           # (dt, OU decay, OU kick) of the last dt
        self._coefs: dict[int, tuple] = {}        # dt (ns) -> (OU decay, OU kick) as lists, for read_one
        self._taus1 = self.taus.tolist()
        self._ou_scale = p.drift / math.sqrt(self.taus.size)
        self._noisy = p.drift > 0 or p.read_noise > 0
        # read_one draws its normals READ_BLOCK reads at a time (the same stream as one draw per
        # read); the state keeps the rng as it was before the block and how many were used
        self._z: list[float] = []
        self._zi = 0
        self._z_state: dict | None = None

    READ_BLOCK = 256

    def _normals(self, k: int) -> list[float]:
        """The next `k` standard normals of the readout stream (block-drawn)."""
        i = self._zi
        if i + k > len(self._z):
            self._unbuffer()
            self._z_state = self.rng.bit_generator.state
            self._z = self.rng.standard_normal(k * self.READ_BLOCK).tolist()
            i = 0
        self._zi = i + k
        return self._z[i:i + k]

    def _unbuffer(self) -> None:
        """Put the rng where one draw per read would have left it (drop the unused block)."""
        if self._z_state is not None:
            self.rng.bit_generator.state = self._z_state
            self.rng.standard_normal(self._zi)
        self._z, self._zi, self._z_state = [], 0, None

    def read(self, r_mag: np.ndarray, t: float) -> np.ndarray:
        p = self.p
        self._unbuffer()
        # a clock that went back is a new bench (resumed run): carry on as if no time had passed
        dt = 0.0 if self.t is None else max(0.0, t - self.t)
        self.t = t
        decay = math.exp(-dt / p.tau_readback)
        if self.pending is None:
            self.heat = self.heat * decay
        else:                                      # a fresh pulse's heat starts cooling now
            self.heat = np.where(self.pending, self.heat, self.heat * decay)
            self.pending = None
        r = r_mag + p.readback * self.heat
        if p.drift > 0 or p.read_noise > 0:
            K = self.taus.size
            z = self.rng.standard_normal((self.n, K + 1))
            if self.x is None:
                self.x = p.drift / math.sqrt(K) * z[:, :K]      # stationary start
            else:
                if self._coef[0] != dt:
                    self._coef = (dt, np.exp(-dt / self.taus),
                                  p.drift / math.sqrt(K) * np.sqrt(-np.expm1(-2 * dt / self.taus)))
                self.x = self._coef[1] * self.x + self._coef[2] * z[:, :K]
            r = r + self.x.sum(axis=1) + p.read_noise * z[:, K]
        return r

    def read_one(self, r_mag: float, i2: float, t: float) -> float:
        """`read` for a single device (n = 1) in scalar arithmetic, after a pulse of largest I² `i2`
        (0: none) since the last read: the same model, several times cheaper per read (a Delta
        reading is three reads, so this sets the simulator's one-step rate)."""
        p = self.p
        heat = float(self.heat[0])
        fresh = i2 > heat or (self.pending is not None and bool(self.pending[0]))
        if i2 > heat:
            heat = i2
        # to the ns: the bench clock's sums round differently, and each new dt costs new OU
        # coefficients (a Delta run's A/Ds are one dt apart)
        ns = 0 if self.t is None else int((t - self.t) * 1e9 + 0.5)
        if ns < 0:
            ns = 0
        dt = ns * 1e-9
        self.t = t
        if not fresh and dt > 0.0:                 # a fresh pulse's heat starts cooling now
            heat *= math.exp(-dt / p.tau_readback)
        self.heat[0] = heat
        self.pending = None
        r = r_mag + p.readback * heat
        if self._noisy:
            taus = self._taus1
            K = len(taus)
            z = self._normals(K + 1)
            if self.x is None:
                a = self._ou_scale
                x = [a * v for v in z[:K]]               # stationary start
            else:
                coef = self._coefs.get(ns)
                if coef is None:
                    if len(self._coefs) > 64:
                        self._coefs.clear()
                    exp, expm1, sqrt, a = math.exp, math.expm1, math.sqrt, self._ou_scale
                    coef = self._coefs[ns] = ([exp(-dt / u) for u in taus],
                                              [a * sqrt(-expm1(-2 * dt / u)) for u in taus])
                dec, kick = coef
                x = [d * xi + k * v for d, xi, k, v in zip(dec, self.x[0], kick, z)]
            self.x = [x]                                 # a list of rows, as get_state writes it
            r += math.fsum(x) + p.read_noise * z[K]
        return r

    def note_pulses(self, i2: np.ndarray) -> None:
        hot = i2 > self.heat
        if hot.any():
            self.heat = np.where(hot, i2, self.heat)
            self.pending = hot if self.pending is None else (self.pending | hot)

    def get_state(self) -> dict:
        rng = _rng_state(self.rng) if self._z_state is None else json.loads(json.dumps(self._z_state))
        return {"rng": rng, "rng_used": self._zi, "x": None if self.x is None else np.asarray(self.x).tolist(),
                "t": self.t, "heat": self.heat.tolist(),
                "pending": None if self.pending is None else self.pending.tolist()}

    def set_state(self, s: dict) -> None:
        x = None if s["x"] is None else np.asarray(s["x"], dtype=float)
        if x is not None and x.shape != (self.n, self.taus.size):
            raise ValueError("readout drift state does not fit this device")
        heat = np.asarray(s["heat"], dtype=float)
        pending = None if s["pending"] is None else np.asarray(s["pending"], dtype=bool)
        if heat.shape != (self.n,) or (pending is not None and pending.shape != (self.n,)):
            raise ValueError("readout heat state does not fit this device")
        self.rng.bit_generator.state = s["rng"]
        self._z, self._zi, self._z_state = [], 0, None
        if s.get("rng_used"):                      # normals of a block already used
            self.rng.standard_normal(int(s["rng_used"]))
        self.x, self.t, self.heat, self.pending = x, None if s["t"] is None else float(s["t"]), heat, pending


class HallBar:
    """One simulated Hall bar: apply pulses, read R_H (noise-free or as a read); exact, JSON-able state."""

    def __init__(self, params: DeviceParams, seed: int = 0) -> None:
        if not isinstance(params, DeviceParams):
            raise SimulatorInputError(f"HallBar: params must be DeviceParams, got {type(params).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SimulatorInputError(f"seed: must be a non-negative integer, got {seed!r}")
        self.params, self.seed = params, int(seed)
        fab, sw, ro = np.random.SeedSequence(self.seed).spawn(3)
        self._jc, self._sign, self._count = _fabricate(params, np.random.default_rng(fab))
        from labspin.sim_backend.pulse_kernel import generator_handle, pulse_bins  # numba: on first use
        self._rng = np.random.default_rng(sw)
        self._fn, self._state = generator_handle(self._rng)     # the kernel draws from _rng itself
        self._pulse_bins = pulse_bins
        self.readout_rng = np.random.default_rng(ro)
        self._ro_seed = ro
        self._inv_jc = 1.0 / self._jc
        self._hx_sign = 1
        self._up = np.zeros_like(self._count)          # units at m = +1 per bin
        self._m_sum = -int(self._count.sum())          # Σ m_i over units (integer)
        self._set_all(-1)                              # as-grown state: saturated at m = -1
        self.wear = Wear(WearParams(), self.seed)      # endurance wear-out (sim_backend/wear.py)
        self._readout = _Readout(params, 1, ro)
        self._heat = 0.0                               # largest I^2 since the last read (A^2)
        self._area, self._n_eff = params.area, params.n_eff      # hot-path constants

    # -- internal ------------------------------------------------------------------------------
    def _set_all(self, m: int) -> None:
        self._up[:] = self._count if m > 0 else 0
        self._m_sum = int(m * self._count.sum())

    def _direction(self, current: float) -> int:
        """Target m of the units with s_i = +1 for a pulse of this sign."""
        return -SWITCH_SIGN * self.params.theta_sh_sign * self._hx_sign * (1 if current > 0 else -1)

    # -- public API ----------------------------------------------------------------------------
    def current_density(self, current: float) -> float:
        """Current density (A/m^2) in the current-carrying layer."""
        return current / self.params.area

    def pulse(self, current: float, width: float) -> None:
        """Apply one rectangular current pulse (A, s)."""
        p = self.params
        if not (math.isfinite(current) and math.isfinite(width)) or width <= 0:
            raise SimulatorInputError(f"pulse: need finite current and width > 0, got {current!r} A, {width!r} s")
        area = self._area
        if current == 0 or self.wear.pulse(abs(current) / area / p.J_c0):   # stuck: no effect
            return
        i2 = current * current
        if i2 > self._heat:
            self._heat = i2
        j = current / area - p.J_shift              # the loop shift moves the loop's centre
        if j == 0:
            return
        eta = self._rng.standard_normal() if p.sigma_J > 0 else 0.0
        dT = p.joule_rise(current, width)
        h = max(0.05, 1.0 - dT / p.T_scale)
        self._m_sum += self._pulse_bins(
            self._fn, self._state, self._inv_jc, self._sign, self._count, self._up,
            self._direction(j), abs(j) * (1.0 + p.sigma_J * eta) / h,
            p.delta * h * p.T_ambient / (p.T_ambient + dT), math.log(width / p.tau0), p.n_exp,
            LOG_COLD, LOG_SURE)

    def pulse_train(self, currents, width: float) -> np.ndarray:
        """Apply a train of pulses of one width; returns the noise-free R_H after each (ohm).

        Same physics as calling `pulse` for each current, but vectorised over the pulses of each
        run of equal sign: every candidate unit draws one Exp(1) threshold and switches at the first
        pulse whose cumulative hazard Σ (t_p/τ0)·exp(-Δ x^n) exceeds it (exact for independent
        per-pulse probabilities). The random numbers are consumed differently from a `pulse` loop,
        so the trace is statistically, not bit-for-bit, equal to one.
        """
        I = np.asarray(currents, dtype=float).ravel()
        if not np.isfinite(I).all() or not (math.isfinite(width) and width > 0):
            raise SimulatorInputError("pulse_train: need finite currents and width > 0")
        out = np.empty(I.size)
        sgn = np.where(I == 0, 0.0, np.sign(I / self.params.area - self.params.J_shift))
        if I.size:
            i2 = float((I * I).max())
            if i2 > self._heat:
                self._heat = i2
        start = 0
        while start < I.size:                     # runs of equal sign, at most 4096 pulses each
            stop = start + 1
            while stop < I.size and sgn[stop] == sgn[start] and stop - start < 4096:
                stop += 1
            out[start:stop] = self._run(I[start:stop], width, sgn[start])
            start = stop
        return out

    def _run(self, I: np.ndarray, width: float, sgn: float) -> np.ndarray:
        """Pulses whose shifted drive has one sign `sgn` (0: no pulse); returns R_H after each."""
        p = self.params
        L = I.size
        if sgn == 0:
            return np.full(L, self.hall_resistance)
        eta = self._rng.standard_normal(L) if p.sigma_J > 0 else np.zeros(L)
        J = np.abs(I / p.area - p.J_shift) * (1.0 + p.sigma_J * eta)
        dT = p.R_xx * p.thermal_resistance * I * I * -math.expm1(-width / p.tau_th)
        h = np.maximum(0.05, 1.0 - dT / p.T_scale)
        delta = p.delta * h * p.T_ambient / (p.T_ambient + dT)
        x = np.maximum(0.0, 1.0 - self._inv_jc[:, None] * (J / h)[None, :])     # (bins, pulses)
        if p.n_exp != 1.0:
            x **= p.n_exp
        H = np.cumsum(np.exp(np.minimum(math.log(width / p.tau0) - delta[None, :] * x, 50.0)), axis=1)
        np.minimum(H, 1e3, out=H)                  # P(Exp(1) > 1e3) = 0 in double precision
        tgt_up = self._sign == self._direction(sgn)
        cand = np.where(tgt_up, self._count - self._up, self._up)
        B = cand.size
        units_bin = np.repeat(np.arange(B), cand)
        E = self._rng.standard_exponential(units_bin.size)
        G = (H + 2e3 * np.arange(B)[:, None]).ravel()
        k = np.searchsorted(G, E + 2e3 * units_bin, side="left") - units_bin * L
        hit = k < L
        flips = np.bincount(units_bin[hit] * L + k[hit], minlength=B * L).reshape(B, L)
        signed = np.where(tgt_up, 1, -1)
        per_bin = flips.sum(axis=1)
        self._up += signed * per_bin
        trace = self._m_sum + 2 * np.cumsum((signed[:, None] * flips).sum(axis=0))
        self._m_sum = int(trace[-1])
        return p.R0 + p.R_AHE * trace / p.n_eff

    def apply_inplane_field(self, hx: float) -> bool:
        """Set the polarity of H_x,eff from the sign of an in-plane field hx (T).

        True when the polarity was set (resettable device and |hx| > hx_coercive); False, with
        nothing changed, for a non-resettable (tilted) device or a field below the coercive value.
        Units keep their m; only the direction later pulses drive them changes.
        """
        if not math.isfinite(hx):
            raise SimulatorInputError(f"hx: must be finite, got {hx!r}")
        if not self.params.polarity_resettable or abs(hx) <= self.params.hx_coercive:
            return False
        self._hx_sign = 1 if hx > 0 else -1
        return True

    @property
    def polarity(self) -> int:
        """Current sign of the effective in-plane field (+1 default)."""
        return self._hx_sign

    @property
    def magnetization(self) -> float:
        """Σ w_i m_i in [-1, 1]."""
        return self._m_sum / self._n_eff

    @property
    def hall_resistance(self) -> float:
        """Noise-free R_H (ohm)."""
        p = self.params
        return p.R0 + p.R_AHE * (self._m_sum / self._n_eff) * self.wear.window

    def read_resistance(self, t: float) -> float:
        """R_H as one read at time t (s, the bench clock) sees it: the magnetic R_H plus the heating
        read-back of the last pulses, the 1/f-like drift and the device read noise (ohm).

        Draws only from the readout stream, so reads never change the switching history.
        """
        i2, self._heat = self._heat, 0.0
        return self._readout.read_one(self.hall_resistance, i2, float(t))

    @property
    def longitudinal_resistance(self) -> float:
        """R_xx (ohm), for compliance-voltage checks."""
        return self.params.R_xx

    def get_state(self) -> dict:
        """JSON-able snapshot; `set_state` on a HallBar of the same params/seed resumes it exactly."""
        return {"format": "labspin-hallbar-state/1", "seed": self.seed, "params": self.params.to_dict(),
                "up": self._up.tolist(), "hx_sign": self._hx_sign,
                "switching_rng": _rng_state(self._rng), "readout_rng": _rng_state(self.readout_rng),
                "wear": self.wear.get_state(),
                "readout": {**self._readout.get_state(), "pending_heat": self._heat}}

    def set_state(self, state: dict) -> None:
        try:
            if state.get("format") != "labspin-hallbar-state/1":
                raise ValueError("not a labspin-hallbar-state/1 snapshot")
            if state["seed"] != self.seed or DeviceParams.from_dict(state["params"]) != self.params:
                raise ValueError("snapshot is of a different device (params or seed differ)")
            up = np.asarray(state["up"], dtype=np.int64)
            if up.shape != self._up.shape or (up < 0).any() or (up > self._count).any():
                raise ValueError("bin counts do not fit this device")
            hx = int(state["hx_sign"])
            if hx not in (1, -1):
                raise ValueError("hx_sign must be +1 or -1")
            self.wear.set_state(state.get("wear", {}))
            readout = _Readout(self.params, 1, self._ro_seed)
            if "readout" in state:                  # snapshots before the read model have none
                readout.set_state(state["readout"])
            pending = float(state.get("readout", {}).get("pending_heat", 0.0))
            self._rng.bit_generator.state = state["switching_rng"]
            self.readout_rng.bit_generator.state = state["readout_rng"]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SimulatorInputError(f"HallBar state: {e}") from None
        self._up, self._hx_sign = up, hx
        self._readout, self._heat = readout, pending
        self._m_sum = int((2 * up - self._count).sum())


class HallBarBatch:
    """Many independently fabricated devices of one parameter set, pulsed together (vectorised)."""

    def __init__(self, params: DeviceParams, n_devices: int, seed: int = 0, *, nominal: bool = False) -> None:
        """`nominal=True`: every device is the same noise-free nominal device (quantile midpoints,
        no device-to-device spread), so the batch stands for n_devices cycles of one device."""
        if not isinstance(params, DeviceParams):
            raise SimulatorInputError(f"HallBarBatch: params must be DeviceParams, got {type(params).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SimulatorInputError(f"seed: must be a non-negative integer, got {seed!r}")
        if isinstance(n_devices, bool) or int(n_devices) != n_devices or n_devices < 1:
            raise SimulatorInputError(f"n_devices: must be a positive integer, got {n_devices!r}")
        self.params, self.seed, self.n_devices = params, int(seed), int(n_devices)
        fab, sw, ro = np.random.SeedSequence(self.seed).spawn(3)
        frng = np.random.default_rng(fab)
        made = [_fabricate(params, None)] * self.n_devices if nominal else \
            [_fabricate(params, frng) for _ in range(self.n_devices)]
        self._jc = np.stack([m[0] for m in made])
        self._sign = np.stack([m[1] for m in made])
        self._count = np.stack([m[2] for m in made])
        self._inv_jc = 1.0 / self._jc
        self._ntot = self._count.sum(axis=1)
        self._rng = np.random.default_rng(sw)
        self.readout_rng = np.random.default_rng(ro)
        self._hx_sign = np.ones(self.n_devices, dtype=np.int64)
        self._up = np.zeros_like(self._count)
        self._readout = _Readout(params, self.n_devices, ro)

    def pulse(self, currents: np.ndarray | float, width: float) -> None:
        """One pulse per device (a scalar current is applied to all)."""
        p = self.params
        I = np.broadcast_to(np.asarray(currents, dtype=float), (self.n_devices,))
        if not np.isfinite(I).all() or not (width > 0 and math.isfinite(width)):
            raise SimulatorInputError("pulse: need finite currents and width > 0")
        self._readout.note_pulses(I * I)
        eta = self._rng.standard_normal(self.n_devices) if p.sigma_J > 0 else np.zeros(self.n_devices)
        Js = I / p.area - p.J_shift                     # the loop shift moves the loop's centre
        J = np.abs(Js) * (1.0 + p.sigma_J * eta)
        dT = p.R_xx * p.thermal_resistance * I * I * -math.expm1(-width / p.tau_th)
        h = np.maximum(0.05, 1.0 - dT / p.T_scale)
        delta = p.delta * h * p.T_ambient / (p.T_ambient + dT)
        x = 1.0 - (J / h)[:, None] * self._inv_jc
        np.maximum(x, 0.0, out=x)
        if p.n_exp != 1.0:
            x **= p.n_exp
        x *= -delta[:, None]
        x += math.log(width / p.tau0)
        d = -SWITCH_SIGN * p.theta_sh_sign * self._hx_sign * np.sign(Js).astype(np.int64)
        tgt_up = self._sign == d[:, None]
        cand = np.where(tgt_up, self._count - self._up, self._up)
        live = (x > LOG_COLD) & (cand > 0)
        live &= ((I != 0) & (Js != 0))[:, None]
        idx = np.flatnonzero(live)
        if idx.size == 0:
            return
        c = cand.reshape(-1)[idx]
        rate = np.exp(x.reshape(-1)[idx])
        k = _draw_switches(self._rng, c, rate)
        up = self._up.reshape(-1)
        up[idx] += np.where(tgt_up.reshape(-1)[idx], k, -k)

    def apply_inplane_field(self, hx: float) -> bool:
        """As HallBar.apply_inplane_field, for every device."""
        if not math.isfinite(hx):
            raise SimulatorInputError(f"hx: must be finite, got {hx!r}")
        if not self.params.polarity_resettable or abs(hx) <= self.params.hx_coercive:
            return False
        self._hx_sign[:] = 1 if hx > 0 else -1
        return True

    @property
    def magnetization(self) -> np.ndarray:
        """Σ w_i m_i of every device, in [-1, 1]."""
        return (2 * self._up.sum(axis=1) - self._ntot) / self._ntot

    @property
    def hall_resistance(self) -> np.ndarray:
        """Noise-free R_H of every device (ohm)."""
        return self.params.R0 + self.params.R_AHE * self.magnetization

    def read_resistance(self, t: float) -> np.ndarray:
        """As HallBar.read_resistance, one read of every device at time t (ohm)."""
        return self._readout.read(self.hall_resistance, float(t))


# ----------------------------------------------------------------------------------------------
# Presets (calibrated with the staircase protocol; see docs/physics.md)
# ----------------------------------------------------------------------------------------------

PRESETS: dict[str, DeviceParams] = {
    "orange_peel": DeviceParams(
        name="orange_peel", n_units=600, cluster_size=40, sigma_g=0.25, J_c0=1.3e11, delta=30.0,
        sigma_J=0.015, sigma_d2d=0.03, hx_jitter=0.20, polarity_resettable=True, R_AHE=2.0, R0=40.0,
        J_shift=6.5e9, read_noise=0.014, drift=0.016, readback=1500.0, ladder_evenness=1.0),
    "idmi": DeviceParams(
        name="idmi", n_units=750, cluster_size=30, sigma_g=0.28, J_c0=1.3e11, delta=30.0,
        sigma_J=0.015, sigma_d2d=0.02, hx_jitter=0.10, polarity_resettable=True, R_AHE=0.8, R0=16.0,
        J_shift=6.5e9, read_noise=0.0056, drift=0.0064, readback=600.0, ladder_evenness=0.6),
    "tilted": DeviceParams(
        name="tilted", n_units=3000, cluster_size=10, sigma_g=0.28, J_c0=1.33e11, delta=32.0,
        sigma_J=0.001, sigma_d2d=0.005, hx_jitter=0.0, polarity_resettable=False, R_AHE=0.8, R0=16.0,
        J_shift=6.5e9, read_noise=0.0056, drift=0.0064, readback=600.0, ladder_evenness=0.35),
}


def preset(name: str) -> DeviceParams:
    """The named preset; SimulatorInputError listing the known names otherwise."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise SimulatorInputError(f"device preset {name!r}: unknown (known: {', '.join(sorted(PRESETS))})") from None
