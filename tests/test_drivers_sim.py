"""Integration: unmodified pymeasure drivers and our roles against the simulated bench."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from pymeasure.instruments.keithley import Keithley2182 as PMKeithley2182
from pymeasure.instruments.keithley import Keithley2400, Keithley2450
from pymeasure.instruments.keithley import Keithley6221 as PMKeithley6221
from pymeasure.instruments.srs import SR830, SR860

from labspin.cli.sim import critical_current, run_sim_loop
from labspin.drivers import open_instrument
from labspin.drivers.hall import DeltaHallReader, LockinHallReader, SourceMeterHallReader
from labspin.drivers.keithley6221 import Keithley6221
from labspin.drivers.pulse import K6221PulseSource, SourceMeterPulseSource
from labspin.drivers.roles import LimitError, Limits
from labspin.errors import UserError
from labspin.sim_backend.bench import SimBench
from labspin.sim_backend.physics import preset as get_preset


@pytest.fixture
def bench():
    # the tilted device without its read noise, drift and read-back: reads must equal R_H
    b = SimBench(get_preset("tilted").replace(read_noise=0.0, drift=0.0, readback=0.0), seed=3)
    yield b
    b.close()


def _open(cls, bench, name):
    return cls(bench.addresses[name], visa_library=bench.visa_library)


def _no_errors(inst):
    assert inst.check_errors() == []


def _writes(bench, address):
    return [r.message for r in bench.log if r.kind == "write" and r.address.upper() == address.upper()]


def _i_c(bench):
    return critical_current(bench.hallbar.params)


# ----- unmodified pymeasure classes ------------------------------------------------------------
def test_pymeasure_6221_unmodified(bench):
    k = _open(PMKeithley6221, bench, "keithley6221")
    assert "6221" in k.id
    k.source_compliance = 5
    assert k.source_compliance == pytest.approx(5)
    k.source_current = 1e-3
    assert k.source_current == pytest.approx(1e-3)
    k.enable_source()
    assert k.source_enabled is True
    assert bench.instrument(bench.addresses["keithley6221"]).output_on
    k.delta_unit = "V"
    k.delta_high_source = 1e-4
    k.delta_delay = 2e-3
    k.delta_cycles = 1
    k.delta_measurement_sets = 1
    k.delta_compliance_abort_enabled = True
    assert k.delta_compliance_abort_enabled is True
    k.delta_buffer_points = 1
    assert k.delta_connected is True
    k.delta_arm()
    while int(k.ask(":SOUR:DELT:ARM?")) != 1:     # arming takes time (the 6221 talks to the 2182A)
        bench.clock.advance(0.01)
    k.delta_start()
    values = k.delta_values
    assert len(values) >= 1 and all(math.isfinite(v) for v in values)
    k.delta_abort()
    k.waveform_function = "sine"
    assert k.waveform_function == "sine"
    k.waveform_frequency = 137
    k.waveform_amplitude = 1e-4
    k.waveform_ranging = "best"
    assert k.waveform_ranging == "best"
    _no_errors(k)
    k.shutdown()
    assert not bench.instrument(bench.addresses["keithley6221"]).output_on


def test_pymeasure_2182_unmodified(bench):
    nv = _open(PMKeithley2182, bench, "keithley2182")
    assert "2182" in nv.id
    nv.ch_1.setup_voltage()
    assert nv.channel_function == "voltage"
    assert math.isfinite(nv.voltage)
    _no_errors(nv)


@pytest.mark.parametrize("cls, name", [(SR830, "sr830"), (SR860, "sr860")])
def test_pymeasure_lockins_unmodified(bench, cls, name):
    li = _open(cls, bench, name)
    li.sine_voltage = 1.0
    assert li.sine_voltage == pytest.approx(1.0)
    li.time_constant = 0.1
    assert li.time_constant == pytest.approx(0.1)
    x, y = li.snap()[:2]
    assert math.isfinite(x) and math.isfinite(y)
    assert math.isfinite(li.x)


@pytest.mark.parametrize("cls, name", [(Keithley2400, "keithley2400"), (Keithley2450, "keithley2450")])
def test_pymeasure_sourcemeters_unmodified(bench, cls, name):
    smu = _open(cls, bench, name)
    smu.source_mode = "current"
    smu.compliance_voltage = 5
    smu.source_current = 1e-4
    smu.enable_source()
    assert math.isfinite(smu.voltage)
    _no_errors(smu)
    smu.shutdown()
    assert not bench.instrument(bench.addresses[name]).output_on


# ----- roles: loops on every preset ------------------------------------------------------------
@pytest.mark.parametrize("preset", ["orange_peel", "idmi", "tilted"])
def test_loop_hysteresis_on_every_preset(preset):
    """The loop recipe through the runner, our 6221 roles, PyVISA and the simulator."""
    from labspin.sim_backend.physics import preset as get_preset
    params = get_preset(preset)
    i_max = 1.5 * critical_current(params)
    a = run_sim_loop(preset, 1, max_current=i_max, steps=15, width=100e-6, read_current=1e-4)
    d = a.data
    cur, r = d["pulse_current"].to_numpy(), d["hall_resistance"].to_numpy()
    r_ahe = params.R_AHE
    # |R_H - R_0| <= R_AHE, plus the heating read-back of the largest pulse and read noise/drift
    read = params.readback * i_max ** 2 + 6 * math.hypot(params.read_noise, params.drift)
    assert a.window["window"] <= 2 * r_ahe * 1.01 + read
    # hysteresis: at zero current after +I_max and after -I_max the device sits a sizeable part
    # of the full 2 R_AHE swing apart (orange-peel's reversed-field units keep it below 1)
    n = 15
    assert cur[2 * n - 1] == pytest.approx(0, abs=1e-12) and cur[4 * n - 1] == pytest.approx(0, abs=1e-12)
    assert 0.4 * 2 * r_ahe < r[2 * n - 1] - r[4 * n - 1] < 1.1 * 2 * r_ahe
    # switching currents have opposite signs and lie below the sweep amplitude
    ic_up, ic_down = a.loop["ic_plus"]["mean"], a.loop["ic_minus"]["mean"]
    assert ic_up * ic_down < 0
    assert abs(ic_up) < i_max and abs(ic_down) < i_max


def test_pulse_source_and_delta_reader_on_sim(bench):
    i_max = 1.5 * _i_c(bench)
    limits = Limits(max_pulse_current=i_max)
    k = open_instrument("keithley6221", bench.addresses["keithley6221"], visa_library=bench.visa_library)
    src, reader = K6221PulseSource(k, limits), DeltaHallReader(k, limits)
    src.pulse(i_max, 100e-6)
    r1 = reader.read(1e-4)
    src.pulse(-i_max, 100e-6)
    r2 = reader.read(1e-4)
    # the reader sees the simulated device (noise far below the window)
    assert r2.hall_resistance == pytest.approx(bench.hallbar.hall_resistance, abs=1e-3)
    assert abs(r1.hall_resistance - r2.hall_resistance) > 0.5 * bench.hallbar.params.R_AHE
    # the hot path: settings are not re-sent; a point is a handful of messages
    n0 = len([r for r in bench.log if r.kind in ("write", "read")])
    src.pulse(i_max, 100e-6)
    reader.read(1e-4)
    per_point = len([r for r in bench.log if r.kind in ("write", "read")]) - n0
    assert per_point <= 16     # 8 writes, 8 reads: arming each run (PDEL, then DELT) is polled
    _no_errors(k)                       # the simulator accepted every string we sent
    snap = src.snapshot()
    assert snap["address"] == bench.addresses["keithley6221"] and "6221" in snap["idn"]
    assert snap["settings"]["pulse_delta_count"] == 1


def test_limits_checked_before_any_write(bench):
    k = open_instrument("keithley6221", bench.addresses["keithley6221"], visa_library=bench.visa_library)
    src = K6221PulseSource(k, Limits(max_pulse_current=5e-3))
    before = len(_writes(bench, bench.addresses["keithley6221"]))
    with pytest.raises(LimitError):
        src.pulse(6e-3, 100e-6)
    with pytest.raises(ValueError):
        k.source_current = 0.2          # the driver refuses instead of clipping to 0.105
    assert len(_writes(bench, bench.addresses["keithley6221"])) == before


def test_shutdown_ramps_to_zero_and_turns_output_off(bench):
    addr = bench.addresses["keithley6221"]
    k = open_instrument("keithley6221", addr, visa_library=bench.visa_library)
    k.source_current = 2e-3
    k.enable_source()
    src = K6221PulseSource(k, Limits())
    src.shutdown()
    hist = bench.output_history(addr)
    levels = [lvl for _, on, lvl in hist]
    assert hist[-1][1] is False or hist[-1][1] == 0           # output off at the end
    assert levels[-1] == 0
    i2 = levels.index(2e-3) if 2e-3 in levels else 0
    ramp = [lvl for lvl in levels[i2:] if lvl != 0]
    assert len(ramp) >= 3 and all(a >= b for a, b in zip(ramp, ramp[1:]))   # stepped down
    src.shutdown()                                            # idempotent


def test_error_invalidates_cache_and_settings_are_resent(bench):
    addr = bench.addresses["keithley6221"]
    k = open_instrument("keithley6221", addr, visa_library=bench.visa_library)
    k.adapter.connection.timeout = 50
    src = K6221PulseSource(k, Limits(max_pulse_current=0.01), timeout=0.05)
    src.pulse(5e-3, 100e-6)
    bench.inject_fault(addr, "timeout", after=3)            # lose the reply to the completion poll
    with pytest.raises(Exception):
        src.pulse(5e-3, 100e-6)
    bench.clear_faults(addr)
    n0 = len(_writes(bench, addr))
    src.pulse(5e-3, 100e-6)
    resent = _writes(bench, addr)[n0:]
    assert any("PDEL:HIGH" in w.upper() for w in resent)


@pytest.mark.parametrize("name, cls", [("sr830", SR830), ("sr860", SR860)])
def test_lockin_reader_on_sim_waits_virtually(bench, name, cls):
    li = open_instrument(name, bench.addresses[name], visa_library=bench.visa_library)
    li.time_constant = 0.1
    reader = LockinHallReader(li, Limits(), bench.lockin_series_resistance)
    t0, wall0 = bench.clock.now, time.perf_counter()
    r = reader.read(1e-4)
    assert bench.clock.now - t0 >= 10 * 0.1 * 0.99           # settled on the virtual clock
    assert time.perf_counter() - wall0 < 0.5                 # ... without sleeping
    assert r.hall_resistance == pytest.approx(bench.hallbar.hall_resistance,
                                              abs=0.05 * bench.hallbar.params.R_AHE)
    reader.shutdown()


@pytest.mark.parametrize("name", ["keithley2400", "keithley2450"])
def test_sourcemeter_roles_on_sim(bench, name):
    smu = open_instrument(name, bench.addresses[name], visa_library=bench.visa_library)
    i_max = 1.5 * _i_c(bench)
    limits = Limits(max_pulse_current=i_max, min_pulse_width=50e-6, max_pulse_width=12e-3)
    src, reader = SourceMeterPulseSource(smu, limits), SourceMeterHallReader(smu, limits)
    width = src.pulse(i_max, 5e-3)          # the SMU floor (min_smu_pulse_width) is 5 ms
    assert width >= 5e-3 + bench.bus_latency  # the OUTP OFF message's latency flows too
    r1 = reader.read(1e-4)
    src.pulse(-i_max, 5e-3)
    r2 = reader.read(1e-4)
    assert r2.hall_resistance == pytest.approx(bench.hallbar.hall_resistance, abs=0.02)
    assert abs(r1.hall_resistance - r2.hall_resistance) > 0.5 * bench.hallbar.params.R_AHE
    _no_errors(smu)
    src.shutdown()
    assert not bench.instrument(bench.addresses[name]).output_on


def test_open_instrument_unreachable_and_malformed(bench):
    with pytest.raises(UserError, match="GPIB0::29::INSTR"):
        open_instrument("keithley6221", "GPIB0::29::INSTR", visa_library=bench.visa_library)
    with pytest.raises(UserError, match="GPIB0::xyz"):
        open_instrument("keithley6221", "GPIB0::xyz", visa_library=bench.visa_library)


def test_open_instrument_refuses_the_wrong_model(bench):
    with pytest.raises(UserError, match="not a keithley6221"):
        open_instrument("keithley6221", bench.addresses["keithley2400"], visa_library=bench.visa_library)


def test_open_instrument_returns_our_subclass(bench):
    k = open_instrument("keithley6221", bench.addresses["keithley6221"], visa_library=bench.visa_library)
    assert isinstance(k, Keithley6221) and k.pulse_delta_connected is True
    assert np.isfinite(k.source_compliance)
