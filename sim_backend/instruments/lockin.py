"""What the SR830 and SR860 share: the AC Hall signal, the output filter in virtual time, noise.

Excitation: with the internal reference the lock-in's own sine out (SLVL V rms) drives the
channel through ``bench.lockin_series_resistance``; the series resistor defines the current
(I_rms = SLVL / R_s, R_xx neglected, as in a current-source set-up). With the external reference
the lock-in follows the 6221 sine (I_rms = AMPL/√2) when its phase marker is on; otherwise the
reference is unlocked (LIAS bit 3) and only noise is seen. Only the first harmonic carries the
(linear) Hall signal.

Output filter: ``n`` = slope/6 dB identical RC stages of time constant τ, evolved exactly between
changes of the input (device state, excitation, phase), so settling takes ~5–10 τ of virtual time.
Noise: σ = e_n·√ENBW per output quadrature, ENBW = {1/4, 1/8, 3/32, 5/64}/τ for 6…24 dB/oct
(the SR830 manual's noise-measurement table of the low-pass filters' equivalent noise bandwidth).
"""
from __future__ import annotations

import cmath
import math
from typing import ClassVar

from .srs import SrsInstrument

NOISE_DENSITY = 10e-9    # V/√Hz at the input (amplifier + Johnson noise of the Hall cross)
ENBW_FACTOR = (1 / 4, 1 / 8, 3 / 32, 5 / 64)


class LockIn(SrsInstrument):
    """Common lock-in physics; subclasses map their command sets onto ``s`` keys:
    ``slvl`` (V rms), ``freq``, ``phase`` (deg), ``harm``, ``internal`` (bool), ``sens_idx``,
    ``tc_idx``, ``slope_idx``."""

    SENSITIVITIES: ClassVar[tuple[float, ...]] = ()
    TIME_CONSTANTS: ClassVar[tuple[float, ...]] = ()
    # LIAS? (latched, read = clear): SR830 manual 5-20 (as SR850 6-32) bit 2 output overload, bit 3
    # reference unlock; SR860 (srsinst.sr860 LiaStatusBitDict) bits 0/1 CH1/CH2 output overload,
    # 3 unlock. A subclass sets its model's overload bits.
    OUTPUT_OVERLOAD: ClassVar[int] = 1 << 2     # LIAS bit(s) set when X or Y exceeds full scale
    UNLOCK: ClassVar[int] = 1 << 3              # LIAS bit of a reference unlock (both models)

    def __init__(self, bench, address):
        self._states: list[complex] = [0j]
        self._u = 0j
        self._t = 0.0
        self.lias = 0
        self._attached = False
        super().__init__(bench, address)
        self._t = self.clock.now
        self._ready = True

    def write(self, message: str) -> None:
        if not self._attached:
            self._attach()
        super().write(message)

    def _attach(self) -> None:
        """Start following the bench on first use (an idle lock-in costs nothing per pulse);
        the filter starts settled on the present input."""
        self._attached = True
        self.bench.add_listener(self._update)
        self._t = self.clock.now
        self._u = self._target()
        self._states = [self._u] * self._poles()

    def reset(self) -> None:
        super().reset()
        if getattr(self, "_attached", False):
            self._changed()

    # ---- model ---------------------------------------------------------------------------
    def _poles(self) -> int:
        return int(self.s["slope_idx"]) + 1

    def tau(self) -> float:
        return self.TIME_CONSTANTS[int(self.s["tc_idx"])]

    def sensitivity(self) -> float:
        return self.SENSITIVITIES[int(self.s["sens_idx"])]

    def enbw(self) -> float:
        return ENBW_FACTOR[int(self.s["slope_idx"])] / self.tau()

    def excitation(self) -> tuple[float, float, float, bool]:
        """(I_rms A, signal phase deg, reference frequency Hz, locked)."""
        s = self.s
        if s["internal"]:
            return s["slvl"] / self.bench.lockin_series_resistance, 0.0, s["freq"], True
        src = self.bench.addresses.get("keithley6221")
        if src is None:
            return 0.0, 0.0, s["freq"], False
        on, freq, ampl, pmar, marker = self.bench.instrument(src).wave_state()
        if not (on and marker):
            return 0.0, 0.0, s["freq"], False
        return ampl / math.sqrt(2), -pmar, freq, True

    def _target(self) -> complex:
        i_rms, phi, _f, locked = self.excitation()
        if not locked:
            self.lias |= self.UNLOCK
            return 0j
        if int(self.s["harm"]) != 1:
            return 0j
        v = i_rms * self.bench.hallbar.read_resistance(self.clock.now)
        return v * cmath.exp(1j * math.radians(phi - self.s["phase"]))

    def _advance(self) -> None:
        now = self.clock.now
        dt = now - self._t
        if dt > 0:
            x = dt / self.tau()
            u = self._u
            st = self._states
            if x > 60:
                self._states = [u] * len(st)
            else:
                e = math.exp(-x)
                d = [si - u for si in st]
                new = []
                for k in range(len(st)):
                    acc = 0j
                    term = 1.0
                    for j in range(k, -1, -1):  # j = k, k-1, ..., 0 ; term = x^(k-j)/(k-j)!
                        acc += d[j] * term
                        term *= x / (k - j + 1)
                    new.append(u + e * acc)
                self._states = new
            self._t = now

    def _update(self) -> None:
        """Bench listener: fold the filter up to now, then take the new input."""
        self._advance()
        self._u = self._target()

    def _changed(self) -> None:
        if not self._attached:
            return
        n = self._poles()
        if len(self._states) != n:
            self._advance()
            self._states = [self._states[-1]] * n
        self._update()

    def output(self) -> complex:
        """X + iY now (V), with noise; sets overload bits beyond full scale."""
        self._advance()
        sigma = NOISE_DENSITY * math.sqrt(self.enbw())
        z = self._states[-1] + complex(sigma * self.bench.noise(), sigma * self.bench.noise())
        self._check_input()
        fs = self.sensitivity()
        if abs(z.real) > fs or abs(z.imag) > fs:
            self.lias |= self.OUTPUT_OVERLOAD
            lim = 1.09 * fs
            z = complex(max(-lim, min(lim, z.real)), max(-lim, min(lim, z.imag)))
        return z

    def _check_input(self) -> None:
        """Input-stage overload checks (models with an input range override this)."""

    def reference_frequency(self) -> float:
        return self.excitation()[2]

    def auto_phase(self) -> None:
        z = self.output()
        self.s["phase"] = ((self.s["phase"] + math.degrees(cmath.phase(z)) + 180) % 360) - 180
        self._changed()
        self._states = [self._u] * self._poles()

    def auto_gain(self) -> None:
        r = abs(self.output())
        idx = self._sens_index_for(r / 0.8)
        self.s["sens_idx"] = idx

    def _sens_index_for(self, v: float) -> int:
        """Index of the smallest full scale ≥ v (tables run either way)."""
        table = self.SENSITIVITIES
        fits = [k for k, fs in enumerate(table) if fs >= v]
        if not fits:
            return max(range(len(table)), key=lambda k: table[k])
        return min(fits, key=lambda k: table[k])

    def cls(self) -> None:
        """``*CLS`` clears the LIA status too ("stay set until cleared by reading or by *CLS")."""
        super().cls()
        self.lias = 0

    def read_lias(self, bit: int | None) -> str:
        self._update()
        if bit is None:
            v, self.lias = self.lias, 0
            return str(v)
        v = (self.lias >> bit) & 1
        self.lias &= ~(1 << bit)
        return str(v)
