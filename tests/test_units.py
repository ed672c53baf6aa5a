"""Units in recipes and station files: "5 mA" means 5e-3 A, a bare number is SI, a wrong dimension
is one line naming the field."""
from __future__ import annotations

import pytest

from labspin.cli import main
from labspin.errors import UserError
from labspin.protocols import load_recipe, parse_recipe
from labspin.station import load_station_spec
from labspin.units import UnitError, to_si

LOOP = """name = "l"
kind = "loop"
[parameters]
max_current = "8 mA"
current_steps = 4
pulse_width = "100 us"
read_current = "-50µA"
"""

STATION = """
[sample]
id = "D1"
width = "10 um"
thickness = "5 nm"
r_xx = "1.5 kohm"
[limits]
max_pulse_current = "15 mA"
min_pulse_width = "50 us"
compliance_voltage = "20 V"
[instruments.k]
driver = "keithley6221"
address = "GPIB0::12::INSTR"
[roles]
pulse_source = "k"
hall_reader = { mode = "dc_delta", instrument = "k" }
"""


@pytest.mark.parametrize("text, si, expected", [
    ("5 mA", "A", 5e-3), ("100 us", "s", 100e-6), ("100 µs", "s", 100e-6), ("100μs", "s", 100e-6),
    ("20 V", "V", 20.0), ("1.5e3 ohm", "ohm", 1500.0), ("2 kΩ", "ohm", 2000.0),
    ("-6.2 mA", "A", -6.2e-3), ("1 ms", "s", 1e-3), ("10 um", "m", 10e-6), (".5 A", "A", 0.5),
])
def test_strings_convert_to_si(text, si, expected):
    assert to_si(text, si) == pytest.approx(expected, rel=1e-12)


def test_bare_numbers_and_unitless_fields_pass_through():
    assert to_si(0.005, "A") == 0.005
    assert to_si("7", "") == "7"        # no unit declared: the caller's type check decides


@pytest.mark.parametrize("text, si, needle", [
    ("5 V", "A", "voltage"), ("5 mA", "s", "current"), ("3 furlong", "A", "length"),
    ("5 blargs", "A", "unknown unit"), ("mA", "A", "number"), ("2**10**10 A", "A", "number"),
    ("5", "A", "number"), ("1e400 A", "A", "finite"),
])
def test_bad_unit_strings_are_refused_with_a_reason(text, si, needle):
    with pytest.raises(UnitError, match=needle):
        to_si(text, si)


def test_recipe_with_units_equals_si_recipe():
    r = parse_recipe(LOOP, "l.toml")
    p = r.protocol
    assert (p.max_current, p.pulse_width, p.read_current) == pytest.approx((8e-3, 100e-6, -50e-6))
    assert r.parameters()["max_current"] == pytest.approx(8e-3)      # the run file stores SI


def test_current_in_volts_names_the_parameter():
    with pytest.raises(UserError, match=r"^l\.toml: parameters\.max_current: expected a current.*voltage"):
        parse_recipe(LOOP.replace('"8 mA"', '"8 V"'), "l.toml")
    with pytest.raises(UserError, match=r"parameters\.amplitudes\[1\]: expected a current"):
        load_recipe("staircase", overrides={"amplitudes": '["5 mA", "6 ms"]'})


def test_set_override_with_units():
    r = load_recipe("loop", overrides={"pulse_width": "200 us"})
    assert r.protocol.pulse_width == pytest.approx(200e-6)
    r = load_recipe("loop", overrides={"pulse_width": '"200 us"'})   # quoted TOML string, same
    assert r.protocol.pulse_width == pytest.approx(200e-6)


def test_station_file_with_units(tmp_path, monkeypatch):
    import pyvisa
    monkeypatch.setattr(pyvisa, "ResourceManager", lambda *a, **k: pytest.fail("VISA touched"))
    path = tmp_path / "st.toml"
    path.write_text(STATION)
    spec = load_station_spec(path)
    assert spec.sample["width"] == pytest.approx(10e-6)
    assert spec.sample["thickness"] == pytest.approx(5e-9)
    assert spec.sample["r_xx"] == pytest.approx(1500.0)
    assert spec.limits.max_pulse_current == pytest.approx(15e-3)
    assert spec.limits.min_pulse_width == pytest.approx(50e-6)
    assert spec.limits.compliance_voltage == pytest.approx(20.0)
    path.write_text(STATION.replace('"15 mA"', '"15 V"'))
    with pytest.raises(UserError, match=r"st\.toml: limits\.max_pulse_current: expected a current"):
        load_station_spec(path)


def test_cli_set_with_units_and_wrong_dimension(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dry-run", "loop", "--sim", "tilted", "--set", "pulse_width=200 us"])
    assert exc.value.code == 0
    assert "200 µs" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["dry-run", "loop", "--sim", "tilted", "--set", "max_current=5 V"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert "parameters.max_current" in err[0] and "voltage" in err[0]
