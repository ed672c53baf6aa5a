"""The switching law of one pulse, written once: every path that switches units takes its terms here.

A rectangular pulse (current I, width t_p) switches a unit i that is not yet in its target state with

    P_i = -expm1(-rate_i),   ln rate_i = ln(t_p/τ0) - Δ_eff·x_i^n,   x_i = max(0, 1 - J_eff/(J_c,i·h))

    j      = I/A - J_shift                    shifted drive density; its sign picks the target state
    J_eff  = |j|·(1 + σ_J·η)                  one drive-jitter draw η per pulse
    ΔT     = R_xx·R_th·I²·(1 - e^(-t_p/τ_th))  Joule heating at the end of the pulse
    h      = max(0.05, 1 - ΔT/T_scale)        J_c(T) = J_c·h
    Δ_eff  = Δ·h·T_amb/(T_amb + ΔT)

towards m = target·s_i (s_i the unit's sign of H_x,eff, `target_state`). Users: `HallBar.pulse`
(its compiled bin loop `pulse_kernel.pulse_bins` evaluates `log_rate` per bin with the arguments
`pulse_terms` gives; tests/test_physics.py checks the two agree), `HallBar.pulse_train`,
`HallBarBatch.pulse` and the ladder design (`ladder._ladder_model`). The functions take floats or
numpy arrays alike, so one formula serves the scalar hot path and the vectorised ones.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .params import DeviceParams

Value = float | np.ndarray     # one pulse (the hot path) or many (broadcast)

__all__ = ["SWITCH_SIGN", "LOG_COLD", "LOG_SURE", "LOG_RATE_MAX", "H_FLOOR",
           "shifted_density", "pulse_terms", "log_rate", "hazard", "target_state"]

#: Global sign flag c of the target state m = -c·sign(θ_SH)·sign(J)·sign(H_x): with θ_SH > 0 and
#: H_x > 0 (the default polarity) a positive pulse drives units to m = +1, i.e. R_H up.
SWITCH_SIGN = -1

LOG_COLD = -28.0     # ln(rate) below which a bin is left alone this pulse (P < 7e-13 per unit)
LOG_SURE = 4.0       # ln(rate) above which every candidate switches (1 - P < 1e-23)
LOG_RATE_MAX = 50.0  # cap on ln(rate) before exp (pulse_train sums rates; e^50 is certain anyway)
H_FLOOR = 0.05       # Joule heating never lowers J_c below 5 % of its cold value


def shifted_density(p: DeviceParams, current: Value) -> Value:
    """j = I/A - J_shift (A/m^2): the loop shift moves the loop's centre; sign(j) picks the target."""
    return current / p.area - p.J_shift


def pulse_terms(p: DeviceParams, current: Value, width: float, j: Value,
                eta: Value) -> tuple[Value, Value, float]:
    """(J_eff/h, Δ_eff, ln(t_p/τ0)) of pulses of `current` (A) and `width` (s).

    `j`: the drive density whose magnitude drives (`shifted_density`, or the ladder's clamped
    magnitude); `eta`: the jitter draw(s) η. Floats give floats (the hot path), arrays broadcast.
    """
    dT = p.R_xx * p.thermal_resistance * current * current * -math.expm1(-width / p.tau_th)  # Joule ΔT
    h = 1.0 - dT / p.T_scale
    h = max(H_FLOOR, h) if isinstance(h, float) else np.maximum(H_FLOOR, h)
    return (abs(j) * (1.0 + p.sigma_J * eta) / h, p.delta * h * p.T_ambient / (p.T_ambient + dT),
            math.log(width / p.tau0))


def log_rate(j_over_h: Value, inv_jc: np.ndarray, delta: Value, ln_t: float, n_exp: float) -> np.ndarray:
    """ln rate = ln(t_p/τ0) - Δ_eff·max(0, 1 - (J_eff/h)·(1/J_c,i))^n, broadcast over the arrays.

    `pulse_kernel.pulse_bins` evaluates the same expression per bin, compiled.
    """
    x = 1.0 - j_over_h * inv_jc
    np.maximum(x, 0.0, out=x)
    if n_exp != 1.0:
        x **= n_exp
    x *= -delta
    x += ln_t
    return x


def hazard(lr: np.ndarray) -> np.ndarray:
    """Expected switching events per unit, exp(ln rate) with ln rate capped at LOG_RATE_MAX."""
    return np.exp(np.minimum(lr, LOG_RATE_MAX))


def target_state(p: DeviceParams, hx_sign: int | np.ndarray) -> int | np.ndarray:
    """Target m of the units with s_i = +1 for a pulse of positive j (multiply by sign(j))."""
    return -SWITCH_SIGN * p.theta_sh_sign * hx_sign
