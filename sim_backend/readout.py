"""What a read of a simulated Hall bar adds to its magnetic R_H: heating read-back, 1/f-like drift,
device read noise (docs/physics.md §R_H and what a read sees). One `Readout` serves a HallBar
(n = 1, `read_one`) or a HallBarBatch (n devices, `read`); the ladder design replays its read-back
rule.
"""
from __future__ import annotations

import json
import math

import numpy as np

from .params import DeviceParams

__all__ = ["Readout", "rng_state"]


def rng_state(rng: np.random.Generator) -> dict:
    """A JSON-able copy of a Generator's bit-generator state."""
    return json.loads(json.dumps(rng.bit_generator.state))


class Readout:
    """What a read adds to the magnetic R_H: heating read-back, 1/f-like drift, read noise.

    Arrays over devices (one for a HallBar). The drift is a sum of Ornstein-Uhlenbeck processes,
    one a decade between drift_tau_min and drift_tau_max, of equal variance drift²/K: their sum has
    a 1/f spectrum between the corners and a bounded rms `drift`. The read-back is readback·H,
    H the largest I² of the pulses since the last read (or the earlier H, decayed with
    tau_readback from the read that first saw it). Draws come from a child of the readout seed,
    saved with the state, so a restored device reads exactly as the original (the instruments'
    own noise, drawn in blocks from `readout_rng`, does not shift it). A resumed run's new bench
    moves its clock on to the device's last read (`SimBench.set_state`); a clock that still went
    back carries on as if no time had passed.
    """

    def __init__(self, p: DeviceParams, n: int, seed: np.random.SeedSequence) -> None:
        """`seed`: the device's readout SeedSequence."""
        self.p, self.n = p, n
        # the readout seed's first child, built without spawning (so every Readout gets the same)
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
        rng = rng_state(self.rng) if self._z_state is None else json.loads(json.dumps(self._z_state))
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

