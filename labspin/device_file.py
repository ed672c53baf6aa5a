"""Device files: a simulated device's parameters as TOML (``format = "labspin-device/1"``).

``labspin fit`` writes one; ``--sim device.toml[:SEED]``, ``labspin sim loop --device
device.toml`` and a station file's ``[simulator] device`` read it through :func:`resolve_device`,
which takes a preset name or a path. The ``[device]`` table holds ``DeviceParams`` field names;
``[fit]`` holds the uncertainties and provenance (ignored by the simulator).

Parameter names follow docs/physics.md: the thermal stability factor is ``delta``. A few agreed
names (``AGREED``) may not exist in every version of the simulator; a file carrying one the
running simulator lacks is still accepted, and the parameter is ignored with a note
(:func:`load_device` returns the notes), so a device file outlives a simulator upgrade.
"""
from __future__ import annotations

import logging
import math
import os
import tomllib
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from labspin.errors import UserError

FORMAT = "labspin-device/1"
#: names agreed with the device-physics model; a simulator without one ignores it (with a note)
AGREED = ("delta", "J_c0", "tau0", "sigma_g", "R_AHE", "R0", "J_shift", "read_noise", "drift")
#: older/newer spellings of one parameter (file name -> simulator field)
ALIASES = {"delta": "delta0", "delta0": "delta"}
_SAID: set[str] = set()


def is_device_file(spec: str) -> bool:
    """True when ``spec`` names a device file rather than a preset."""
    return str(spec).lower().endswith(".toml")


def params_from_table(table: dict, source: str) -> tuple[Any, list[str]]:
    """``DeviceParams`` from a ``[device]`` table, mapping aliases; (params, notes)."""
    from labspin.sim_backend.physics import DeviceParams

    known = {f.name for f in fields(DeviceParams)}
    kwargs: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in table.items():
        name = key
        if name not in known and ALIASES.get(name) in known:
            name = ALIASES[name]
        if name in known:
            if name in kwargs:
                raise UserError(f"{source}: device.{key}: given twice (also as {ALIASES[name]})")
            kwargs[name] = value
        elif key in AGREED:
            notes.append(f"{source}: device.{key} = {value!r} ignored: this simulator has no "
                         f"such parameter yet")
        else:
            raise UserError(f"{source}: device.{key}: unknown parameter")
    with simulator_input():
        return DeviceParams.from_dict(kwargs), notes


def load_device(path: str | os.PathLike) -> tuple[Any, list[str]]:
    """Read a device file; (DeviceParams, notes). UserError names the file and key."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such device file")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from None
    if doc.get("format") != FORMAT:
        raise UserError(f"{path}: format: expected {FORMAT!r}, got {doc.get('format')!r}")
    unknown = sorted(set(doc) - {"format", "device", "fit"})
    if unknown:
        raise UserError(f"{path}: {unknown[0]}: unknown key")
    table = doc.get("device")
    if not isinstance(table, dict):
        raise UserError(f"{path}: [device]: missing table")
    table = dict(table)
    table.setdefault("name", p.stem)
    try:
        return params_from_table(table, str(path))
    except UserError as exc:
        msg = str(exc)
        raise UserError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def resolve_device(spec: str) -> Any:
    """A preset name (``tilted``) or a device file path -> ``DeviceParams``."""
    from labspin.sim_backend import physics

    if isinstance(spec, str) and is_device_file(spec):
        params, notes = load_device(spec)
        for note in notes:
            if note not in _SAID:           # once per process, however often the file is read
                _SAID.add(note)
                logging.getLogger(__name__).warning(note)
        return params
    with simulator_input():
        return physics.preset(spec)


@contextmanager
def simulator_input():
    """The simulator's input errors (it stands alone: its own `SimulatorInputError`) as labspin's
    `UserError`, same one-line message."""
    from labspin.sim_backend.errors import SimulatorInputError
    try:
        yield
    except SimulatorInputError as exc:
        raise UserError(str(exc)) from None


def save_device(path: str | os.PathLike, device: dict, fit: dict, *, overwrite: bool = False,
                header: str = "") -> Path:
    """Write a device file (atomic; refuses to replace a file unless ``overwrite``)."""
    import tomli_w

    from labspin.levels import _write_text, to_jsonable

    def clean(obj: Any) -> Any:      # TOML has no null: drop missing values
        if isinstance(obj, dict):
            return {str(k): clean(v) for k, v in obj.items() if v is not None
                    and not (isinstance(v, float) and not math.isfinite(v))}
        if isinstance(obj, list):
            return [clean(v) for v in obj if v is not None]
        return obj

    doc = {"format": FORMAT, "device": clean(to_jsonable(device)), "fit": clean(to_jsonable(fit))}
    text = "".join(f"# {line}\n" for line in header.splitlines()) + tomli_w.dumps(doc)
    return _write_text(path, text, overwrite)     # atomic; refuses to replace unless overwrite
