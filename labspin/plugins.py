"""Extension points shared by the registries: lazy ``"module:attribute"`` names and entry points.

A registry (protocol kinds, observers) names the code behind an entry as a ``"module:attribute"``
string where importing it early would cost (matplotlib, scipy), and finds extensions that live in
other distributions through an entry-point group: ``labspin.protocols``, ``labspin.observers``.
An entry point's value is the module to import (``mylab.ramp``) or any attribute in it
(``mylab.ramp:Ramp``); importing it registers what it defines.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

_loaded: set[tuple[str, str, str]] = set()     # (group, name, value) already imported
_scanned: dict[str, tuple[str, ...]] = {}      # group -> sys.path when its entry points were read


def resolve(path: str | Any) -> Any:
    """``"package.module:attribute"`` -> the attribute (imported now); an object is itself."""
    if not isinstance(path, str):
        return path
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{path!r}: expected 'module:attribute'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load_entry_points(group: str) -> int:
    """Import every entry point of ``group`` not imported yet; return how many were new.

    Called by a registry when a name is not (yet) registered, so a plugin costs nothing until a
    name it brings is asked for. A plugin that fails to import is skipped with a warning naming
    it (the registry's own "unknown name" error follows), never a traceback. The installed
    distributions are read once per ``sys.path`` (a run file of an unknown kind costs no rescan).
    """
    path = tuple(sys.path)
    if _scanned.get(group) == path:
        return 0
    from importlib import metadata      # ~10 ms: paid by a lookup that misses, not by `resolve`
    _scanned[group] = path
    new = 0
    for ep in metadata.entry_points(group=group):
        key = (group, ep.name, ep.value)
        if key in _loaded:
            continue
        _loaded.add(key)
        try:
            if ":" in ep.value:
                ep.load()
            else:
                importlib.import_module(ep.value.strip())
        except Exception as exc:          # a broken plugin must not take the shipped names down
            warnings.warn(f"entry point {ep.name} = {ep.value!r} (group {group}): cannot load: {exc}",
                          RuntimeWarning, stacklevel=2)
            continue
        new += 1
    return new
