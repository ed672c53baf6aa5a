"""labspin import: third-party CSV/TSV/PyMeasure files into run files, quantity and unit kept."""
from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from labspin.analysis import analyze_run
from labspin.cli import main
from labspin.errors import UserError
from labspin.importer import import_files, parse_column, read_table
from labspin.levels import load_levels
from labspin.store import read_run


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


QUIRKY = ('\ufeff"Current\n(mA)";"Hall R [Ohm]";"Pulse width (ms)";"Hx (Oe)";"Sample"\r\n'
          '0;1.80;10;100;"D7; lab B"\r\n'
          '0.09999999999999999;1.80\r\n'
          '2;1.99\r\n'
          '3;2.0\r\n'
          '0;2.0;10;;\r\n'
          '-2;1.81\r\n'
          '-3;1.8\r\n'
          '0;1.8\r\n')


def test_quirky_csv_becomes_a_loop_run(tmp_path, capsys):
    src = tmp_path / "lab.csv"
    src.write_bytes(QUIRKY.encode("utf-8"))
    code, out, err = run_cli(["import", str(src), "-o", str(tmp_path / "lab.h5")], capsys)
    assert code == 0, err
    assert "kind: loop (inferred" in out and "hall_resistance [ohm]" in out
    run = read_run(tmp_path / "lab.h5")
    d = run.data
    assert run.status == "completed" and run.protocol["kind"] == "loop"
    assert d["pulse_current"].iloc[1] == 0.09999999999999999 * 1e-3      # exact, then mA -> A
    assert d["pulse_current"].tolist()[2:4] == [2e-3, 3e-3]
    assert d["hall_resistance"].tolist()[:4] == [1.80, 1.80, 1.99, 2.0]
    assert np.all(d["pulse_width"] == 0.01)             # constant given on two rows only
    consts = run.protocol["parameters"]["constants"]
    assert consts["Hx (Oe)"] == {"value": 100, "unit": "Oe"}
    assert run.sample["id"] == "D7; lab B"
    assert (run.quantity, run.unit) == ("hall_resistance", "ohm")
    a = analyze_run(run)
    assert a.loop["ic_plus"]["mean"] == pytest.approx(1e-3 * (0.09999999999999999 + (1.9 - 1.8) / 0.19 * 1.9000000000000001), rel=1e-6)


def test_columns_by_name_and_index_with_units(tmp_path):
    src = tmp_path / "x.tsv"
    src.write_text("I\tV\tR\n1\t0\t500\n-1\t0\t400\n2\t0\t510\n-2\t0\t390\n3\t0\t520\n-3\t0\t380\n")
    import_files([str(src)], str(tmp_path / "x.h5"),
                 columns=[parse_column('pulse_current="I":mA'), parse_column("hall_resistance=2:mohm")],
                 constants={"pulse_width": "100us"})
    d = read_run(tmp_path / "x.h5").data
    assert d["pulse_current"].tolist()[:2] == [1e-3, -1e-3]
    assert d["hall_resistance"].tolist()[:2] == [0.5, 0.4]
    assert np.allclose(d["pulse_width"], 1e-4)
    # headerless: by index only
    raw = tmp_path / "raw.csv"
    raw.write_text("1,0.5\n-1,0.4\n2,0.6\n-2,0.3\n3,0.7\n-3,0.2\n")
    t = read_table(str(raw))
    assert t.headers == ["0", "1"] and len(t.frame) == 6
    import_files([str(raw)], str(tmp_path / "raw.h5"), kind="loop",
                 columns=[parse_column("pulse_current=0:A"), parse_column("hall_resistance=1:ohm")])
    assert read_run(tmp_path / "raw.h5").data["hall_resistance"].iloc[-1] == 0.2


def test_conductance_potdep_keeps_quantity_through_levels(tmp_path, capsys):
    """Unequal LTP/LTD ramps in µS, no currents: conductance stays conductance."""
    rows = ["Pulse #,Conductance (uS)"]
    k = 0
    rng = np.random.default_rng(0)
    for cycle in range(4):
        for p in range(12):                                 # LTP: 12 pulses
            rows.append(f"{k},{10 + 30 * (1 - math.exp(-(p + 1) / 5)) + rng.normal(0, 0.05):.4f}")
            k += 1
        for p in range(9):                                  # LTD: 9 pulses
            rows.append(f"{k},{10 + 30 * math.exp(-(p + 1) / 3) + rng.normal(0, 0.05):.4f}")
            k += 1
    src = tmp_path / "g.csv"
    src.write_text("\n".join(rows) + "\n")
    out_h5 = tmp_path / "g.h5"
    code, out, err = run_cli(["import", str(src), "-o", str(out_h5), "--kind", "potdep",
                              "--column", "conductance=Conductance:uS"], capsys)
    assert code == 0, err
    run = read_run(out_h5)
    assert (run.quantity, run.unit) == ("conductance", "uS")
    with h5py.File(out_h5) as f:
        assert f["entry/data/hall_resistance"].attrs["quantity"] == "conductance"
        assert f["entry/data/pulse_current"].attrs["units"] == "1"      # polarity only
    a = analyze_run(out_h5)
    assert a.kind == "potdep" and len(a.states) == 21
    assert a.potdep["ltp"]["pulses"] == 12 and a.potdep["ltd"]["pulses"] == 9
    code, out, err = run_cli(["levels", str(out_h5), "-o", str(tmp_path / "g.json")], capsys)
    assert code == 0, err and "conductance in uS" in out
    table = load_levels(tmp_path / "g.json")
    assert (table.quantity, table.unit) == ("conductance", "uS")
    code, out, err = run_cli(["analyze", str(out_h5), "-o", str(tmp_path / "rep")], capsys)
    assert code == 0, err
    assert "window" in out and "uS" in out and "ohm" not in out


def test_pymeasure_results_parameters_are_metadata(tmp_path):
    from pymeasure.experiment import FloatParameter, Parameter, Procedure, Results

    class PulseSweep(Procedure):
        pulse_width = FloatParameter("Pulse width", units="s", default=1e-3)
        field = FloatParameter("Field", units="Oe", default=100)
        sample = Parameter("Sample", default="D9")
        DATA_COLUMNS = ["Current (A)", "Hall resistance (ohm)"]

    proc = PulseSweep()
    proc.pulse_width = 2e-3
    path = tmp_path / "pm.csv"
    results = Results(proc, str(path))
    with open(path, "a") as fh:
        for i, x in [(0, 1.0), (1e-3, 1.1), (2e-3, 1.2), (3e-3, 1.3), (0, 1.3), (-1e-3, 1.2),
                     (-2e-3, 1.0), (-3e-3, 0.9)]:
            fh.write(results.format({"Current (A)": i, "Hall resistance (ohm)": x}) + "\n")
    import_files([str(path)], str(tmp_path / "pm.h5"))
    run = read_run(tmp_path / "pm.h5")
    consts = run.protocol["parameters"]["constants"]
    assert consts["Field"]["value"] == "100 Oe" and consts["Pulse width"]["value"] == "0.002 s"
    assert np.all(run.data["pulse_width"] == 2e-3)
    assert run.sample["id"] == "D9" and run.protocol["kind"] == "loop"
    assert run.station["pymeasure_procedures"][0].endswith("<locals>.PulseSweep")


def test_several_files_as_cycles_or_one_each(tmp_path):
    files = []
    for w in (1, 10):
        p = tmp_path / f"w{w}.csv"
        p.write_text(f"I (mA),R_H (ohm),width (ms)\n0,1,{w}\n1,1.1,{w}\n2,1.2,{w}\n0,1.2,{w}\n"
                     f"-1,1.1,{w}\n-2,1,{w}\n0,1,{w}\n")
        files.append(str(p))
    import_files(files, str(tmp_path / "both.h5"))
    d = read_run(tmp_path / "both.h5").data
    assert d["cycle"].tolist() == [0] * 7 + [1] * 7
    assert d.groupby("cycle")["pulse_width"].first().tolist() == [1e-3, 1e-2]
    out = tmp_path / "each"
    out.mkdir()
    res = import_files(files, str(out), each=True)
    assert [read_run(p).data["pulse_width"].iloc[0] for p in res.outputs] == [1e-3, 1e-2]


def test_mapping_file(tmp_path):
    (tmp_path / "map.toml").write_text(
        'kind = "loop"\n[columns]\npulse_current = { column = "Amps", unit = "uA" }\n'
        'hall_resistance = "Rxy:ohm"\n[constants]\npulse_width = "5 ms"\n[sample]\nid = "chip-4"\n')
    src = tmp_path / "d.csv"
    src.write_text("Amps,Rxy\n0,1\n500,2\n-500,1\n")
    from click.testing import CliRunner
    from labspin.cli import cli
    r = CliRunner().invoke(cli, ["import", str(src), "--mapping", str(tmp_path / "map.toml"),
                                 "-o", str(tmp_path / "d.h5")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "kind: loop (given by" in r.output
    run = read_run(tmp_path / "d.h5")
    assert run.data["pulse_current"].tolist() == [0, 5e-4, -5e-4]
    assert run.sample["id"] == "chip-4" and run.data["pulse_width"].iloc[0] == 5e-3
    assert 'unit = "uA"' in run.recipe


@pytest.mark.parametrize("text, args, where", [
    ("I (mA),R (ohm)\n1,2\n2,abc\n", [], "line 3, column 'R (ohm)': 'abc' is not a number"),
    ('I (mA),"R\n(ohm)"\n1,2\n2,3\n3,4,5\n', [], "line 5: 3 fields"),
    ("I (mA),R (ohm)\n1,2\n,3\n", [], "line 3, column 'I (mA)': empty cell"),
    ("I (mA),R (ohm)\n1,2\n", ["--column", "hall_resistance=Rxx:ohm"], "no column 'Rxx'"),
    ("I (mA),R (ohm)\n1,2\n", ["--column", "pulse_current=0:ohm"], "not a unit of A"),
    ("I (mA),R (ohm)\n1,2\n", ["--column", "pulse_current=0:blorps"], "unknown unit"),
    ("x,y\n1,2\n", [], "cannot tell which column is the signal"),
])
def test_bad_files_one_line_exit_2_nothing_written(tmp_path, capsys, text, args, where):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    out = tmp_path / "bad.h5"
    code, _, err = run_cli(["import", str(src), "-o", str(out), *args], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and where in err and "Traceback" not in err
    assert str(src) in err or "--column" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_existing_output_is_kept(tmp_path, capsys):
    src = tmp_path / "a.csv"
    src.write_text("I (A),R_H (ohm)\n1,2\n-1,1\n")
    out = tmp_path / "a.h5"
    out.write_text("precious")
    code, _, err = run_cli(["import", str(src), "-o", str(out), "--kind", "loop"], capsys)
    assert code == 2 and "exists" in err and out.read_text() == "precious"


def test_old_run_files_read_as_hall_resistance(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("I (A),R_H (ohm)\n1,2\n-1,1\n")
    import_files([str(src)], str(tmp_path / "a.h5"), kind="loop")
    with h5py.File(tmp_path / "a.h5", "a") as f:            # as written before @quantity existed
        del f["entry/data/hall_resistance"].attrs["quantity"]
    run = read_run(tmp_path / "a.h5")
    assert (run.quantity, run.unit) == ("hall_resistance", "ohm")


def test_neurosim_csv_in_any_order_is_sorted_and_said(tmp_path):
    p = tmp_path / "mem_states.csv"
    p.write_text("states,mean,std\n2,30.0,0.3\n0,10.0,0.1\n1,20.0,0.2\n")
    t = load_levels(p)
    assert t.mean.tolist() == [10.0, 20.0, 30.0] and t.std.tolist() == [0.1, 0.2, 0.3]
    assert "sorted" in t.extra["notes"][0] and t.unit != "ohm"
    from labspin.quant.levels_map import levels_from_table
    lv = levels_from_table(t, str(p))
    assert lv.meta["notes"] and lv.meta["quantity"] == "unspecified"


def test_kind_inference_is_said():
    from labspin.importer import infer_kind
    assert infer_kind(np.r_[np.linspace(0, 5, 6), np.linspace(5, -5, 11)], False)[0] == "loop"
    assert infer_kind(np.r_[[-5.0], np.linspace(1, 4, 8)], False)[0] == "staircase"
    assert infer_kind(np.r_[np.full(10, 2.0), np.full(8, -2.0)], False)[0] == "potdep"
    assert infer_kind(None, True)[0] == "levels"


def test_levels_kind_reads_per_state(tmp_path, capsys):
    """Repeated reads of programmed states (a state column, no currents): kind levels."""
    rng = np.random.default_rng(3)
    rows = ["state,I_read (A)"]
    for rep in range(6):
        for s in (2, 0, 1):
            rows.append(f"{s},{1e-6 * (1 + s) + rng.normal(0, 1e-9)!r}")
    src = tmp_path / "lv.csv"
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "lv.h5"
    code, text, err = run_cli(["import", str(src), "-o", str(out), "--column", "step=state",
                               "--column", "current=I_read:A", "--read-voltage", "0.1V"], capsys)
    assert code == 0, err
    assert "kind: levels (inferred: a state column and no pulse currents)" in text
    run = read_run(out)
    assert (run.quantity, run.unit) == ("current", "A")
    assert run.protocol["parameters"]["read_voltage"] == pytest.approx(0.1)
    a = analyze_run(out)
    assert len(a.states) == 3 and a.states["n"].tolist() == [6, 6, 6]
    assert a.level_table().unit == "A"
    code, text, _ = run_cli(["info", str(out)], capsys)
    assert "current range" in text and "ohm" not in text


def test_staircase_cycles_start_at_each_reset(tmp_path):
    ladder = [-8.0, 3.0, 3.5, 4.0, 4.5]
    rows = ["I (mA),R_H (ohm)"]
    for c in range(5):
        rows += [f"{i},{1.8 + 0.04 * k + 0.001 * c}" for k, i in enumerate(ladder)]
    src = tmp_path / "s.csv"
    src.write_text("\n".join(rows) + "\n")
    res = import_files([str(src)], str(tmp_path / "s.h5"), constants={"pulse_width": "1ms"})
    assert res.kind == "staircase" and "single reset amplitude" in res.kind_note
    d = read_run(tmp_path / "s.h5").data
    assert d["cycle"].tolist() == [c for c in range(5) for _ in ladder]
    assert d["step"].tolist() == list(range(5)) * 5
    a = analyze_run(tmp_path / "s.h5")
    assert len(a.states) == 5 and a.ctc is not None
