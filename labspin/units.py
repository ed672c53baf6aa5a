"""Numbers with units in recipes and station files: ``"5 mA"``, ``"100 us"``, ``"20 V"``.

A bare number is SI, as before. A string is read as *number unit* with pint, checked for the
dimension the field expects (a current given in volts is refused) and converted to the SI unit
of the field. The pint registry is built on first use only, so files without unit strings never
pay for it. Only "number, then unit" is accepted: pint's expression evaluator never sees
arbitrary text (``"2**10**10 A"`` is refused before pint, not computed).
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from labspin.errors import UserError

# SI unit of a field -> what it is, for messages.
DIMENSIONS = {"A": "current", "s": "time", "V": "voltage", "m": "length", "ohm": "resistance",
              "Hz": "frequency", "K": "temperature", "T": "magnetic flux density"}

# Station-file numbers by key (labspin.station reads them through `station_value`).
STATION_UNITS = {
    "sample.width": "m", "sample.thickness": "m", "sample.length": "m", "sample.r_xx": "ohm",
    "limits.max_pulse_current": "A", "limits.max_read_current": "A",
    "limits.compliance_voltage": "V", "limits.min_pulse_width": "s", "limits.max_pulse_width": "s",
    "limits.min_smu_pulse_width": "s", "simulator.line_frequency": "Hz",
    "roles.hall_reader.series_resistance": "ohm",
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"\s*({_NUMBER})\s*([A-Za-zµμΩ°][A-Za-z0-9µμΩ°_/*^. ]{{0,40}}?)\s*")


_PREFIX = {"": 1.0, "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "m": 1e-3,
           "k": 1e3, "M": 1e6, "G": 1e9}
_SIMPLE = re.compile(r"([fpnuµμmkMG]?)(A|s|V|m|ohm|Ω|Hz)")


class UnitError(ValueError):
    """A unit string that cannot be read, or of the wrong dimension; the message is the reason."""


@lru_cache(maxsize=1)
def registry():
    import pint
    return pint.UnitRegistry()


@lru_cache(maxsize=256)
def _factor(unit_text: str, si: str) -> float:
    """Multiplier from `unit_text` to the SI unit `si` (UnitError if unknown or wrong dimension).

    A prefixed SI unit of the right dimension ("mA", "us", "kohm") is read without pint: building
    pint's registry takes ~1 s, which a dry-run of a shipped recipe should not pay."""
    simple = _SIMPLE.fullmatch(unit_text)
    if simple and simple.group(2).replace("Ω", "ohm") == si:
        return _PREFIX[simple.group(1)]
    ureg = registry()
    try:
        u = ureg.parse_units(unit_text.replace("Ω", "ohm").replace("μ", "u").replace("µ", "u"))
        target = ureg.parse_units(si)
    except Exception as exc:        # pint: UndefinedUnitError, DefinitionSyntaxError, ...
        raise UnitError(f"unknown unit {unit_text!r} ({type(exc).__name__})") from None
    if u.dimensionality != target.dimensionality:
        want = DIMENSIONS.get(si, si)
        got = next((name for unit, name in DIMENSIONS.items()
                    if ureg.parse_units(unit).dimensionality == u.dimensionality),
                   f"dimension {u.dimensionality}")
        raise UnitError(f"expected a {want} (in {si} or a multiple of it), got {unit_text!r}, a {got}")
    return float(ureg.Quantity(1.0, u).to(target).magnitude)


def to_si(value: Any, si: str) -> Any:
    """`value` in the SI unit `si`: strings are parsed ("5 mA" -> 0.005), anything else is returned
    unchanged (the caller checks types). Raises UnitError with the reason."""
    if not isinstance(value, str) or not si:
        return value
    m = _QUANTITY.fullmatch(value)
    if m is None:
        raise UnitError(f"expected a number or a number with a unit such as '5 mA' "
                        f"(in {si}), got {value!r}")
    number, unit_text = float(m.group(1)), m.group(2).strip()
    out = number * _factor(unit_text, si)
    if not math.isfinite(out):
        raise UnitError(f"must be finite, got {value!r}")
    return float(f"{out:.15g}")         # "9.64 mA" -> 0.00964, not 0.009640000000000001


def station_value(value: Any, where: str, key: str) -> Any:
    """A station-file number (`key` like "limits.max_pulse_current") with its unit string read."""
    try:
        return to_si(value, STATION_UNITS.get(key, ""))
    except UnitError as exc:
        raise UserError(f"{where}: {key}: {exc}") from None
