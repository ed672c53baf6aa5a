"""The protocol-kind registry: one entry per kind, the one place a kind is looked up.

An entry says everything the rest of labspin needs to know about a kind: the Protocol class a
recipe's ``kind = "..."`` builds, whether its ``step`` index names a device state (the analysis
then takes states from it), its analysis (named results added to a ``RunAnalysis``) and its
report section (figures, tables, markdown, summary lines; ``labspin.report.ReportSection``).
Code is named as ``"module:attribute"`` strings and imported on first use (as in
``labspin.drivers.registry``), so loading a recipe imports no pandas, scipy or matplotlib.

A ``Protocol`` subclass with its own ``kind`` registers itself when its class is created
(``Protocol.__init_subclass__``), taking ``states_from_step``, ``analysis`` and ``report`` from its
class attributes: a new kind is its module + its recipe. A kind with no protocol (runs imported
per state, ``"levels"``) is ``register(KindEntry(...))``. Kinds defined outside labspin register
when their module is imported, or — for ``labspin run`` and the other commands — when an
installed distribution names the module in the entry-point group ``labspin.protocols``
(``docs/internals.md`` §4 has a worked example).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

from labspin.plugins import load_entry_points, resolve

GROUP = "labspin.protocols"


@dataclass(frozen=True)
class KindEntry:
    """One protocol kind (what a recipe or a run file writes as ``kind``)."""

    kind: str
    protocol: str | type | None = None        # its Protocol class; None: no recipe builds it
    states_from_step: bool = False            # `step` names a device state (staircase, potdep)
    analysis: str | Callable | None = None    # (RunAnalysis) -> dict of named results
    report: str | type | Any = None           # a labspin.report.ReportSection (class or instance)

    def protocol_class(self) -> type:
        if self.protocol is None:
            raise LookupError(f"kind {self.kind!r}: no protocol (runs of it are imported, not run)")
        return resolve(self.protocol)

    def analysis_function(self) -> Callable | None:
        return None if self.analysis is None else resolve(self.analysis)

    def report_section(self) -> Any:
        """The kind's report section (an instance), or None for a kind without one."""
        if self.report is None:
            return None
        section = resolve(self.report)
        return section() if isinstance(section, type) else section


_ENTRIES: dict[str, KindEntry] = {}


def register(entry: KindEntry, *, replace: bool = False) -> KindEntry:
    """Add a kind; a kind already taken is refused unless ``replace`` (or it is the same class
    defined again: a module imported twice, a dataclass rebuilt with slots)."""
    old = _ENTRIES.get(entry.kind)
    if old is not None and not replace and not _same_class(old.protocol, entry.protocol):
        raise ValueError(f"protocol kind {entry.kind!r} is already registered "
                         f"(by {_name(old.protocol)})")
    _ENTRIES[entry.kind] = entry
    return entry


def register_protocol(cls: type) -> KindEntry:
    """The entry of a Protocol subclass, from its class attributes (``Protocol.__init_subclass__``)."""
    return register(KindEntry(kind=cls.kind, protocol=cls,
                              states_from_step=bool(getattr(cls, "states_from_step", False)),
                              analysis=getattr(cls, "analysis", None), report=getattr(cls, "report", None)))


def unregister(kind: str) -> None:
    """Remove a kind (tests that register a toy kind clean up with this)."""
    _ENTRIES.pop(kind, None)


def _shipped() -> None:
    import labspin.protocols  # noqa: F401  (its modules register the shipped kinds)


def get(kind: str, default: Any = None) -> KindEntry | Any:
    """The entry of ``kind``; on a miss, the entry points of ``labspin.protocols`` are loaded
    and asked again; ``default`` if still unknown (a run file of a kind no longer installed)."""
    _shipped()
    if kind not in _ENTRIES:
        load_entry_points(GROUP)
    return _ENTRIES.get(kind, default)


def entries() -> Mapping[str, KindEntry]:
    """kind -> entry, shipped and installed ones, in registration order (read-only view)."""
    _shipped()
    load_entry_points(GROUP)
    return MappingProxyType(_ENTRIES)


def protocol_class(kind: str) -> type:
    """The Protocol class of ``kind``; KeyError if no recipe can build that kind."""
    e = get(kind)
    if e is None or e.protocol is None:
        raise KeyError(kind)
    return e.protocol_class()


class ProtocolView(Mapping):
    """kind -> Protocol class of every kind a recipe can name; live (plugins appear when loaded)."""

    def __getitem__(self, kind: str) -> type:
        return protocol_class(kind)

    def __contains__(self, kind: object) -> bool:
        if not isinstance(kind, str):
            return False
        e = get(kind)
        return e is not None and e.protocol is not None

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, e in entries().items() if e.protocol is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"ProtocolView({', '.join(self)})"


def _same_class(a: Any, b: Any) -> bool:
    if a is b:
        return True
    return (isinstance(a, type) and isinstance(b, type) and a.__module__ == b.__module__
            and a.__qualname__ == b.__qualname__)


def _name(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}" if isinstance(obj, type) else repr(obj)


# --- kinds without a protocol ------------------------------------------------------------------

# `labspin import --kind levels`: reads taken at each programmed state, `step` = the state
register(KindEntry("levels", states_from_step=True))
