"""labspin analyze across runs: I_c± vs pulse width with the thermal-activation fit, and a
device-to-device table."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from labspin.analysis import across_runs, analyze_run, thermal_activation_fit
from labspin.cli import main
from labspin.importer import import_files


def test_thermal_activation_fit_exact():
    tau0, delta, i0 = 1e-9, 40.0, 5e-3
    w = np.array([1e-4, 1e-3, 1e-2, 1e-1])
    ic = i0 * (1 - np.log(w / tau0) / delta)
    f = thermal_activation_fit(w, ic, tau0)
    assert f["delta"] == pytest.approx(delta) and f["I_c0"] == pytest.approx(i0)
    assert f["delta_err"] == pytest.approx(0, abs=1e-6)
    f = thermal_activation_fit(w, -ic * (1 + 0.01 * np.array([1, -1, 1, -1])), tau0)   # |I_c−|
    assert f["delta"] == pytest.approx(delta, rel=0.1) and f["delta_err"] > 0
    assert thermal_activation_fit([1e-3, 1e-3], [1e-3, 1e-3])["delta"] is None


def loop_frame(ic: float, width: float, shift: float, device: str, cycles: int = 3,
               seed: int = 0) -> pd.DataFrame:
    """Tanh loops switching at ±ic + shift, as a run DataFrame."""
    rng = np.random.default_rng(seed)
    up = np.linspace(0, 2 * ic, 41)
    sweep = np.r_[up, up[::-1][1:], -up[1:], -up[::-1][1:]]
    cur = np.tile(sweep, cycles)
    n = sweep.size
    state = np.empty(cur.size)
    m = -1.0
    for k, i in enumerate(cur):                       # hysteresis: switch past the threshold
        if i - shift >= ic:
            m = 1.0
        elif i - shift <= -ic:
            m = -1.0
        state[k] = m
    r = 1.0 + 0.1 * state + rng.normal(0, 1e-4, cur.size)
    d = pd.DataFrame({"pulse_index": np.arange(cur.size), "cycle": np.repeat(np.arange(cycles), n),
                      "step": np.tile(np.arange(n), cycles), "pulse_current": cur,
                      "pulse_width": width, "read_current": 0.0, "hall_voltage": 0.0,
                      "hall_resistance": r, "time": 0.0})
    d.attrs.update(path=f"{device}-{width:g}", protocol={"kind": "loop", "name": "loop"},
                   sample={"id": device})
    return d


def test_across_runs_widths_and_devices():
    tau0, delta, i0 = 1e-9, 30.0, 8e-3
    runs = []
    for dev, scale in (("A", 1.0), ("B", 1.1)):
        for w in (1e-4, 1e-3, 1e-2):
            runs.append(analyze_run(loop_frame(scale * i0 * (1 - math.log(w / tau0) / delta), w,
                                               2e-4, dev)))
    res = across_runs(runs, tau0=tau0)
    t = res["widths"]
    assert len(t) == 6 and set(t["device"]) == {"A", "B"}
    assert np.allclose(t["shift"], 2e-4, atol=1.5e-4)
    for dev, scale in (("A", 1.0), ("B", 1.1)):
        f = res["thermal_activation"][dev]["half"]
        assert f["delta"] == pytest.approx(delta, rel=0.1)
        assert f["I_c0"] == pytest.approx(scale * i0, rel=0.05)
    assert res["devices"] is not None and {"A", "B"} <= set(res["devices"].index)


def test_analyze_cli_glob_widths(tmp_path, capsys):
    tau0, delta, i0 = 1e-9, 30.0, 8e-3
    for w in (1e-4, 1e-3, 1e-2):
        d = loop_frame(i0 * (1 - math.log(w / tau0) / delta), w, 0.0, "D1")
        csv = tmp_path / f"w{w:g}.csv"
        d[["pulse_current", "hall_resistance"]].rename(
            columns={"pulse_current": "I (A)", "hall_resistance": "R_H (ohm)"}).to_csv(csv, index=False)
        import_files([str(csv)], str(tmp_path / f"w{w:g}.h5"), constants={"pulse_width": f"{w} s"},
                     sample={"id": "D1"})
    with pytest.raises(SystemExit) as e:
        main(["analyze", str(tmp_path / "w*.h5"), "-o", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "thermal activation from (Ic+ - Ic-)/2: Δ = " in out
    fit = json.loads((tmp_path / "rep" / "thermal_activation.json").read_text())
    assert fit["D1"]["half"]["delta"] == pytest.approx(delta, rel=0.1)
    assert (tmp_path / "rep" / "ic_vs_width.png").exists()
    assert "Switching current vs pulse width" in (tmp_path / "rep" / "report.md").read_text()
    with pytest.raises(SystemExit) as e:
        main(["analyze", str(tmp_path / "nothing*.h5"), "-o", str(tmp_path / "rep2")])
    assert e.value.code == 2 and "no run file matches" in capsys.readouterr().err


def test_analyze_cli_device_table(tmp_path, capsys):
    for dev in ("D1", "D2"):
        for k in range(2):
            d = loop_frame(5e-3 * (1.1 if dev == "D2" else 1.0), 1e-3, 0.0, dev, seed=k)
            csv = tmp_path / f"{dev}_{k}.csv"
            d[["pulse_current", "hall_resistance"]].to_csv(csv, index=False, header=["I (A)", "R_H (ohm)"])
            import_files([str(csv)], str(tmp_path / f"{dev}_{k}.h5"),
                         constants={"pulse_width": "1ms"}, sample={"id": dev})
    with pytest.raises(SystemExit) as e:
        main(["analyze", *[str(p) for p in sorted(tmp_path.glob("*.h5"))], "-o", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "device-to-device:" in out
    lines = {l.split()[0]: l for l in out.splitlines() if l.startswith(("D1 ", "D2 "))}
    assert float(lines["D2"].split()[-2]) == pytest.approx(1.1 * float(lines["D1"].split()[-2]), rel=0.03)
