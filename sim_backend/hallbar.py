"""The simulated Hall bar as an ensemble of thermally activated units: `HallBar` (one device, exact,
JSON-able state) and `HallBarBatch` (many devices at once, vectorised).

The device is N_eff = n_units / cluster_size independent switching units, each with m_i = ±1,
weight 1/N_eff, a log-normal J_c,i and a local sign s_i of H_x,eff; each pulse switches units by
`switching`'s law. Units are grouped into bins of equal sign and similar J_c and each pulse draws
one binomial number of switching units per bin, so large N_eff costs no more than a few dozen
bins (bins with P < 7e-13 per unit are left alone for that pulse). `HallBar.pulse` runs that loop
compiled (`pulse_kernel`, exact binomials); `HallBar.pulse_train` draws one Exp(1) threshold per
candidate unit against the cumulative hazard of a train; `HallBarBatch` runs the loop as numpy
over devices × bins (`_draw_switches`).

    R_H = R0 + R_AHE·Σ w_i m_i      (|R_H - R0| ≤ R_AHE always; `hall_resistance`)

A read adds what `readout.Readout` models. Random streams: SeedSequence(seed).spawn(3) →
fabrication (unit draws), switching (pulses), readout (`readout_rng` for the simulated instruments'
noise, and its first child for the device's read noise and drift), so adding reads never changes
the switching history.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import SimulatorInputError   # one-line input errors (labspin maps them)
from .params import DeviceParams
from .readout import Readout, rng_state
from .switching import (LOG_COLD, LOG_SURE, hazard, log_rate, pulse_terms, shifted_density,
                        target_state)
from .wear import Wear, WearParams

__all__ = ["HallBar", "HallBarBatch"]

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
        from .pulse_kernel import generator_handle, pulse_bins  # numba: on first use
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
        self._readout = Readout(params, 1, ro)
        self._heat = 0.0                               # largest I^2 since the last read (A^2)
        self._area, self._n_eff = params.area, params.n_eff      # hot-path constants
        self._target = target_state(params, self._hx_sign)  # target m of s_i = +1 units for j > 0

    # -- internal ------------------------------------------------------------------------------
    def _set_all(self, m: int) -> None:
        self._up[:] = self._count if m > 0 else 0
        self._m_sum = int(m * self._count.sum())

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
        j = shifted_density(p, current)
        if j == 0:
            return
        eta = self._rng.standard_normal() if p.sigma_J > 0 else 0.0
        jh, delta, ln_t = pulse_terms(p, current, width, j, eta)
        self._m_sum += self._pulse_bins(
            self._fn, self._state, self._inv_jc, self._sign, self._count, self._up,
            self._target if j > 0 else -self._target, jh, delta, ln_t, p.n_exp, LOG_COLD, LOG_SURE)

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
        sgn = np.where(I == 0, 0.0, np.sign(shifted_density(self.params, I)))
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
        jh, delta, ln_t = pulse_terms(p, I, width, shifted_density(p, I), eta)
        lr = log_rate(jh[None, :], self._inv_jc[:, None], delta[None, :], ln_t, p.n_exp)  # (bins, pulses)
        H = np.cumsum(hazard(lr), axis=1)
        np.minimum(H, 1e3, out=H)                  # P(Exp(1) > 1e3) = 0 in double precision
        tgt_up = self._sign == (self._target if sgn > 0 else -self._target)
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
        self._target = target_state(self.params, self._hx_sign)
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
                "switching_rng": rng_state(self._rng), "readout_rng": rng_state(self.readout_rng),
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
            readout = Readout(self.params, 1, self._ro_seed)
            if "readout" in state:                  # snapshots before the read model have none
                readout.set_state(state["readout"])
            pending = float(state.get("readout", {}).get("pending_heat", 0.0))
            self._rng.bit_generator.state = state["switching_rng"]
            self.readout_rng.bit_generator.state = state["readout_rng"]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SimulatorInputError(f"HallBar state: {e}") from None
        self._up, self._hx_sign, self._target = up, hx, target_state(self.params, hx)
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
        self._readout = Readout(params, self.n_devices, ro)

    def pulse(self, currents: np.ndarray | float, width: float) -> None:
        """One pulse per device (a scalar current is applied to all)."""
        p = self.params
        I = np.broadcast_to(np.asarray(currents, dtype=float), (self.n_devices,))
        if not np.isfinite(I).all() or not (width > 0 and math.isfinite(width)):
            raise SimulatorInputError("pulse: need finite currents and width > 0")
        self._readout.note_pulses(I * I)
        eta = self._rng.standard_normal(self.n_devices) if p.sigma_J > 0 else np.zeros(self.n_devices)
        Js = shifted_density(p, I)
        jh, delta, ln_t = pulse_terms(p, I, width, Js, eta)
        x = log_rate(jh[:, None], self._inv_jc, delta[:, None], ln_t, p.n_exp)    # (devices, bins)
        d = target_state(p, self._hx_sign) * np.sign(Js).astype(np.int64)
        tgt_up = self._sign == d[:, None]
        cand = np.where(tgt_up, self._count - self._up, self._up)
        live = (x > LOG_COLD) & (cand > 0)
        live &= ((I != 0) & (Js != 0))[:, None]
        idx = np.flatnonzero(live)
        if idx.size == 0:
            return
        c = cand.reshape(-1)[idx]
        rate = hazard(x.reshape(-1)[idx])
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

