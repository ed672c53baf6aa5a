"""The one rule for a file labspin is about to write: checked before any work starts."""
from __future__ import annotations

import os

from labspin.errors import UserError


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False, suffix: str | None = None,
                      label: str = "") -> None:
    """Refuse (one line) a wrong suffix, an existing file without ``overwrite``, a missing folder.

    ``label`` names the option (``"--plot"``) so the message says which argument is wrong."""
    path = os.fspath(path)
    where = f"{label} {path}" if label else path
    if suffix is not None and not path.lower().endswith(suffix):
        raise UserError(f"{where}: must be a {suffix} file")
    if os.path.exists(path) and not overwrite:
        raise UserError(f"{where}: exists (use --overwrite to replace it)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{where}: folder {folder} does not exist")
