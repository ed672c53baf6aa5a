"""The one rule for what labspin writes, checked before any work starts.

An existing output is never replaced, nor a folder written into, without ``overwrite``. A file's
folder must exist (a mistyped folder is refused, not created); an output folder is created, with
its parents. Every refusal is one UserError line naming the path; an existing output is an
`OutputExists` (field ``overwrite``: the CLI says ``--overwrite``, the GUI marks its box).
"""
from __future__ import annotations

import os
from pathlib import Path

from labspin.errors import OutputExists, UserError


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False, suffix: str | None = None,
                      label: str = "") -> None:
    """Refuse (one line) a wrong suffix, an existing file without ``overwrite``, a missing folder.

    ``label`` names the option (``"--plot"``) so the message says which argument is wrong."""
    path = os.fspath(path)
    where = f"{label} {path}" if label else path
    if suffix is not None and not path.lower().endswith(suffix):
        raise UserError(f"{where}: must be a {suffix} file")
    if os.path.isdir(path):
        raise UserError(f"{where}: is a folder, not a file")
    if os.path.exists(path) and not overwrite:
        raise OutputExists(where, "exists", " to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{where}: folder {folder} does not exist")


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse (one line) a path that is not a folder, or a folder already holding files without
    ``overwrite`` (any file: results of another kind are outputs too); a missing folder is fine."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{p}: exists and is not a folder")
    if not overwrite and p.is_dir() and any(p.iterdir()):
        raise OutputExists(p, "exists and is not empty", " to write into it")
    return p


def prepare_output_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """:func:`check_output_dir`, then create the folder (and its parents)."""
    p = check_output_dir(path, overwrite=overwrite)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{p}: cannot create the folder ({exc.strerror or exc})") from None
    return p
