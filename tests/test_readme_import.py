"""The README's "Data from another lab" section, run as shown on CSV files in the quirky format
it describes (made here from a simulated Hall bar of known parameters): import → analyze → fit →
--sim fitted.toml gives a simulated loop that overlays the measured one."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import lab_csv

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Data from another lab"


def section_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(HEADING)
    end = text.find("\n## ", start + len(HEADING))
    body = text[start:end if end > 0 else None]
    blocks = re.findall(r"^```sh\n(.*?)^```", body, re.M | re.S)
    return [line for b in blocks for line in b.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.timeout(600)
def test_import_analyze_fit_sim_tour(tmp_path):
    from labspin.analysis import analyze_run, across_runs
    from labspin.device_file import load_device

    for w in lab_csv.WIDTHS:
        lab_csv.write_quirky(tmp_path / f"loop_{w * 1e3:g}ms.csv", w)
    lines = section_commands()
    assert [l.split()[1] for l in lines] == ["import", "analyze", "fit", "sim", "run"]
    env = dict(os.environ, MPLBACKEND="Agg")
    outs = {}
    for line in lines:
        argv = shlex.split(line)
        assert argv[0] == "labspin"
        r = subprocess.run([sys.executable, "-m", "labspin", *argv[1:]], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{line}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        outs[argv[1]] = r.stdout
    assert "kind: loop (inferred" in outs["import"]
    assert "thermal activation" in outs["analyze"]
    assert "measured vs refit-simulated" in outs["fit"]
    # the fit found the device behind the files
    params, _ = load_device(tmp_path / "fitted.toml")
    delta = getattr(params, "delta", None) or getattr(params, "delta0")
    assert delta == pytest.approx(lab_csv.TRUTH["delta"], rel=0.1)
    assert params.J_c0 == pytest.approx(lab_csv.TRUTH["J_c0"], rel=0.05)
    assert (tmp_path / "fit.png").stat().st_size > 10_000 and (tmp_path / "twin.png").exists()
    # the twin's loop at 1 ms overlays the lab's: same switching currents and window
    lab = across_runs([analyze_run(tmp_path / "lab.h5")])["widths"].set_index("pulse_width")
    twin = analyze_run(tmp_path / "twin.h5")
    measured = lab.loc[1e-3]
    assert twin.loop["ic_plus"]["mean"] == pytest.approx(measured["ic_plus"], rel=0.06)
    assert twin.loop["ic_minus"]["mean"] == pytest.approx(measured["ic_minus"], rel=0.06)
    assert twin.window["window"] == pytest.approx(2 * lab_csv.TRUTH["R_AHE"], rel=0.1)
