"""The simulated bench: Hall-bar coupling, Pulse Delta / Delta sequences, lock-in, faults, clock."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import pyvisa
from pyvisa import constants
from pyvisa.errors import VisaIOError

from fakes import FixedHallBar
from labspin.sim_backend import SimBench
from labspin.sim_backend.instruments.keithley6221 import ARM_TIME

K6221, K2182, SR830, SR860, K2400, K2450 = (
    "GPIB0::12::INSTR", "GPIB0::7::INSTR", "GPIB0::8::INSTR", "GPIB0::9::INSTR",
    "GPIB0::24::INSTR", "GPIB0::18::INSTR")


@pytest.fixture
def bench():
    # the tilted device without its read noise, drift and read-back: reads must equal R_H
    from labspin.sim_backend.physics import preset
    b = SimBench(preset("tilted").replace(read_noise=0.0, drift=0.0, readback=0.0), seed=7)
    yield b
    b.close()


def _session(bench, addr, **kw):
    return pyvisa.ResourceManager(bench.visa_library).open_resource(addr, **kw)


def _pulse_delta(k, high, count=1, lme=2, interval=5):
    """The ordered sequence of scpi.md §7.A; returns the readings."""
    assert k.query("SOUR:PDEL:NVPR?").strip() == "1"
    for msg in ("SOUR:CURR:COMP 20", f"SOUR:PDEL:HIGH {high}", "SOUR:PDEL:LOW 0", "SOUR:PDEL:WIDT 1e-4",
                "SOUR:PDEL:SDEL 6e-5", f"SOUR:PDEL:COUN {count}", "SOUR:PDEL:RANG BEST",
                f"SOUR:PDEL:INT {interval}", "SOUR:PDEL:SWE OFF", f"SOUR:PDEL:LME {lme}", "TRAC:CLE",
                f"TRAC:POIN {count}", "FORM:ELEM READ,TST", "SOUR:PDEL:ARM"):
        k.write(msg)
    assert k.query("SOUR:PDEL:ARM?").strip() == "0"              # arming takes ARM_TIME
    k.visalib.bench.clock.advance(ARM_TIME)
    assert k.query("SOUR:PDEL:ARM?").strip() == "1"
    k.write("INIT:IMM")
    data = [float(x) for x in k.query("TRAC:DATA?").split(",")]
    k.write("SOUR:SWE:ABOR")
    assert k.query("SYST:ERR?").strip() == '0,"No error"'
    return data[0::2], data[1::2]


def test_pulse_delta_reads_hall_resistance_and_switches(bench):
    k = _session(bench, K6221)
    k.write("*RST")
    seen = []
    for high in (0.015, -0.015, 0.015):
        t0 = bench.clock.now
        (v,), (ts,) = _pulse_delta(k, high)
        r_h = bench.hallbar.hall_resistance
        assert v / high == pytest.approx(r_h, abs=1e-4)          # noise ~ 50 nV / 15 mA
        assert ts == 0.0
        assert bench.clock.now - t0 == pytest.approx(ARM_TIME + 5 / 50.0)   # INT 5 PLC at 50 Hz
        seen.append(r_h)
    r0 = bench.hallbar.params.R0
    assert seen[0] > r0 > seen[1] and seen[2] > r0              # ± pulses switch the device
    hist = bench.output_history(K6221)
    assert hist[-1][1] is False and hist[-1][2] == 0.0           # disarmed: output back off


def test_pulse_delta_count_timestamps_and_two_point(bench):
    k = _session(bench, K6221)
    v, ts = _pulse_delta(k, 0.015, count=4, interval=10)
    assert len(v) == 4 and np.allclose(np.diff(ts), 10 / 50.0)
    v1, _ = _pulse_delta(k, 0.015, count=2, lme=1)
    assert np.allclose(np.array(v1) / 0.015, bench.hallbar.hall_resistance, atol=1e-4)


def test_pulse_delta_refuses_without_2182(bench):
    b = SimBench(FixedHallBar(), addresses={"keithley6221": K6221})
    k = _session(b, K6221)
    assert k.query("SOUR:PDEL:NVPR?").strip() == "0"
    k.write("SOUR:PDEL:ARM")
    assert k.query("SYST:ERR?").startswith("-221")
    b.close()


def test_delta_cancels_thermal_emf():
    hb = FixedHallBar(r_h=0.75)
    b = SimBench(hb, thermal_emf=5e-6)
    k = _session(b, K6221)
    for msg in ("*RST", "SOUR:CURR:COMP 2", "SOUR:DELT:HIGH 1e-4", "SOUR:DELT:DEL 0.01",
                "SOUR:DELT:COUN 20", "SOUR:SWE:COUN 1", "SOUR:DELT:CAB ON", "TRAC:POIN 20"):
        k.write(msg)
    assert float(k.query("SOUR:DELT:LOW?")) == -1e-4            # HIGH sets LOW = -HIGH
    assert k.query("SOUR:DELT:NVPR?").strip() == "1"
    k.write("SOUR:DELT:ARM")
    b.clock.advance(ARM_TIME)
    assert k.query("SOUR:DELT:ARM?").strip() == "1"
    k.write("INIT:IMM")
    latest = float(k.query("SENS:DATA?"))
    data = [float(x) for x in k.query("TRAC:DATA?").split(",")]
    k.write("SOUR:SWE:ABOR")
    readings = np.array(data[0::2])
    assert len(readings) == 20 and latest == readings[-1]
    assert np.allclose(readings, 0.75 * 1e-4, atol=1e-8)        # EMF (5 µV = 67 % of signal) gone
    # a plain DC read at the same current carries the EMF
    k.write("SOUR:CURR 1e-4")
    k.write("OUTP ON")
    nvm = _session(b, K2182, read_termination="\r")
    dc = float(nvm.query(":READ?"))
    assert dc - 0.75e-4 == pytest.approx(b.thermal_emf(), abs=1e-7)
    assert math.isclose(b.thermal_emf(), 5e-6, rel_tol=0.1)
    # the delta currents reached the device as ±100 µA segments
    assert {round(c, 9) for c, _w in hb.pulses} >= {1e-4, -1e-4}
    k.write("SENS:DATA?")                                      # not running any more: -221
    assert k.query("SYST:ERR?").startswith("-221")
    b.close()


def test_compliance_clamps_pulse_and_sets_status():
    hb = FixedHallBar(r_h=1.0, r_xx=1000.0)
    b = SimBench(hb)
    k = _session(b, K6221)
    k.write("SOUR:CURR:COMP 5")
    k.write("SOUR:PDEL:HIGH 0.01;LOW 0;WIDT 1e-4;COUN 1;LME 2")
    k.write("SOUR:PDEL:ARM")
    b.clock.advance(ARM_TIME)
    k.write("INIT:IMM")
    v = float(k.query("TRAC:DATA?").split(",")[0])
    assert v == pytest.approx(5 / 1000.0 * 1.0, abs=1e-6)       # 10 mA asked, 5 mA flowed
    assert int(k.query("STAT:MEAS?")) & 8
    assert (5e-3, 1e-4) in [(round(c, 12), round(w, 12)) for c, w in hb.pulses]
    smu = _session(b, K2400)
    smu.write(":SOUR:FUNC CURR;:SOUR:CURR 0.01;:SENS:VOLT:PROT 2")
    smu.write("OUTPUT 1")
    vals = [float(x) for x in smu.query(":READ?").split(",")]
    assert vals[0] == pytest.approx(2.0) and int(vals[4]) & 8
    assert smu.query(":SENS:VOLT:PROT:TRIP?").strip() == "1"
    b.close()


def test_sourcemeter_software_pulse_width_is_virtual_time():
    hb = FixedHallBar()
    b = SimBench(hb)
    smu = _session(b, K2450)
    smu.write(":SOUR:FUNC CURR")
    smu.write(":SOUR:CURR:VLIM 20")
    smu.write(":SOUR:CURR:LEV 0.01")
    smu.write("OUTPUT ON")
    b.clock.advance(2e-3)                       # a station's wait()
    smu.write("OUTPUT OFF")                     # ... and the OFF message's bus latency (1 ms)
    assert hb.pulses[-1] == (pytest.approx(0.01), pytest.approx(2e-3 + b.bus_latency))
    hist = b.output_history(K2450)
    assert [(on, lvl) for _t, on, lvl in hist] == [(False, 0.01), (True, 0.01), (False, 0.01)]
    assert hist[2][0] - hist[1][0] == pytest.approx(2e-3 + b.bus_latency)
    # a read with the 2400's auto output-off is a pulse of source delay + NPLC
    s2 = _session(b, K2400)
    s2.write(":SOUR:FUNC CURR;:SOUR:CURR 0.002;:SOUR:DEL 0.005;:SOUR:CLE:AUTO 1;:SENS:VOLT:NPLC 1")
    n = len(hb.pulses)
    s2.query(":READ?")
    assert hb.pulses[n:] == [(pytest.approx(0.002), pytest.approx(0.005 + 1 / 50.0))]
    assert b.instrument(K2400).output_on is False
    b.close()


def test_ramp_down_visible_in_output_history(bench):
    smu = _session(bench, K2400)
    smu.write(":SOUR:FUNC CURR;:SENS:VOLT:PROT 20")
    smu.write(":SOUR:CURR 0.001")
    smu.write("OUTPUT 1")
    for v in (0.0005, 0.0):
        smu.write(f":SOUR:CURR {v}")
    smu.write("OUTPUT 0")
    levels = [(on, lvl) for _t, on, lvl in bench.output_history(K2400)]
    assert levels[-4:] == [(True, 0.001), (True, 0.0005), (True, 0.0), (False, 0.0)]
    kinds = {r.kind for r in bench.log}
    assert kinds == {"write", "output"}
    assert any(r.message == "OUTPUT 0" for r in bench.log)


def test_lockin_settles_in_virtual_time_and_noise_scales_with_enbw():
    hb = FixedHallBar(r_h=0.5)
    b = SimBench(hb)
    l1 = _session(b, SR830)
    l1.write("FMOD 1;SLVL 1.000;FREQ 137;PHAS 0;HARM 1;SENS 20;OFLT 8;OFSL 3")
    expected = 1.0 / b.lockin_series_resistance * 0.5         # I_rms · R_H
    assert float(l1.query("OUTP?1")) == pytest.approx(expected, rel=1e-3)   # starts settled
    hb.hall_resistance = 0.8
    b._notify()                                               # the device changed (bench does this on pulses)
    x0 = float(l1.query("OUTP?1"))
    assert x0 == pytest.approx(expected, rel=1e-3)            # no time has passed
    b.clock.advance(0.1)                                      # 1 τ of a 4-pole filter: far from settled
    x1 = float(l1.query("OUTP?1"))
    assert expected < x1 < 0.5 * (expected + 0.8e-4)
    b.clock.advance(2.0)                                      # 20 τ
    assert float(l1.query("OUTP?1")) == pytest.approx(0.8e-4, rel=1e-3)

    def spread(oflt):
        l1.write(f"OFLT{oflt}")
        b.clock.advance(1e3)
        return np.std([float(l1.query("OUTP?2")) for _ in range(400)])
    ratio = spread(4) / spread(8)                             # τ 1 ms vs 100 ms
    assert ratio == pytest.approx(10.0, rel=0.2)
    assert spread(8) < 1e-7                                   # µΩ-scale at 100 µA
    b.close()


def test_lockin_external_reference_follows_6221_sine():
    hb = FixedHallBar(r_h=-0.4)
    b = SimBench(hb)
    k = _session(b, K6221)
    l2 = _session(b, SR860)
    l2.write("RSRC 1")
    l2.write("SCAL 9")
    l2.write("OFLT 10")
    b.clock.advance(2.0)                                      # the internal-reference signal decays
    assert float(l2.query("OUTP? 2")) < 1e-6                  # no reference yet: only noise
    assert int(l2.query("*STB?")) == 0
    for msg in ("SOUR:WAVE:ABOR", "SOUR:WAVE:FUNC SIN", "SOUR:WAVE:FREQ 137", "SOUR:WAVE:AMPL 1e-3",
                "SOUR:WAVE:OFFS 0", "SOUR:WAVE:DUR:TIME INF", "SOUR:WAVE:PMAR 0",
                "SOUR:WAVE:PMAR:OLIN 1", "SOUR:WAVE:PMAR:STAT ON", "SOUR:WAVE:ARM", "SOUR:WAVE:INIT"):
        k.write(msg)
    b.clock.advance(5.0)
    x, y = (float(v) for v in l2.query("SNAP? X, Y").split(","))
    assert x == pytest.approx(1e-3 / math.sqrt(2) * -0.4, rel=1e-3) and abs(y) < 1e-7
    assert float(l2.query("FREQ?")) == pytest.approx(137)
    k.write("SOUR:WAVE:ABOR")
    b.close()


def test_faults(bench):
    k = _session(bench, K6221)
    bench.inject_fault(K6221, "timeout", after=2)
    k.write("OUTP 0")
    k.write("OUTP 0")
    with pytest.raises(VisaIOError) as e:
        k.query("*IDN?")
    assert e.value.error_code == constants.StatusCode.error_timeout
    assert "6221" in k.query("*IDN?")                          # count=1: the next one works
    bench.inject_fault(K6221, "error")
    assert k.query("SYST:ERR?").startswith("-310")
    bench.inject_fault(K6221, "disconnect", after=1)
    k.write("OUTP 0")
    with pytest.raises(VisaIOError):
        k.write("OUTP 0")
    with pytest.raises(VisaIOError):
        k.read()
    bench.clear_faults(K6221)
    k.clear()
    assert k.query("OUTP?").strip() == "0"
    bench.inject_fault(K6221, "compliance")
    k.write("SOUR:CURR:COMP 10;:SOUR:CURR 1e-4;:OUTP ON")     # well inside compliance, yet trips
    assert int(k.query("STAT:MEAS:COND?")) & 8
    assert bench.channel_current == 0.0                          # forced trip: nothing flows
    k.write("OUTP OFF")
    with pytest.raises(ValueError):
        bench.inject_fault(K6221, "smoke")


def test_clock_is_virtual(bench):
    nvm = _session(bench, K2182, read_termination="\r")
    nvm.write(":SENS:VOLT:NPLC 10")
    t0 = bench.clock.now
    wall = time.perf_counter()
    for _ in range(50):
        nvm.query(":READ?")
    assert bench.clock.now - t0 == pytest.approx(50 * 10 / 50.0)   # 10 s of virtual time
    assert time.perf_counter() - wall < 2.0
    with pytest.raises(ValueError):
        bench.clock.advance(-1)


def test_two_benches_do_not_share_state():
    a, b = SimBench("tilted", seed=1), SimBench("tilted", seed=1)
    assert a.visa_library is not b.visa_library
    assert a.visa_library.library_path != b.visa_library.library_path
    ka, kb = _session(a, K6221), _session(b, K6221)
    ka.write(":SOUR:CURR 0.001")
    ka.write(":SOUR:BOGUS")
    assert float(kb.query(":SOUR:CURR?")) == 0.0
    assert kb.query("SYST:ERR?").strip() == '0,"No error"'
    assert ka.query("SYST:ERR?").startswith("-113")
    a.clock.advance(1.0)
    assert b.clock.now == 0.0
    _pulse_delta(ka, 0.015)
    assert a.hallbar.hall_resistance != b.hallbar.hall_resistance or \
        a.hallbar.get_state() != b.hallbar.get_state()
    a.close()
    b.close()


def test_unknown_address_is_resource_not_found(bench):
    rm = pyvisa.ResourceManager(bench.visa_library)
    with pytest.raises(VisaIOError) as e:
        rm.open_resource("GPIB0::3::INSTR")
    assert e.value.error_code == constants.StatusCode.error_resource_not_found
    assert set(rm.list_resources()) == set(bench.addresses.values())


def test_unmodified_pymeasure_drivers(bench):
    from pymeasure.instruments.keithley import Keithley6221, Keithley2182
    from pymeasure.instruments.srs import SR830 as PmSR830

    k = Keithley6221(K6221, visa_library=bench.visa_library)
    k.reset()
    assert k.delta_connected
    k.delta_high_source = 1e-4
    k.delta_delay = 0.002
    k.delta_cycles = 10
    k.delta_measurement_sets = 1
    k.delta_compliance_abort_enabled = True
    k.delta_buffer_points = 10
    k.delta_arm()
    bench.clock.advance(ARM_TIME)
    k.delta_start()
    values = k.delta_values
    k.delta_abort()
    assert len(values) == 20
    assert np.allclose(np.array(values[0::2]) / 1e-4, bench.hallbar.hall_resistance, atol=1e-3)
    k.check_errors()
    nvm = Keithley2182(K2182, visa_library=bench.visa_library)
    nvm.ch_1.setup_voltage(auto_range=False, nplc=1)
    assert nvm.channel_function == "voltage"
    assert abs(nvm.voltage) < 1e-4
    lia = PmSR830(SR830, visa_library=bench.visa_library)
    lia.sensitivity = 5e-3                  # R_H ≈ R0 = 16 ohm: 1.6 mV at 100 uA
    lia.time_constant = 0.1
    x, y = lia.snap()
    assert x == pytest.approx(1.0 / bench.lockin_series_resistance * bench.hallbar.hall_resistance, rel=1e-3)


def test_device_choices_and_inplane_field():
    from labspin.sim_backend.errors import SimulatorInputError
    from labspin.sim_backend import physics

    params = physics.preset("orange_peel")
    b = SimBench(params, seed=2)
    assert b.hallbar.params == params
    assert b.apply_inplane_field(-0.05) is True               # orange-peel polarity is resettable
    assert b.apply_inplane_field(0.05) is True
    t = SimBench("tilted", seed=2)
    assert t.apply_inplane_field(0.05) is False               # tilted: no reset by field
    with pytest.raises(SimulatorInputError):
        SimBench("no_such_preset")
    b.close()
    t.close()
