"""Lean installs: the bench core runs without torch and Qt; a verb that needs a missing extra says
which one in one line (exit 2). Missing modules are hidden in a fresh interpreter (None in sys.modules)."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "PySide6", "pyqtgraph", "shiboken6")


def _labspin(args: list[str], cwd: Path, hide=HEAVY, **env) -> subprocess.CompletedProcess:
    code = (f"import sys; [sys.modules.__setitem__(m, None) for m in {tuple(hide)!r}]; "
            "from labspin.cli import main; main()")
    e = dict(os.environ, MPLBACKEND="Agg", QT_QPA_PLATFORM="offscreen", **env)
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=300)


def test_pyproject_core_has_no_torch_or_qt_and_test_pulls_everything():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"]).lower()
    assert "torch" not in core and "pyside" not in core and "pyqtgraph" not in core
    extras = meta["optional-dependencies"]
    assert any(d.startswith("pyvisa-py") for d in extras["bench"])
    assert any(d.startswith("torch") for d in extras["eval"])
    assert any(d.lower().startswith("pyside6") for d in extras["gui"])
    assert extras["all"] == ["labspin[bench,gui,eval,sweep]"]
    assert "labspin[all]" in extras["test"]


def test_bench_core_measures_and_analyses_without_torch_or_qt(tmp_path):
    for args in (["run", "staircase", "--sim", "tilted:1", "--set", "cycles=3", "-o", "t.h5", "--no-progress"],
                 ["info", "t.h5"], ["analyze", "t.h5", "-o", "rep"], ["levels", "t.h5", "-o", "l.json"],
                 ["dry-run", "staircase", "--sim", "tilted:1"], ["recipes", "staircase"]):
        r = _labspin(args, tmp_path)
        assert r.returncode == 0, (args, r.stderr[-2000:])
    assert (tmp_path / "l.json").is_file()


@pytest.mark.parametrize("args, extra, module", [
    (["evaluate", "--levels", "{levels}", "--checkpoint", "{ckpt}", "--data", "{data}", "--subset", "10",
      "-o", "ev"], "eval", "torch"),
    (["train", "--data", "{data}", "-o", "x.pt"], "eval", "torch"),
    (["gui", "--sim", "tilted:1"], "gui", "PySide6"),
    (["demo", "--quick", "-o", "d", "--checkpoint", "{ckpt}", "--data", "{data}"], "eval", "torch"),
])
def test_a_verb_needing_a_missing_extra_names_it(tmp_path, shared_dir, args, extra, module):
    levels = tmp_path / "l.csv"
    levels.write_text("states,mean,std\n0,0.0,0.01\n1,1.0,0.01\n")
    subst = {"levels": str(levels), "data": str(shared_dir / "data" / "cifar10"),
             "ckpt": str(shared_dir / "models" / "resnet18_cifar10.pt")}
    r = _labspin([a.format(**subst) for a in args], tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f'labspin[{extra}]' in lines[0] and module in lines[0] and f"labspin {args[0]}" in lines[0]
    assert not (tmp_path / "d").exists()           # the demo refuses before measuring anything


def test_missing_module_that_is_not_an_extra_still_raises():
    from labspin.extras import missing_extra_error
    assert missing_extra_error("numpy") is None
    assert "labspin[eval]" in str(missing_extra_error("torch.nn", "labspin evaluate"))


def test_readme_setup_stays_two_commands_and_documents_lean_installs():
    sys.path.insert(0, str(ROOT / "tests"))
    from readme_blocks import README, blocks, commands
    setup = [commands(b) for b in blocks("bash")[:2]]
    assert [len(c) for c in setup] == [1, 1]
    assert setup[0][0].startswith('pip install -e ".[all]"')          # what the demo needs
    text = README.read_text()
    for extra in ("bench", "bench,gui", "eval", "all"):
        assert f'pip install "labspin[{extra}]"' in text, extra
    assert "--index-url https://download.pytorch.org/whl/cpu" in text and "pyvisa-py" in text
