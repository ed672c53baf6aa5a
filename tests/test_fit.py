"""labspin fit: the device model recovers known parameters from simulated loops; device files
feed --sim FILE[:SEED] and `sim loop --device FILE`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lab_csv
from labspin.analysis import analyze_run
from labspin.cli import main
from labspin.device_file import AGREED, load_device, params_from_table, resolve_device
from labspin.errors import UserError
from labspin import fit


def synthetic(truth: dict, widths, cycles: int = 3, seed: int = 1):
    """Loops of a simulated Hall bar (the simulator's HallBar, not the fit's model) as a run."""
    saved = dict(lab_csv.TRUTH)
    lab_csv.TRUTH.update(truth)
    try:
        frames = []
        n = lab_csv.sweep().size
        for k, w in enumerate(widths):
            cur, r = lab_csv.loops(w, cycles, seed + k)
            frames.append(pd.DataFrame({
                "pulse_index": 0, "cycle": np.repeat(np.arange(cycles), n) + k * cycles,
                "step": np.tile(np.arange(n), cycles), "pulse_current": cur * 1e-3, "pulse_width": w,
                "read_current": np.nan, "hall_voltage": np.nan, "hall_resistance": r, "time": np.nan}))
        i_c0 = lab_csv.i_c0()
    finally:
        lab_csv.TRUTH.clear()
        lab_csv.TRUTH.update(saved)
    d = pd.concat(frames, ignore_index=True)
    d["pulse_index"] = np.arange(len(d))
    d.attrs.update(path="synthetic", protocol={"kind": "loop", "name": "loop"},
                   sample={"id": "syn", "width": 10e-6, "thickness": 6e-9})
    return analyze_run(d), i_c0


@pytest.mark.parametrize("truth", [
    {"delta": 30.0, "sigma_g": 0.12, "J_c0": 1.3e11},
    {"delta": 55.0, "sigma_g": 0.2, "J_c0": 1.0e11, "R0": -0.3, "R_AHE": 0.5},
])
def test_fit_recovers_delta_and_ic0(truth):
    a, i_c0 = synthetic(truth, (1e-4, 1e-3, 1e-2))
    res = fit.fit_loops([a])
    v = res.values
    assert v["delta"] == pytest.approx(truth["delta"], rel=0.10)
    assert v["I_c0"] == pytest.approx(i_c0, rel=0.05)
    assert v["sigma_g"] == pytest.approx(truth["sigma_g"], rel=0.25)
    assert v["R_AHE"] == pytest.approx(truth.get("R_AHE", lab_csv.TRUTH["R_AHE"]), rel=0.05)
    assert res.errors["delta"] > 0 and res.errors["I_c0"] > 0
    assert v["read_noise"] == pytest.approx(lab_csv.READ_NOISE, rel=0.3)
    assert "tau0" in res.fixed and "delta" not in res.fixed


def test_one_width_fixes_delta_and_says_so():
    a, _ = synthetic({"delta": 30.0}, (1e-3,), cycles=2)
    res = fit.fit_loops([a])
    assert "delta" in res.fixed and any("one pulse width" in n for n in res.notes)
    res = fit.fit_loops([a], delta=30.0)
    assert res.values["delta"] == 30.0


def test_fit_cli_writes_a_device_file_the_simulator_runs(tmp_path, capsys):
    from labspin.importer import import_files
    for w in lab_csv.WIDTHS:
        lab_csv.write_quirky(tmp_path / f"loop_{w * 1e3:g}ms.csv", w, cycles=2)
    import_files(sorted(str(p) for p in tmp_path.glob("loop_*.csv")), str(tmp_path / "lab.h5"),
                 sample={"width": 10e-6, "thickness": 6e-9})
    out = tmp_path / "dev.toml"
    with pytest.raises(SystemExit) as e:
        main(["fit", str(tmp_path / "lab.h5"), "-o", str(out), "--plot", str(tmp_path / "fit.png")])
    text = capsys.readouterr().out
    assert e.value.code == 0
    assert "delta" in text and "±" in text and "measured vs refit-simulated" in text
    assert (tmp_path / "fit.png").stat().st_size > 10_000
    params, notes = load_device(out)
    field = "delta" if hasattr(params, "delta") else "delta0"
    assert getattr(params, field) == pytest.approx(30.0, rel=0.1)
    assert params.J_c0 == pytest.approx(1.3e11, rel=0.05)
    assert params.thermal_resistance == 0.0
    doc = out.read_text()
    assert 'format = "labspin-device/1"' in doc and "[fit.uncertainty]" in doc
    for name in AGREED:
        assert f"\n{name} = " in doc
    # the station's sim spec takes the file, with a seed
    from labspin.station import sim_station_spec
    spec = sim_station_spec(f"{out}:3")
    assert spec.sim == (str(out), 3) and spec.sample["params"]["J_c0"] == params.J_c0
    # refusing to overwrite: one line, exit 2, file kept
    with pytest.raises(SystemExit) as e:
        main(["fit", str(tmp_path / "lab.h5"), "-o", str(out)])
    assert e.value.code == 2 and "exists" in capsys.readouterr().err
    assert out.read_text() == doc


def test_device_file_names_and_aliases(tmp_path):
    p, notes = params_from_table({"delta": 33.0, "J_c0": 1e11, "read_noise": 1e-3}, "x")
    assert getattr(p, "delta", getattr(p, "delta0", None)) == 33.0
    known = {f for f in type(p).__dataclass_fields__}
    assert ("read_noise" in known) or any("read_noise" in n and "ignored" in n for n in notes)
    with pytest.raises(UserError, match="x: device.bogus: unknown parameter"):
        params_from_table({"bogus": 1.0}, "x")
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "labspin-device/1"\n[device]\nJ_c0 = -1.0\n')
    with pytest.raises(UserError, match="bad.toml"):
        load_device(bad)
    bad.write_text('format = "other"\n[device]\n')
    with pytest.raises(UserError, match="format"):
        resolve_device(str(bad))
    assert resolve_device("tilted").name == "tilted"


def test_sim_loop_takes_a_device_file(tmp_path, capsys):
    dev = tmp_path / "d.toml"
    dev.write_text('format = "labspin-device/1"\n[device]\ndelta = 30.0\nJ_c0 = 1.3e11\n'
                   'sigma_g = 0.12\nR_AHE = 0.095\nR0 = 1.9\nthermal_resistance = 0.0\n'
                   'width = 1e-5\nthickness = 6e-9\n')
    with pytest.raises(SystemExit) as e:
        main(["sim", "loop", "--device", str(dev), "--width", "1e-3", "--max-current", "8e-3",
              "--steps", "41"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    ic = float(out.split("switching current (up branch):")[1].split("mA")[0])
    # I_c(1 ms) = I_c0 (1 - ln(t/τ0)/Δ) = 7.8 mA · (1 - 13.8/30) ≈ 4.2 mA (median-switching ≈ 3.8)
    assert 3.3 < ic < 4.6


def synthetic_staircase(truth: dict, width: float = 1e-3, cycles: int = 30, seed: int = 5):
    """Reset, then a ladder of rising pulses, a read after each: a staircase run of the device."""
    from labspin.sim_backend.physics import HallBar

    saved = dict(lab_csv.TRUTH)
    lab_csv.TRUTH.update(truth)
    try:
        bar = HallBar(lab_csv.truth_params(), seed=seed)
    finally:
        lab_csv.TRUTH.clear()
        lab_csv.TRUTH.update(saved)
    rng = np.random.default_rng(seed)
    ladder = np.r_[-8e-3, np.linspace(3.0e-3, 5.0e-3, 9)]
    cur = np.tile(ladder, cycles)
    r = np.empty(cur.size)
    for k, i in enumerate(cur):
        bar.pulse(float(i), width)
        r[k] = bar.hall_resistance + rng.normal(0, lab_csv.READ_NOISE)
    n = ladder.size
    d = pd.DataFrame({"pulse_index": np.arange(cur.size), "cycle": np.repeat(np.arange(cycles), n),
                      "step": np.tile(np.arange(n), cycles), "pulse_current": cur,
                      "pulse_width": width, "read_current": 0.0, "hall_voltage": 0.0,
                      "hall_resistance": r, "time": 0.0})
    d.attrs.update(path="stair", protocol={"kind": "staircase", "name": "staircase"},
                   sample={"id": "syn", "width": 10e-6, "thickness": 6e-9})
    return analyze_run(d)


def test_staircase_ctc_origin_calibrates_n_eff():
    truth = {"delta": 30.0, "sigma_J": 0.0, "n_units": 3000, "cluster_size": 10}
    loop, _ = synthetic(truth, (1e-4, 1e-3, 1e-2), cycles=2)
    stair = synthetic_staircase(truth)
    res = fit.fit_loops([loop, stair])
    dev, _, _ = fit.device_table(res)
    params, _ = params_from_table(dict(dev), "fit")
    c = fit.fit_ctc([loop, stair], res, params)
    assert c["ctc"] == pytest.approx(stair.ctc)
    assert c["read_noise_ctc"] < c["device_ctc"] and c["origin"].startswith("device")
    assert c["n_units"] == pytest.approx(truth["n_units"], rel=0.4)
    assert c["device_ctc_sim"] == pytest.approx(c["device_ctc"], rel=0.25)
