"""Instrument roles and their implementations on pymeasure classes."""
from __future__ import annotations

import importlib
from typing import Any

from labspin.errors import UserError

# driver name -> "module:class"; imported on use so that naming a driver costs nothing.
_DRIVER_PATHS = {
    "keithley6221": "labspin.drivers.keithley6221:Keithley6221",
    "keithley2182": "labspin.drivers.keithley2182:Keithley2182",
    "sr830": "pymeasure.instruments.srs:SR830",
    "sr860": "pymeasure.instruments.srs:SR860",
    "keithley2400": "pymeasure.instruments.keithley:Keithley2400",
    "keithley2450": "pymeasure.instruments.keithley:Keithley2450",
}

# what the model field of *IDN? must contain for each driver (compatible siblings included),
# so that a wrong address is caught before any current is sourced
_IDN_MODELS = {
    "keithley6221": ("6221",),
    "keithley2182": ("2182",),
    "sr830": ("SR830", "SR810"),
    "sr860": ("SR860", "SR865"),
    "keithley2400": ("MODEL 240", "MODEL 241", "MODEL 242", "MODEL 243"),
    "keithley2450": ("MODEL 245", "MODEL 246"),
}


class _DriverRegistry(dict):
    """name -> instrument class, resolving each class on first access."""

    def __missing__(self, key: str) -> type:
        path = _DRIVER_PATHS[key]            # KeyError for an unknown name, as for a dict
        module, attr = path.split(":")
        cls = getattr(importlib.import_module(module), attr)
        self[key] = cls
        return cls

    def __contains__(self, key: object) -> bool:
        return key in _DRIVER_PATHS

    def __iter__(self):
        return iter(_DRIVER_PATHS)

    def __len__(self) -> int:
        return len(_DRIVER_PATHS)

    def keys(self):
        return _DRIVER_PATHS.keys()

    def items(self):
        return [(k, self[k]) for k in _DRIVER_PATHS]

    def values(self):
        return [self[k] for k in _DRIVER_PATHS]

    def get(self, key, default=None):
        return self[key] if key in _DRIVER_PATHS else default


DRIVERS: dict[str, type] = _DriverRegistry()


def open_instrument(driver: str, address: str, visa_library: Any = None, **kw: Any) -> Any:
    """Open `address` with the named driver and check that *IDN? names that model.

    `visa_library` is passed to pyvisa (a path, "@py", or a VisaLibraryBase such as the
    simulator's); other keywords go to the pymeasure class. Any failure to reach the
    instrument becomes a one-line UserError naming the address and the reason.
    """
    if driver not in DRIVERS:
        raise UserError(f"driver {driver!r}: unknown; choose one of {', '.join(sorted(DRIVERS))}")
    if not isinstance(address, str) or not address.strip():
        raise UserError(f"address {address!r}: not a VISA resource name")
    cls = DRIVERS[driver]
    kwargs = dict(kw)
    if visa_library is not None:
        kwargs["visa_library"] = visa_library
    try:
        inst = cls(address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - pyvisa raises many types for a bad address
        raise UserError(f"address {address!r}: cannot open with {driver}: {_reason(exc)}") from None
    try:
        idn = inst.ask("*IDN?")
    except Exception as exc:  # noqa: BLE001
        _close_quietly(inst)
        raise UserError(f"address {address!r}: no reply to *IDN? from {driver}: {_reason(exc)}") from None
    idn = " ".join(str(idn).split())
    if not any(m.upper() in idn.upper() for m in _IDN_MODELS[driver]):
        _close_quietly(inst)
        raise UserError(f"address {address!r}: *IDN? answers {idn[:80]!r}, not a {driver}")
    return inst


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _close_quietly(inst: Any) -> None:
    try:
        inst.adapter.close()
    except Exception:  # noqa: BLE001
        pass


__all__ = ["DRIVERS", "open_instrument"]
