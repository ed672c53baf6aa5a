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

    R_H = R0 + R_AHE·Σ w_i m_i      (|R_H - R0| ≤ R_AHE always; `hall_resistance`)

A read at bench time t (`read_resistance(t)`) adds a heating read-back, a 1/f-like drift and white
device read noise. Equations, parameters and their sources: docs/physics.md.

One module a concern; this one gathers their public names (the import other code uses):

- `params`: DeviceParams, PRESETS, preset
- `switching`: the pulse law above, written once (SWITCH_SIGN, pulse_terms, log_rate, ...)
- `pulse_kernel`: HallBar.pulse's compiled bin loop (numba)
- `hallbar`: HallBar, HallBarBatch (fabrication, bins, random streams, state)
- `readout`: what a read adds (Readout)
- `ladder`: the staircase ladder design (suggested_staircase, READ_PERIOD, READ_DELAY)
- `wear`: endurance wear-out
"""
from __future__ import annotations

from .hallbar import HallBar, HallBarBatch
from .ladder import READ_DELAY, READ_PERIOD, suggested_staircase
from .params import PRESETS, DeviceParams, preset
from .switching import SWITCH_SIGN

__all__ = [
    "SWITCH_SIGN", "READ_PERIOD", "READ_DELAY", "DeviceParams", "PRESETS", "preset", "suggested_staircase",
    "HallBar", "HallBarBatch",
]
