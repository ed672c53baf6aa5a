"""DeviceParams: one documented, copyable parameter set of a simulated Hall bar, and the presets.

Field meanings, units and sources: docs/physics.md §Parameters. The law the fields enter is in
`switching`, the ensemble in `hallbar`, the read model in `readout`, the ladder design in `ladder`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from typing import Any

import numpy as np

from .errors import SimulatorInputError   # one-line input errors (labspin maps them)

__all__ = ["DeviceParams", "PRESETS", "preset"]


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
    # cached: read on every pulse (a frozen dataclass keeps them in its __dict__; not fields)
    @cached_property
    def n_eff(self) -> int:
        """Number of independent switching units (clusters)."""
        return max(1, int(self.n_units) // int(self.cluster_size))

    @cached_property
    def area(self) -> float:
        """Cross-section of the current-carrying layer (m^2)."""
        return self.width * self.thickness

    @property
    def drift_taus(self) -> np.ndarray:
        """Correlation times of the drift's OU processes: one a decade, drift_tau_min … drift_tau_max."""
        n = 1 + int(round(math.log10(self.drift_tau_max / self.drift_tau_min)))
        return np.geomspace(self.drift_tau_min, self.drift_tau_max, n)

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
        from .ladder import suggested_staircase      # the design imports these params
        return suggested_staircase(self, n_states, width)["amplitudes"]

    def reset_current(self, width: float = 100e-6) -> float:
        """Negative pulse amplitude (A) that saturates the device (switches >99.99 % of units)."""
        from .ladder import reset_current
        return reset_current(self, width)


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
