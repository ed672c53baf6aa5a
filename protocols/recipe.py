"""Recipes: TOML files that name a protocol kind and its parameters.

Format (SI units, or a string with a unit: "5 mA", "100 us")::

    name = "staircase"              # required, non-empty string
    kind = "staircase"              # required: loop | staircase | potdep | retention | endurance,
                                    # or a kind registered outside labspin (protocols/registry.py)
    description = "CTC benchmark"   # optional
    [parameters]                    # required; keys per kind (see each kind's module docstring)
    reset_current = -6e-3
    ...

Unknown keys, wrong types, non-finite or out-of-range values are refused with one line,
``"<file>: parameters.<key>: <reason>"``. The text is kept exactly as given (`Recipe.text`),
because the run file stores it. Overrides (GUI form, ``labspin run --set key=value``) are
validated the same way; string values are parsed as TOML values, so ``"--set cycles=10"``
gives an int and ``"--set amplitudes=[1e-3, 2e-3]"`` a list; a None value removes the key.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Mapping

from labspin.errors import FieldError, UserError
from labspin.protocols import registry
from labspin.protocols.base import Protocol

# kind -> Protocol class, live from the registry: shipped kinds, kinds defined in imported
# modules, and those of the `labspin.protocols` entry-point group (loaded on the first miss)
PROTOCOLS: Mapping[str, type[Protocol]] = registry.ProtocolView()

TOP_LEVEL_KEYS = ("name", "kind", "description", "parameters")


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str
    text: str               # the TOML text as given (overrides are not written into it)
    path: str | None        # the file it came from; None for text given directly
    protocol: Protocol
    description: str = ""
    overrides: dict = field(default_factory=dict)   # parameter values that replaced the file's

    def parameters(self) -> dict:
        """The effective parameters (file + overrides), JSON-able."""
        return self.protocol.parameters()


def _recipes_dir():
    return resources.files("labspin.protocols.recipes")


def shipped_recipes() -> list[str]:
    """Names of the recipes shipped with labspin (load them with `load_recipe(name)`)."""
    return sorted(p.name[:-5] for p in _recipes_dir().iterdir() if p.name.endswith(".toml"))


def parse_value(value):
    """`--set` gives strings: read them as TOML values; anything else passes through."""
    if not isinstance(value, str):
        return value
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def parse_recipe(text: str, source: str = "<recipe>", *, path: str | None = None,
                 overrides: dict | None = None) -> Recipe:
    """Validate recipe TOML text; `source` prefixes every error message."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: invalid TOML: {exc}") from None
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            raise UserError(f"{source}: {key}: unknown key (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        got = "missing" if name is None else f"expected a non-empty string, got {name!r}"
        raise UserError(f"{source}: name: {got}")
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in PROTOCOLS:
        got = "missing" if kind is None else f"unknown kind {kind!r}"
        raise UserError(f"{source}: kind: {got} (one of: {', '.join(PROTOCOLS)})")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise UserError(f"{source}: description: expected a string, got {description!r}")
    if "parameters" not in doc:
        raise UserError(f"{source}: parameters: missing table [parameters]")
    params = doc["parameters"]
    if not isinstance(params, dict):
        raise UserError(f"{source}: parameters: expected a table, got {params!r}")
    cls = PROTOCOLS[kind]
    protocol = cls.from_parameters(params, source)
    applied: dict = {}
    if overrides:
        applied = {k: parse_value(v) for k, v in overrides.items()}
        # None removes a parameter (e.g. switch a staircase from start/stop/states to amplitudes)
        merged = {k: v for k, v in {**params, **applied}.items() if v is not None}
        try:
            protocol = cls.from_parameters(merged, source)
        except FieldError as exc:
            raise exc.replace(reason=f"{exc.reason} (override)") from None
        except UserError as exc:
            raise UserError(f"{exc} (override)") from None
    return Recipe(name=name, kind=kind, text=text, path=path, protocol=protocol,
                  description=description, overrides=applied)


def _resolve(path_or_name: str | os.PathLike) -> tuple[str, str, str | None]:
    """(source label, text, path) of a recipe file or a shipped recipe name."""
    arg = os.fspath(path_or_name)
    p = Path(arg)
    if p.is_file():
        try:
            return arg, p.read_text(encoding="utf-8"), str(p.resolve())
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{arg}: cannot read: {exc}") from None
    name = arg[:-5] if arg.endswith(".toml") else arg
    if os.sep not in arg and "/" not in arg and name in shipped_recipes():
        f = _recipes_dir() / f"{name}.toml"
        return f"{name}.toml", f.read_text(encoding="utf-8"), str(f)
    if p.is_dir():
        raise UserError(f"{arg}: is a directory, not a recipe file")
    raise UserError(f"{arg}: no such recipe file or shipped recipe "
                    f"(shipped: {', '.join(shipped_recipes())})")


def load_recipe(path_or_shipped_name: str | os.PathLike, overrides: dict | None = None) -> Recipe:
    """Load and validate a recipe file, or a shipped recipe by name (with or without `.toml`).

    An existing file path wins over a shipped name of the same spelling.
    """
    source, text, path = _resolve(path_or_shipped_name)
    return parse_recipe(text, source, path=path, overrides=overrides)
