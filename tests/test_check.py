"""Pre-flight checks: each model's check on the wire (expected_protocol), and `labspin check` /
`labspin run` on simulated stations: one line per instrument, exit 0 or 2, nothing sourced."""
from __future__ import annotations

from pathlib import Path

import pytest
from pymeasure.instruments.keithley import Keithley2400, Keithley2450
from pymeasure.instruments.srs import SR830, SR860
from pymeasure.test import expected_protocol

from labspin.cli import main
from labspin.drivers import checks
from labspin.drivers.keithley6221 import Keithley6221
from labspin.drivers.roles import Limits

STATIONS = Path(__file__).resolve().parents[1] / "docs" / "stations"
NO_ERROR = b'0,"No error"'


def run_check(fn, cls, pairs, **ctx):
    context = checks.CheckContext(name="x", driver="d", address="GPIB0::1::INSTR",
                                  limits=ctx.pop("limits", Limits()), **ctx)
    report = checks.CheckReport("x", "d", "GPIB0::1::INSTR")
    with expected_protocol(cls, pairs) as inst:
        fn(inst, context, report)
    return report


def test_2450_in_tsp_mode_is_refused_with_the_fix():
    r = run_check(checks.check_2450, Keithley2450, [(b"*LANG?", b"TSP")])
    assert not r.ok and "*LANG SCPI" in r.line() and "power-cycle" in r.line()
    assert "\n" not in r.line()


def test_2450_ready():
    r = run_check(checks.check_2450, Keithley2450,
                  [(b"*LANG?", b"SCPI"), (b"OUTP?", b"0"), (b":SENS:VOLT:RSEN?", b"1"),
                   (b":SOUR:CURR:VLIM?", b"2.000000E+01"), (b"SYST:ERR?", NO_ERROR)],
                  roles=("hall_reader",), mode="sourcemeter")
    assert r.ok and "4-wire sense" in r.facts and "output off" in r.facts
    assert any(f.startswith("compliance 20 V") for f in r.facts)


def test_2400_output_on_and_2_wire_sense():
    r = run_check(checks.check_2400, Keithley2400,           # pymeasure's __init__ sets the format
                  [(b":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None),
                   (b"OUTP?", b"1"), (b":SYST:RSEN?", b"0"), (b":SENS:VOLT:PROT?", b"2.1E+01"),
                   (b"SYST:ERR?", NO_ERROR)], roles=("hall_reader",), mode="sourcemeter")
    assert not r.ok and r.problems == [r.problems[0]] and "output is ON" in r.problems[0]
    assert "2-wire sense now (the Hall read turns 4-wire on)" in r.facts


def test_6221_without_its_2182a_and_with_errors_queued():
    r = run_check(checks.check_6221, Keithley6221,
                  [(b"OUTP:STAT?", b"0"), (b"SOUR:CURR:COMP?", b"1.0E+01"),
                   (b"SOUR:DELT:NVPR?", b"0"),
                   (b"SYST:ERR?", b'-222,"Data out of range"'), (b"SYST:ERR?", b'-113,"Undefined header"'),
                   (b"SYST:ERR?", NO_ERROR)], mode="dc_delta")
    assert len(r.problems) == 2
    assert "no 2182A on the 6221's RS-232 link" in r.problems[0] and "Trigger Link" in r.problems[0]
    assert '-222,"Data out of range" | -113,"Undefined header"' in r.problems[1]
    assert r.line().startswith("x (d @ GPIB0::1::INSTR): FAIL: ")


def test_6221_ready():
    r = run_check(checks.check_6221, Keithley6221,
                  [(b"OUTP:STAT?", b"0"), (b"SOUR:CURR:COMP?", b"1.0E+01"),
                   (b"SOUR:DELT:NVPR?", b"1"), (b"SYST:ERR?", NO_ERROR)], mode="pulse_delta")
    assert r.ok and "2182A on the RS-232 link" in r.facts


def test_lockin_sine_above_the_read_limit():
    r = run_check(checks.check_sr830, SR830, [(b"SLVL?", b"2.000"), (b"ERRS?", b"0"), (b"LIAS?", b"0")],
                  limits=Limits(max_read_current=1e-3), mode="lockin",
                  options={"series_resistance": 1e3})
    assert not r.ok and "drives 0.002 A" in r.problems[0]
    r = run_check(checks.check_sr860, SR860, [(b"SLVL?", b"1.0e-01"), (b"*ESR?", b"32")],
                  mode="lockin", options={"series_resistance": 1e4})
    assert r.problems == ["standard event status *ESR? = 32 (a command or execution error); "
                          "clear with *CLS"]


def _sim_2450_answers_lang() -> bool:
    """Whether this simulator answers *LANG? (the SMU work adds it); the 2450 check needs it."""
    import pyvisa

    from labspin.sim_backend import SimBench
    bench = SimBench("tilted", 0, addresses={"keithley2450": "GPIB0::18::INSTR"})
    try:
        res = pyvisa.ResourceManager(bench.visa_library).open_resource("GPIB0::18::INSTR")
        res.timeout = 100
        return res.query("*LANG?").strip() == "SCPI"
    except pyvisa.Error:
        return False
    finally:
        bench.close()


@pytest.mark.parametrize("name", sorted(p.name for p in STATIONS.glob("*.toml")))
def test_check_every_shipped_station(name, capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "--station", str(STATIONS / name)])
    out = capsys.readouterr().out.splitlines()
    text = (STATIONS / name).read_text()
    assert len(out) == text.count("[instruments.")            # one line per instrument
    if "keithley2450" in text and not _sim_2450_answers_lang():
        assert e.value.code == 2 and any("2450" in l and "*LANG?" in l for l in out)
        return
    assert e.value.code == 0, out
    assert all(": OK: " in line for line in out)
    assert all("output off" in line for line in out if "sr8" not in line)   # lock-ins: no switch
    assert all("sine out" in line for line in out if "sr8" in line)
    assert all("2182A on the RS-232 link" in line for line in out if "keithley6221" in line)


def test_failed_check_stops_a_run_before_anything_is_written(tmp_path, capsys):
    station = tmp_path / "s.toml"
    station.write_text((STATIONS / "delta.toml").read_text().replace(
        "line_frequency = 50", 'line_frequency = 50\nfaults = [{ instrument = "k6221", kind = "error" }]'))
    with pytest.raises(SystemExit) as e:
        main(["check", "--station", str(station)])
    assert e.value.code == 2
    assert "FAIL: error queue not empty: -310" in capsys.readouterr().out
    out = tmp_path / "run.h5"
    with pytest.raises(SystemExit) as e:
        main(["run", "staircase", "--station", str(station), "-o", str(out), "--set", "cycles=1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "pre-flight check failed" in err and "-310" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


REAL_LOCKIN_STATION = """
[sample]
id = "D1"
width = 1e-5
thickness = 5e-9
[instruments.k6221]
driver = "keithley6221"
address = "GPIB0::12::INSTR"
[instruments.lockin]
driver = "sr830"
address = "GPIB0::8::INSTR"
[roles]
pulse_source = "k6221"
hall_reader = { mode = "lockin", instrument = "lockin", series_resistance = 10e3 }
"""


def test_check_reports_every_instrument_that_does_not_answer(tmp_path, capsys, monkeypatch):
    """A real-bench station with no VISA library here: each instrument gets its own FAIL line."""
    monkeypatch.setenv("PYVISA_LIBRARY", "@nonexistent")
    station = tmp_path / "s.toml"
    station.write_text(REAL_LOCKIN_STATION)
    with pytest.raises(SystemExit) as e:
        main(["check", "--station", str(station)])
    out = capsys.readouterr().out.splitlines()
    assert e.value.code == 2 and len(out) == 2
    assert out[0].startswith("k6221 (keithley6221 @ GPIB0::12::INSTR): FAIL: address ")
    assert out[1].startswith("lockin (sr830 @ GPIB0::8::INSTR): FAIL: address ")
