"""Everything the README shows is run here (commands and snippets), so it cannot rot.

The set-up block's install commands are what CI itself runs (.ci/run); its `labspin demo`
line is run by tests/test_demo.py. Every other line of a ```bash block is run as a reader runs
it: in order, in one scratch folder standing for the clone (../shared is where the README says),
with no environment but what the README itself exports (`export` lines carry over to the lines
after them). The Python snippets run as `python -` from that folder, and from the folder that
holds a clone named `labspin` (where a bare `labspin/` would otherwise shadow the install).
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readme_blocks import README, blocks, commands

ROOT = README.parent


def _env() -> dict:
    """The test's environment minus anything labspin reads: only the README's exports count."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABSPIN_")}
    env.update(QT_QPA_PLATFORM="offscreen", MPLBACKEND="Agg")
    return env


def _local(line: str, shared: Path) -> str:
    return line.replace("../shared", str(shared)).replace("docs/", str(ROOT / "docs") + "/")


def _argv(line: str, shared: Path, env: dict) -> list[str]:
    expand = lambda a: re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), a)  # noqa: E731
    argv = [expand(a) for a in shlex.split(_local(line, shared), comments=True)]
    assert argv[0] == "labspin", line
    return [sys.executable, "-m", "labspin", *argv[1:]]


def _export(line: str, shared: Path, env: dict) -> None:
    """`export A=x B=y`, as the shell does it (relative paths stay relative to the clone)."""
    words = shlex.split(_local(line, shared), comments=True)
    assert words[0] == "export" and len(words) > 1, line
    for w in words[1:]:
        key, sep, value = w.partition("=")
        assert sep, line
        env[key] = value


def test_tour_exports_what_evaluate_needs():
    """The tour says where the checkpoint and data come from before `labspin evaluate` uses them."""
    lines = [c for b in blocks("bash")[2:] for c in commands(b)]
    first_eval = next(i for i, c in enumerate(lines) if c.startswith("labspin evaluate"))
    exported = " ".join(c for c in lines[:first_eval] if c.startswith("export "))
    assert "LABSPIN_CHECKPOINT=" in exported and "LABSPIN_DATA=" in exported, lines[:first_eval]


def test_setup_block_matches_ci():
    setup = commands(blocks("bash")[0]) + commands(blocks("bash")[1])
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = [c for c in setup if "pytest" in c]
    assert len(test_cmd) == 1 and test_cmd[0] in ci, (test_cmd, ci)
    assert any(c.startswith("pip install") and "labspin demo" in c for c in setup)


@pytest.mark.timeout(900)
def test_tour_commands_run(tmp_path, shared_dir):
    env = _env()
    lines = [c for b in blocks("bash")[2:] for c in commands(b)]
    assert len(lines) >= 8
    for line in lines:
        if line.startswith("export "):
            _export(line, shared_dir, env)
            continue
        argv = _argv(line, shared_dir, env)
        if argv[3:4] == ["gui"]:
            # a window: it must come up and keep running; a person closes it
            proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            time.sleep(8)
            alive = proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            assert alive, f"{line}: exited {proc.returncode}: {err[-2000:]}"
            continue
        r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        if "# on the bench" in line:
            # needs the instruments: with none attached it must refuse in one clean line
            assert r.returncode == 2, (line, r.stdout, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
            continue
        assert r.returncode == 0, f"{line}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


def _run_snippets(cwd: Path) -> None:
    snippets = blocks("python")
    assert snippets
    for code in snippets:
        r = subprocess.run([sys.executable, "-"], input=code, cwd=cwd, env=_env(), capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, f"in {cwd}:\n{code}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"


def test_python_snippets_run(tmp_path):
    _run_snippets(tmp_path)


def test_python_snippets_run_beside_a_clone_named_labspin(tmp_path):
    """From the folder holding the clone (README layout: labspin/ beside shared/), `import labspin`
    must still be the installed package, not the clone folder as a namespace package."""
    (tmp_path / "labspin").symlink_to(ROOT, target_is_directory=True)
    probe = subprocess.run([sys.executable, "-c", "import labspin, labspin.drivers; "
                            "print(labspin.__version__, labspin.__file__)"],
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    from labspin import __version__
    assert probe.stdout.split()[0] == __version__
    found = Path(probe.stdout.split()[1]).resolve()      # the package, not the clone's root
    assert found.parts[-2:] == ("labspin", "__init__.py") and found != (ROOT / "__init__.py").resolve()
    _run_snippets(tmp_path)


def test_readme_station_is_the_shipped_example():
    """The station the README shows validates and says what docs/station_example.toml says."""
    from labspin.station import load_station_spec, parse_station_spec
    tomls = blocks("toml")
    assert len(tomls) == 1
    shown = parse_station_spec(tomls[0], "README.md")
    example = load_station_spec(ROOT / "docs" / "station_example.toml")
    assert shown.limits == example.limits
    assert shown.instruments == example.instruments
    assert shown.hall_reader == example.hall_reader and shown.pulse_source == example.pulse_source
