"""Issue #12, SourceMeter and lock-in parts: the simulated instruments are as strict as the real
ones (each "old" test drives them the way the old drivers did and shows the wrong result), and
the roles get it right against them."""
from __future__ import annotations

import math

import numpy as np
import pytest
from fakes import Collect, FixedHallBar
import pyvisa
from pymeasure.instruments.keithley import Keithley2450

from labspin.drivers import open_instrument
from labspin.drivers.hall import LockinHallReader, SourceMeterHallReader
from labspin.drivers.pulse import SourceMeterPulseSource
from labspin.drivers.roles import ComplianceError, LimitError, Limits
from labspin.errors import UserError
from labspin.protocols import load_recipe
from labspin.runner import Runner
from labspin.sim_backend.bench import SimBench
from labspin.station import Station

SMUS = ["keithley2400", "keithley2450"]


@pytest.fixture
def bench():
    b = SimBench(FixedHallBar(r_h=0.8, r_xx=800.0), seed=1)
    yield b
    b.close()


def _session(bench, name):
    return pyvisa.ResourceManager(bench.visa_library).open_resource(bench.addresses[name])


def _open(bench, name):
    return open_instrument(name, bench.addresses[name], visa_library=bench.visa_library)


def _old_smu_read(s, name, current=1e-4):
    """The old SourceMeterHallReader: source ±I, :READ?, no remote sense."""
    s.write(":SOUR:FUNC CURR")
    s.write(":SENS:VOLT:PROT 10" if name == "keithley2400" else ":SOUR:CURR:VLIM 10")
    vals = []
    for i in (current, -current):
        s.write(f":SOUR:CURR {i}")
        s.write("OUTP ON")
        vals.append(float(s.query(":READ?").split(",")[0]))
    s.write("OUTP OFF")
    return (vals[0] - vals[1]) / 2 / current


# ----- 1. Hall reads need 4-wire sense ---------------------------------------------------------
@pytest.mark.parametrize("name", SMUS)
def test_old_smu_read_measures_the_channel_not_the_hall_voltage(bench, name):
    smu = bench.instrument(bench.addresses[name])
    smu.lead_resistance = 35.0
    r = _old_smu_read(_session(bench, name), name)
    assert r == pytest.approx(800.0 + 35.0, rel=1e-3)         # I·(R_xx + leads)/I, not R_H = 0.8


@pytest.mark.parametrize("name", SMUS)
def test_smu_hall_reader_turns_4_wire_on_and_reads_the_cross(bench, name):
    reader = SourceMeterHallReader(_open(bench, name), Limits())
    r = reader.read(1e-4)
    assert r.hall_resistance == pytest.approx(0.8, abs=0.02)
    s = _session(bench, name)
    query = ":SYST:RSEN?" if name == "keithley2400" else ":SENS:VOLT:RSEN?"
    assert s.query(query).strip() == "1"
    assert s.query("SYST:ERR?").startswith("0,")


def test_pymeasure_2450_wires_only_sets_the_resistance_function(bench):
    """Why the 2450 role writes :SENS:VOLT:RSEN itself: pymeasure's `wires` is :SENS:RES:RSEN."""
    smu = Keithley2450(bench.addresses["keithley2450"], visa_library=bench.visa_library)
    smu.wires = 4
    assert _old_smu_read(_session(bench, "keithley2450"), "keithley2450") > 100.0


@pytest.mark.parametrize("name", SMUS)
def test_4_wire_compliance_watches_the_cross_so_ovp_protects_the_channel(bench, name):
    """In 4-wire the compliance sees the Hall voltage: 30 mA through 835 ohm (25 V) flows in full
    unless the over-voltage protection is set; with it the source is clamped and says so."""
    s = _session(bench, name)
    rsen, comp = ((":SYST:RSEN 1", ":SENS:VOLT:PROT 10") if name == "keithley2400"
                  else (":SENS:VOLT:RSEN 1", ":SOUR:CURR:VLIM 10"))
    for cmd in (":SOUR:FUNC CURR", rsen, comp, ":SOUR:CURR 0.03", "OUTP ON"):
        s.write(cmd)
    inst = bench.instrument(bench.addresses[name])
    assert bench.channel_current == pytest.approx(0.03)      # 25 V across the channel
    s.write("OUTP OFF")
    s.write(":SOUR:VOLT:PROT 20" if name == "keithley2400" else ":SOUR:VOLT:PROT PROT20")
    s.write("OUTP ON")
    assert bench.channel_current == pytest.approx(20.0 / inst.loop_resistance())
    if name == "keithley2400":
        assert int(s.query(":STAT:MEAS?")) & (1 << 13)
    else:
        assert s.query(":SOUR:VOLT:PROT:TRIP?").strip() == "1"
    s.write("OUTP OFF")


# ----- 2. software-timed pulses and the bus ----------------------------------------------------
@pytest.mark.parametrize("name", SMUS)
def test_old_50us_smu_pulse_flows_for_a_bus_latency(bench, name):
    s = _session(bench, name)
    s.write(":SOUR:FUNC CURR")
    s.write(":SOUR:CURR 0.001")
    s.write("OUTP ON")
    bench.clock.advance(50e-6)                                 # the old role's sleep(width)
    s.write("OUTP OFF")
    (t_on, *_), (t_off, *_) = bench.output_history(bench.addresses[name])[-2:]
    assert t_off - t_on == pytest.approx(50e-6 + bench.bus_latency)   # 21x what was asked
    assert bench.hallbar.pulses[-1][1] == pytest.approx(50e-6 + bench.bus_latency)


@pytest.mark.parametrize("name", SMUS)
def test_smu_pulse_role_refuses_under_the_floor_and_returns_what_flowed(bench, name):
    src = SourceMeterPulseSource(_open(bench, name), Limits())
    with pytest.raises(LimitError, match="min_smu_pulse_width"):
        src.pulse(1e-3, 50e-6)
    width = src.pulse(1e-3, 5e-3)
    (t_on, on1, _), (t_off, on2, _) = bench.output_history(bench.addresses[name])[-2:]
    assert on1 and not on2
    assert width == pytest.approx(t_off - t_on)                # measured = what flowed
    assert bench.hallbar.pulses[-1] == (pytest.approx(1e-3), pytest.approx(width))
    assert width > 5e-3
    src.shutdown()


def _smu_station(bench, name, limits):
    smu = _open(bench, name)
    return Station(pulse_source=SourceMeterPulseSource(smu, limits),
                   hall_reader=SourceMeterHallReader(smu, limits), limits=limits,
                   sample={"id": "fixed", "params": {}}, bench=bench, instruments={"smu": smu})


RECIPE = load_recipe("potdep", {"amplitude": 1e-3, "pulses": 2, "pulse_width": 5e-3, "cycles": 1})


@pytest.mark.parametrize("name", SMUS)
def test_run_file_records_the_width_that_flowed(bench, name):
    st, rec = _smu_station(bench, name, Limits()), Collect()
    assert Runner(st, RECIPE, [rec]).run() == "completed"
    widths = np.concatenate([b["pulse_width"] for b in rec.blocks])
    assert len(widths) == 4 and np.all(widths > 5e-3)
    assert np.all(widths < 5e-3 + 4 * bench.bus_latency)
    flowed = [w for c, w in bench.hallbar.pulses if abs(c) > 5e-4]      # not the ±0.1 mA reads
    assert widths == pytest.approx(flowed)


SMU_STATION = """
[sample]
id = "D1"
width = 8e-6
thickness = 4e-9
[instruments.smu]
driver = "keithley2400"
address = "GPIB0::24::INSTR"
[roles]
pulse_source = "smu"
hall_reader = { mode = "sourcemeter", instrument = "smu" }
"""


def test_check_limits_refuses_widths_under_the_smu_floor_before_anything_is_opened(tmp_path):
    from labspin.runner import check_limits
    from labspin.station import load_station_spec

    path = tmp_path / "smu.toml"
    path.write_text(SMU_STATION, encoding="utf-8")
    spec = load_station_spec(path)
    fast = load_recipe("potdep", {"amplitude": 1e-3, "pulses": 2, "pulse_width": 1e-3, "cycles": 1})
    with pytest.raises(UserError, match="min_smu_pulse_width"):
        check_limits(fast, spec, spec.limits)
    check_limits(RECIPE, spec, spec.limits)                   # 5 ms passes


# ----- 9. compliance after every pulse and read --------------------------------------------------
@pytest.mark.parametrize("name", SMUS)
def test_injected_compliance_fails_the_run_naming_the_pulse(bench, name):
    st, rec = _smu_station(bench, name, Limits()), Collect()
    bench.inject_fault(bench.addresses[name], "compliance", after=0)
    assert Runner(st, RECIPE, [rec]).run() == "failed"
    status, error = rec.end
    assert "ComplianceError" in error and "0.001 A, 0.005 s SourceMeter pulse" in error
    assert not bench.instrument(bench.addresses[name]).output_on


@pytest.mark.parametrize("name", SMUS)
def test_pulse_beyond_the_compliance_voltage_is_a_compliance_error(bench, name):
    src = SourceMeterPulseSource(_open(bench, name), Limits(compliance_voltage=5.0))
    with pytest.raises(ComplianceError, match="compliance \\(5 V\\)"):
        src.pulse(0.01, 5e-3)                                  # 10 mA · 820 ohm = 8.2 V > 5 V
    src.shutdown()


# ----- 10. the 2450's command set ----------------------------------------------------------
def test_2450_in_tsp_mode_understands_no_scpi_and_the_role_says_how_to_switch(bench):
    addr = bench.addresses["keithley2450"]
    inst = bench.instrument(addr)
    inst.language = "TSP"
    s = _session(bench, "keithley2450")
    s.timeout = 50
    assert s.query("*LANG?").strip() == "TSP"
    s.write(":SOUR:FUNC CURR")
    with pytest.raises(pyvisa.VisaIOError):
        s.query(":SOUR:FUNC?")                               # no SCPI reply in TSP mode
    assert inst.errors[0][0] == -285
    with pytest.raises(UserError, match=r"TSP command set.*SCPI.*restart"):
        SourceMeterPulseSource(_open(bench, "keithley2450"), Limits())
    s.write("*LANG SCPI")
    inst.power_cycle()
    assert s.query("*LANG?").strip() == "SCPI"
    SourceMeterPulseSource(_open(bench, "keithley2450"), Limits())


# ----- what a pre-flight check asks ------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("keithley2400", {":SYST:RSEN?": "0", "OUTP?": "0", ":SENS:VOLT:PROT?": "2.100000E+01",
                      ":SOUR:VOLT:PROT?": "2.100000E+02", "SYST:ERR?": '0,"No error"',
                      ":STAT:MEAS?": "0"}),
    ("keithley2450", {"*LANG?": "SCPI", ":SENS:VOLT:RSEN?": "0", "OUTP?": "0",
                      ":SOUR:CURR:VLIM?": "2.100000E+01", ":SOUR:VOLT:PROT?": "NONE",
                      "SYST:ERR?": '0,"No error"'}),
    ("sr830", {"LIAS?": "0", "ERRS?": "0", "FMOD?": "1", "HARM?": "1", "SLVL?": "1.000"}),
    ("sr860", {"LIAS?": "0", "CUROVLDSTAT?": "0", "RSRC?": "0", "HARM?": "1"}),
])
def test_preflight_queries_are_answered_at_power_up(bench, name, expected):
    """What `labspin check` asks: power-up 2-wire sense, output off, no OVP, empty queues."""
    s = _session(bench, name)
    s.timeout = 50
    assert {q: s.query(q).strip() for q in expected} == expected


# ----- 7. lock-in amplitude, settings, status --------------------------------------------------
@pytest.fixture
def lbench():
    b = SimBench(FixedHallBar(r_h=0.8), seed=2)
    yield b
    b.close()


def test_sr830_slvl_is_set_in_2mv_steps(lbench):
    s = _session(lbench, "sr830")
    for sent, got in (("SLVL0.005", 0.006), ("SLVL0.0129", 0.012), ("SLVL1.0011", 1.002)):
        s.write(sent)
        assert float(s.query("SLVL?")) == pytest.approx(got)


def test_sr860_slvl_is_set_to_three_digits(lbench):
    s = _session(lbench, "sr860")
    s.write("SLVL 1.2345e-3")
    assert float(s.query("SLVL?")) == pytest.approx(1.23e-3)


def test_old_lockin_current_from_the_request_is_wrong_new_from_slvl_read_back(lbench):
    """5.3e-7 A through 10 kohm asks 5.3 mV; the SR830 sets 6 mV, so the old I = request is 12 % low."""
    li = _open(lbench, "sr830")
    # 25 time constants: the filter starts from the power-up 1 V sine, 170x the signal
    reader = LockinHallReader(li, Limits(), lbench.lockin_series_resistance, settle=25)
    r = reader.read(5.3e-7)
    assert r.read_current == pytest.approx(6e-7)
    assert r.hall_resistance == pytest.approx(0.8, rel=0.02)
    x = r.hall_voltage                                        # what the old role divided by the request
    assert x / 5.3e-7 == pytest.approx(0.8 * 6 / 5.3, rel=0.02)


@pytest.mark.parametrize("name", ["sr830", "sr860"])
def test_lockin_left_on_harmonic_2_reads_zero_unless_the_role_sets_harmonic_1(lbench, name):
    s = _session(lbench, name)
    s.write("HARM 2")
    s.write("PHAS 90" if name == "sr860" else "PHAS90")
    reader = LockinHallReader(_open(lbench, name), Limits(), lbench.lockin_series_resistance)
    r = reader.read(1e-4)
    assert r.hall_resistance == pytest.approx(0.8, rel=0.02)
    assert s.query("HARM?").strip() == "1"


@pytest.mark.parametrize("name, sens, ok", [("sr830", "SENS0", "SENS26"), ("sr860", "SCAL 27", "SCAL 0")])
def test_lockin_output_overload_is_refused(lbench, name, sens, ok):
    li = _open(lbench, name)
    reader = LockinHallReader(li, Limits(), lbench.lockin_series_resistance)
    reader.read(1e-4)
    li.write(sens)                                            # 2 nV / 1 nV full scale: X overloads
    with pytest.raises(RuntimeError, match="output overload"):
        reader.read(1e-4)
    li.ask("SNAP? 1,2" if name == "sr830" else "SNAP? X, Y")  # latches another overload ...
    li.write(ok)                                              # ... that is over before the read:
    r = reader.read(1e-4)                                     # the role clears it after settling
    assert r.hall_resistance == pytest.approx(0.8, rel=0.02)


def test_sr860_input_range_overload_is_latched_and_current(lbench):
    s = _session(lbench, "sr860")
    s.write("IRNG 4")                                         # 10 mV input range
    s.write("SLVL 2")                                         # 0.2 mA · 0.8 ohm: fine
    assert int(s.query("CUROVLDSTAT?")) & 16 == 0
    lbench.hallbar.hall_resistance = 100.0
    lbench._notify()
    assert int(s.query("CUROVLDSTAT?")) & 16
    s.query("SNAP? X, Y")
    assert int(s.query("LIAS?")) & 16
    assert math.isfinite(float(s.query("SLVL?")))
