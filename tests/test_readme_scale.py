"""The README's long-run and sweep commands (```sh blocks of "Long runs, units and sweeps"), run as
written but scaled down: fewer cycles, a smaller copy of each shipped sweep file. The ```bash
blocks run in full in tests/test_readme.py."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pandas as pd

from readme_blocks import README

ROOT = README.parent


def _section_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Long runs, units and sweeps", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip()]


def _scaled_sweep(name: str, tmp) -> str:
    """A smaller copy of a shipped sweep file: 3 devices, 3 cycles; the evaluator on 16 images."""
    text = (ROOT / "docs" / "sweeps" / name).read_text()
    text = re.sub(r"count = \d+", "count = 3", text)
    text = re.sub(r"cycles = \[?\d+\]?", lambda m: "cycles = [3]" if "[" in m.group(0) else "cycles = 3", text)
    text = re.sub(r'levels = \[.*\]', 'levels = ["tilted:0", "uniform:11"]', text)
    text = re.sub(r"observers = \[.*\]", 'observers = ["minmax"]', text)
    text = re.sub(r"granularity = \[.*\]", 'granularity = ["channel"]', text)
    text = re.sub(r"noise_trials = \[.*\]", "noise_trials = [0, 2]", text)
    text = re.sub(r"subset = \d+", "subset = 16", text)
    path = tmp / name
    path.write_text(text)
    return str(path)


def test_long_run_and_sweep_commands_run_scaled_down(tmp_path, shared_dir):
    lines = _section_commands()
    verbs = [shlex.split(line)[1] for line in lines]
    assert verbs == ["run", "analyze", "sweep", "sweep"], lines
    env = {"LABSPIN_CHECKPOINT": str(shared_dir / "models" / "resnet18_cifar10.pt"),
           "LABSPIN_DATA": str(shared_dir / "data" / "cifar10"), "MPLBACKEND": "Agg",
           "PATH": "/usr/bin:/bin"}
    for line in lines:
        argv = shlex.split(line)
        if argv[1] == "run":
            argv = [a.replace("cycles=300000", "cycles=20000") for a in argv]
        if argv[1] == "sweep":
            argv[2] = _scaled_sweep(argv[2].split("/")[-1], tmp_path)
        r = subprocess.run([sys.executable, "-m", "labspin", *argv[1:]], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert "window and CTC vs cycles" in (tmp_path / "endurance-report" / "report.md").read_text()
    d2d = pd.read_csv(tmp_path / "d2d" / "results.csv")
    assert len(d2d) == 3 and (d2d["status"] == "completed").all()
    grid = pd.read_csv(tmp_path / "eval_grid" / "results.csv")
    ev = grid[grid["kind"] == "evaluate"]
    assert len(ev) == 4 and (ev["status"] == "completed").all() and (ev["images"] == 16).all()
    assert "## Accuracy" in (tmp_path / "eval_grid" / "report.md").read_text()
