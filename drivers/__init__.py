"""Instrument roles and their implementations on pymeasure classes.

Which models exist, and what each can do, is `labspin.drivers.registry`; this module opens one.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from labspin.drivers import registry
from labspin.errors import UserError


class _DriverClasses(Mapping):
    """name -> instrument class, a live read-only view of the registry; each class is imported
    on first access, so naming a driver costs nothing."""

    def __getitem__(self, key: str) -> type:
        return registry.entry(key).driver_class()      # KeyError for an unknown name

    def __iter__(self) -> Iterator[str]:
        return iter(registry.entries())

    def __len__(self) -> int:
        return len(registry.entries())

    def __contains__(self, key: object) -> bool:
        return key in registry.entries()


DRIVERS: Mapping[str, type] = _DriverClasses()


def open_instrument(driver: str, address: str, visa_library: Any = None, *, bus_log: Any = None,
                    **kw: Any) -> Any:
    """Open `address` with the named driver and check that *IDN? names that model.

    `visa_library` is passed to pyvisa (a path, "@py", or a VisaLibraryBase such as the
    simulator's); ``bus_log`` (a `labspin.buslog.BusLog`) records its messages from the first,
    what the pymeasure class sends while it is constructed included; other keywords go to the
    pymeasure class. Any failure to reach the
    instrument becomes a one-line UserError naming the address and the reason.
    """
    if driver not in DRIVERS:
        raise UserError(f"driver {driver!r}: unknown; choose one of {', '.join(sorted(DRIVERS))}")
    if not isinstance(address, str) or not address.strip():
        raise UserError(f"address {address!r}: not a VISA resource name")
    entry = registry.entry(driver)
    cls = entry.driver_class()
    kwargs = dict(kw)
    if visa_library is not None:
        kwargs["visa_library"] = visa_library
    try:
        if bus_log is None:
            inst = cls(address, **kwargs)
        else:
            with bus_log.constructing(address):
                inst = cls(address, **kwargs)
            bus_log.attach(inst, address)     # a no-op where the constructor's adapter was recorded
    except Exception as exc:  # noqa: BLE001 - pyvisa raises many types for a bad address
        raise UserError(f"address {address!r}: cannot open with {driver}: {_reason(exc)}") from None
    try:
        idn = inst.ask("*IDN?")
    except Exception as exc:  # noqa: BLE001
        _close_quietly(inst)
        raise UserError(f"address {address!r}: no reply to *IDN? from {driver}: {_reason(exc)}") from None
    idn = " ".join(str(idn).split())
    if not any(m.upper() in idn.upper() for m in entry.idn_models):
        _close_quietly(inst)
        raise UserError(f"address {address!r}: *IDN? answers {idn[:80]!r}, not a {driver}")
    inst._labspin_idn = idn          # the pre-flight check reports it without asking again
    return inst


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _close_quietly(inst: Any) -> None:
    try:
        inst.adapter.close()
    except Exception:  # noqa: BLE001
        pass


__all__ = ["DRIVERS", "open_instrument", "registry"]
