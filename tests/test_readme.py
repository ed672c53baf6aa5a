"""Everything the README shows is run here (commands and snippets), so it cannot rot.

The set-up block's install commands are what CI itself runs (.ci/run); its `labspin demo`
line is run by tests/test_demo.py. Every other `labspin ...` line of a ```bash block is run, in
order, in one scratch folder, with ../shared standing where the README says ../shared.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readme_blocks import README, blocks, commands

ROOT = README.parent


def _env(shared: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MPLBACKEND="Agg")
    env["LABSPIN_CHECKPOINT"] = str(shared / "models" / "resnet18_cifar10.pt")
    env["LABSPIN_DATA"] = str(shared / "data" / "cifar10")
    return env


def _argv(line: str, shared: Path) -> list[str]:
    line = line.replace("../shared", str(shared)).replace("docs/", str(ROOT / "docs") + "/")
    argv = shlex.split(os.path.expandvars(line), comments=True)
    assert argv[0] == "labspin", line
    return [sys.executable, "-m", "labspin", *argv[1:]]


def test_setup_block_matches_ci():
    setup = commands(blocks("bash")[0]) + commands(blocks("bash")[1])
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = [c for c in setup if "pytest" in c]
    assert len(test_cmd) == 1 and test_cmd[0] in ci, (test_cmd, ci)
    assert any(c.startswith("pip install") and "labspin demo" in c for c in setup)


@pytest.mark.timeout(900)
def test_tour_commands_run(tmp_path, shared_dir):
    env = _env(shared_dir)
    lines = [c for b in blocks("bash")[2:] for c in commands(b)]
    assert len(lines) >= 8
    for line in lines:
        argv = _argv(line, shared_dir)
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


def test_python_snippets_run(tmp_path, shared_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k, v in _env(shared_dir).items():
        monkeypatch.setenv(k, v)
    snippets = blocks("python")
    assert snippets
    for code in snippets:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})


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
