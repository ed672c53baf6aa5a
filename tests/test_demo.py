"""The README's main job, `labspin demo --quick`, end to end on the shared checkpoint and data."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from readme_blocks import blocks, commands


@pytest.mark.timeout(900)
def test_quick_demo_from_the_readme(tmp_path, shared_dir):
    line = next(c for c in commands(blocks("bash")[0]) if "labspin demo" in c)
    demo = line.split("&&")[-1].strip().replace("../shared", str(shared_dir))
    argv = shlex.split(demo)
    assert argv[:3] == ["labspin", "demo", "--quick"], argv
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-m", "labspin", *argv[1:], "-o", str(tmp_path / "demo")],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path / "demo"
    assert f"report: {out / 'report.md'}" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    dev = {d["device"]: d for d in summary["devices"]}
    assert set(dev) == {"orange_peel", "idmi", "tilted"}
    # tilted has the most states and the lowest CTC
    assert dev["tilted"]["states"] == max(d["states"] for d in dev.values())
    assert dev["tilted"]["ctc"] == min(d["ctc"] for d in dev.values())
    assert dev["tilted"]["states"] >= 10
    acc = summary["accuracy"]
    assert acc, "accuracy table missing"
    rows = {(a["device"], a["config"]): a for a in acc}
    fp32 = rows[("tilted", "FP32")]["accuracy"]
    assert fp32 > 85
    pc = rows[("tilted", "per-channel min-max")]
    assert abs(pc["delta"] - (pc["accuracy"] - fp32)) < 1e-6 and pc["accuracy"] > fp32 - 5
    pair = rows[("tilted", "differential per-channel min-max")]
    assert pair["accuracy"] > fp32 - 5
    report = (out / "report.md").read_text()
    for a in acc:                                   # every measured row is in the report's table
        if a["config"] != "FP32":
            assert f"| {a['config']} |" in report and f"{a['accuracy']:.2f}" in report
    for d in dev:
        assert (out / "levels" / f"{d}.json").is_file() and (out / "runs" / f"{d}_staircase.h5").is_file()
