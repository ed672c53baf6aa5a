"""The layering the design rests on, read from every module's imports (its AST, so an import
inside a function counts as much as one at the top):

- the simulator (sim_backend/, `labspin.sim_backend`) stands alone behind PyVISA: it imports
  nothing of labspin outside itself;
- the protocols, the runner and the run-file store know nothing of the simulator, the GUI or
  the CLI: they talk to the station's clock and device-state provider and to plain dicts.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> the package it is installed as (pyproject.toml [tool.setuptools] package-dir)
PACKAGES = {"labspin": "labspin", "sim_backend": "labspin.sim_backend",
            "protocols": "labspin.protocols", "drivers": "labspin.drivers"}
FORBIDDEN_FOR_CORE = ("labspin.sim_backend", "labspin.gui", "labspin.cli", "PySide6", "pyqtgraph",
                      "click")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from labspin import gui` imports labspin.gui: name the submodules too
            found += [(node.lineno, mod)] + [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return found


def within(mod: str, package: str) -> bool:
    return mod == package or mod.startswith(package + ".")


def files(*globs: str) -> list[Path]:
    out = sorted({p for g in globs for p in ROOT.glob(g)})
    assert out, globs
    return out


def module_file(mod: str) -> Path | None:
    """The file of an installed labspin module name (None outside labspin or not a file here)."""
    for folder, package in sorted(PACKAGES.items(), key=lambda kv: -len(kv[1])):
        if within(mod, package):
            rest = mod[len(package):].lstrip(".").split(".") if mod != package else []
            base = ROOT.joinpath(folder, *rest)
            for cand in (base.with_suffix(".py"), base / "__init__.py"):
                if cand.is_file():
                    return cand
            return None
    return None


def store_modules() -> set[Path]:
    """The store and whatever it is split into: the labspin modules its file(s) import."""
    roots = [p for p in (ROOT / "labspin" / "store.py", ROOT / "labspin" / "store" / "__init__.py")
             if p.is_file()]
    found = set(roots)
    for path in roots:
        for _, mod in imports(path):
            f = module_file(mod)
            if f is not None and f.parent.name != "sim_backend":
                found.add(f)
    return found


SIM = files("sim_backend/**/*.py")
CORE = sorted(set(files("protocols/**/*.py", "labspin/runner.py", "labspin/schema.py"))
              | store_modules())


def test_the_store_and_its_parts_are_covered():
    names = {p.relative_to(ROOT).as_posix() for p in CORE}
    assert "labspin/schema.py" in names and "labspin/errors.py" in names
    assert any(n.startswith("labspin/store") for n in names)


def test_the_walk_resolves_relative_imports():
    found = dict((m, n) for n, m in imports(ROOT / "sim_backend" / "bench.py"))
    assert "labspin.sim_backend.clock" in found          # `from .clock import VirtualClock`
    assert module_name(ROOT / "sim_backend" / "instruments" / "__init__.py") == \
        "labspin.sim_backend.instruments"


@pytest.mark.parametrize("path", SIM, ids=lambda p: str(p.relative_to(ROOT)))
def test_simulator_imports_no_labspin_outside_itself(path):
    bad = [(n, m) for n, m in imports(path)
           if within(m, "labspin") and not within(m, "labspin.sim_backend")]
    assert not bad, f"{path.relative_to(ROOT)} imports labspin outside sim_backend: {bad}"


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_protocols_runner_store_import_no_simulator_gui_or_cli(path):
    bad = [(n, m) for n, m in imports(path) if any(within(m, f) for f in FORBIDDEN_FOR_CORE)]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_drivers_reach_the_simulator_only_through_pyvisa():
    for path in files("drivers/**/*.py"):
        bad = [(n, m) for n, m in imports(path) if within(m, "labspin.sim_backend")]
        assert not bad, f"{path.relative_to(ROOT)} imports the simulator: {bad}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        reach = [node.lineno for node in ast.walk(tree)
                 if (isinstance(node, ast.Attribute) and node.attr == "bench")
                 or (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr"
                     and any(isinstance(a, ast.Constant) and a.value == "bench" for a in node.args))]
        assert not reach, f"{path.relative_to(ROOT)} reaches into a simulated library's bench: lines {reach}"
