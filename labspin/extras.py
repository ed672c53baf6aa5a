"""Optional parts of labspin and the pip extra that brings each (a bench PC needs neither torch nor Qt).

``pip install labspin`` is the bench core (measure, analyse, level tables); ``[bench]`` adds a
VISA implementation (pyvisa-py), ``[gui]`` the Qt window, ``[eval]`` torch for the evaluator,
``[all]`` everything. A command that reaches a missing part says which extra in one line.
"""
from __future__ import annotations

import importlib.util

from labspin.errors import UserError

# top-level module -> (extra, what it is for)
EXTRAS = {
    "torch": ("eval", "the ResNet-18 evaluator"),
    "torchvision": ("eval", "the ResNet-18 evaluator"),
    "PySide6": ("gui", "the Qt window"),
    "pyqtgraph": ("gui", "the Qt window"),
    "shiboken6": ("gui", "the Qt window"),
}


def missing_extra_error(module: str | None, command: str = "this command") -> UserError | None:
    """The one-line UserError for a missing optional module, or None if it is not one of ours."""
    top = (module or "").split(".")[0]
    if top not in EXTRAS:
        return None
    extra, what = EXTRAS[top]
    return UserError(f"{command}: {what} needs {top}, which is not installed; "
                     f"pip install \"labspin[{extra}]\" (or -e \".[{extra}]\" in a clone)")


def require(extra: str, command: str) -> None:
    """Raise the one-line UserError up front if a module of ``extra`` cannot be imported."""
    for module, (e, _) in EXTRAS.items():
        if e == extra and importlib.util.find_spec(module) is None:
            raise missing_extra_error(module, command)
