"""Not part of the package: this file makes a clone folder named ``labspin`` hand over to the real one.

From the folder that holds the clone, ``import labspin`` would find the clone itself first (a
bare folder on ``sys.path[0]`` becomes a PEP 420 namespace package, and it wins over setuptools'
editable-install finder, which comes later in ``sys.meta_path``), and ``labspin.__version__``,
``labspin.drivers`` … would be missing. With this file the clone is a regular package instead,
and importing it replaces itself by the installed labspin (editable or not), so the README's
snippets run from any folder. Inside the repository (the usual case) this file is never imported.
"""
import importlib as _importlib
import os as _os
import sys as _sys


def _hand_over(name: str, here: str):
    del _sys.modules[name]
    saved = list(_sys.path)
    # drop the folder(s) through which this clone was found, so the installed package is found
    _sys.path[:] = [p for p in _sys.path
                    if not _os.path.exists(_os.path.join(p or ".", name, "__init__.py"))
                    or not _os.path.samefile(_os.path.join(p or ".", name, "__init__.py"), here)]
    try:
        real = _importlib.import_module(name)
    except ImportError:
        raise ImportError(f"{name} is not installed in this Python ({_sys.executable}); "
                          f"run: pip install -e {_os.path.dirname(here)}") from None
    finally:
        _sys.path[:] = saved
    _sys.modules[name] = real
    return real


if __name__ == "labspin":
    _hand_over(__name__, __file__)
