"""docs/recipes.md is run as written, and `labspin recipes` shows what a recipe author needs."""
from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "recipes.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _blocks(lang: str) -> list[str]:
    return [b for tag, b in FENCE.findall(DOC.read_text(encoding="utf-8")) if tag == lang]


def _labspin(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "labspin", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_recipe_example_runs_as_written(tmp_path):
    (toml,) = _blocks("toml")
    (tmp_path / "my_staircase.toml").write_text(toml)
    lines = [ln for b in _blocks("bash") for ln in b.splitlines() if ln.strip()]
    assert any("dry-run my_staircase.toml" in ln for ln in lines)
    for line in lines:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "labspin"
        r = _labspin(argv[1:], tmp_path)
        assert r.returncode == 0, (line, r.stderr[-2000:])
    assert (tmp_path / "my_staircase-report" / "report.md").is_file()
    from labspin.store import read_run
    rf = read_run(tmp_path / "my_staircase.h5")
    assert rf.status == "completed" and rf.data["cycle"].nunique() == 10     # --set cycles=10
    assert rf.data["step"].nunique() == 6


def test_protocol_kind_example_runs_and_says_what_it_shows(tmp_path):
    code = "\n".join(_blocks("python"))
    r = subprocess.run([sys.executable, "-"], input=code, cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, MPLBACKEND="Agg"))
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.splitlines()
    status, _, probs = out[0].partition(" mean R_H after the set pulse, per width (ohm): ")
    assert status == "completed"
    p = ast.literal_eval(probs)
    assert len(p) == 5 and p[-1] > p[0]             # the doc's claim: rises with the width
    assert out[1] == ("width_sweep.toml: parameters.widths[1]: must be > 0, got -0.001 (in s) (override)")
    assert "# " + out[1] in code                    # the comment in the doc is the real message


def test_recipes_lists_shipped_and_shows_units_defaults_limits(tmp_path):
    from labspin.protocols import shipped_recipes
    r = _labspin(["recipes"], tmp_path)
    assert r.returncode == 0, r.stderr
    for name in shipped_recipes():
        assert re.search(rf"^\s+{name}\s", r.stdout, re.M), name
    r = _labspin(["recipes", "retention"], tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln[:1].isalpha()}
    # parameter  value  unit  type  default  limit
    assert rows["interval"][1:3] == ["1", "s"] and rows["interval"][-2:] == [">=", "0"]
    assert rows["pulse_width"][2] == "s" and "0.0001" in rows["pulse_width"] and rows["pulse_width"][-2:] == [">", "0"]
    assert rows["reads"][2] == "-" and "required" in rows["reads"] and rows["reads"][-3:] == ["1", "..", "1e+07"]
    r = _labspin(["recipes", "nonesuch"], tmp_path)
    assert r.returncode == 2 and "shipped:" in r.stderr


def test_parameter_errors_name_the_unit(tmp_path):
    r = _labspin(["dry-run", "staircase", "--sim", "tilted:1", "--set", "pulse_width=100 V"], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == ("labspin: error: staircase.toml: parameters.pulse_width: expected a time "
                                "(in s or a multiple of it), got 'V', a voltage (override)")
    assert _labspin(["dry-run", "staircase", "--sim", "tilted:1", "--set", "pulse_width=100us"],
                    tmp_path).returncode == 0                  # a unit is read, not refused
    r = _labspin(["dry-run", "staircase", "--sim", "tilted:1", "--set", "read_current=0"], tmp_path)
    assert "parameters.read_current: must not be 0 (in A)" in r.stderr
