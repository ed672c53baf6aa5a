"""pymeasure `expected_protocol` tests for every SCPI string our driver layer adds or changes.

The strings follow ../shared/reference/scpi.md (§2.3 Pulse Delta, §7.A/B sequences, §8 pymeasure).
"""
from __future__ import annotations

import inspect
import logging

import pytest
from pymeasure.instruments.keithley import Keithley2400, Keithley2450
from pymeasure.instruments.srs import SR830, SR860
from pymeasure.test import expected_protocol

from labspin.drivers import DRIVERS, open_instrument
from labspin.drivers.hall import DeltaHallReader, LockinHallReader, SourceMeterHallReader
from labspin.drivers.keithley2182 import Keithley2182
from labspin.drivers.keithley6221 import Keithley6221
from labspin.drivers.pulse import K6221PulseSource, SourceMeterPulseSource
from labspin.drivers.roles import ComplianceError, LimitError, Limits
from labspin.errors import UserError

IDN_6221 = "KEITHLEY INSTRUMENTS INC.,MODEL 6221,4143710,D04 /700x"
OPEN_PDEL = [("*IDN?", IDN_6221), (":SOUR:PDEL:NVPR?", "1")]     # what a pulse source asks at setup
OPEN_DELT = [("*IDN?", IDN_6221), (":SOUR:DELT:NVPR?", "1")]     # what a Delta reader asks at setup
NO_SLEEP = dict(sleep=lambda s: None)


# ----- Keithley6221 properties ---------------------------------------------------------------
@pytest.mark.parametrize("prop, value, command", [
    ("pulse_delta_high", 1e-3, ":SOUR:PDEL:HIGH 0.001"),
    ("pulse_delta_high", -0.105, ":SOUR:PDEL:HIGH -0.105"),
    ("pulse_delta_low", 0, ":SOUR:PDEL:LOW 0"),
    ("pulse_delta_width", 1e-4, ":SOUR:PDEL:WIDT 0.0001"),
    ("pulse_delta_width", 12e-3, ":SOUR:PDEL:WIDT 0.012"),
    ("pulse_delta_source_delay", 16e-6, ":SOUR:PDEL:SDEL 1.6e-05"),
    ("pulse_delta_count", 1, ":SOUR:PDEL:COUN 1"),
    ("pulse_delta_count", 65636, ":SOUR:PDEL:COUN 65636"),
    ("pulse_delta_count", "INF", ":SOUR:PDEL:COUN INF"),
    ("pulse_delta_ranging", "best", ":SOUR:PDEL:RANG BEST"),
    ("pulse_delta_ranging", "fixed", ":SOUR:PDEL:RANG FIX"),
    ("pulse_delta_interval", 5, ":SOUR:PDEL:INT 5"),
    ("pulse_delta_sweep", False, ":SOUR:PDEL:SWE 0"),
    ("pulse_delta_low_measurements", 1, ":SOUR:PDEL:LME 1"),
    ("source_current", -0.105, ":SOUR:CURR -0.105"),
    ("source_compliance", 0.1, ":SOUR:CURR:COMP 0.1"),
    ("waveform_phasemarker_phase", 270, ":SOUR:WAVE:PMAR 270"),
    ("waveform_phasemarker_line", 6, ":SOUR:WAVE:PMAR:OLIN 6"),
    ("buffer_points", 65536, ":TRAC:POIN 65536"),
    ("delta_delay", 1e-3, ":SOUR:DELT:DELay 0.001"),
    ("format_elements", "READ,TST", ":FORM:ELEM READ,TST"),
])
def test_6221_setters(prop, value, command):
    with expected_protocol(Keithley6221, [(command, None)]) as inst:
        setattr(inst, prop, value)


@pytest.mark.parametrize("prop, reply, value", [
    ("pulse_delta_high", "1.000000E-03", 1e-3),
    ("pulse_delta_width", "1.100000E-04", 110e-6),
    ("pulse_delta_count", "1", 1),
    ("pulse_delta_ranging", "BEST", "best"),
    ("pulse_delta_ranging", "FIX", "fixed"),
    ("pulse_delta_interval", "5", 5),
    ("pulse_delta_sweep", "0", False),
    ("pulse_delta_low_measurements", "2", 2),
    ("pulse_delta_connected", "1", True),
    ("pulse_delta_connected", "0", False),
    ("pulse_delta_armed", "0", False),
    ("delta_armed", "1", True),
    ("trace_points_actual", "3", 3),
    ("format_elements", "READ,TST", "READ,TST"),
])
def test_6221_getters(prop, reply, value):
    query = {"pulse_delta_high": ":SOUR:PDEL:HIGH?", "pulse_delta_width": ":SOUR:PDEL:WIDT?",
             "pulse_delta_count": ":SOUR:PDEL:COUN?", "pulse_delta_ranging": ":SOUR:PDEL:RANG?",
             "pulse_delta_interval": ":SOUR:PDEL:INT?", "pulse_delta_sweep": ":SOUR:PDEL:SWE?",
             "pulse_delta_low_measurements": ":SOUR:PDEL:LME?",
             "pulse_delta_connected": ":SOUR:PDEL:NVPR?", "pulse_delta_armed": ":SOUR:PDEL:ARM?",
             "delta_armed": ":SOUR:DELT:ARM?",
             "trace_points_actual": ":TRAC:POIN:ACT?", "format_elements": ":FORM:ELEM?"}[prop]
    with expected_protocol(Keithley6221, [(query, reply)]) as inst:
        got = getattr(inst, prop)
        assert got == (pytest.approx(value) if isinstance(value, float) else value)


@pytest.mark.parametrize("prop, value", [
    ("source_current", 0.2), ("source_current", -0.106),       # pymeasure would send 0.105
    ("source_compliance", 200), ("source_compliance", 0.05),  # pymeasure would send 105 / 0.1
    ("waveform_phasemarker_phase", -10), ("waveform_phasemarker_phase", 400),
    ("waveform_amplitude", 0.2), ("waveform_frequency", 2e5),
    ("pulse_delta_high", 0.2), ("pulse_delta_width", 49e-6), ("pulse_delta_width", 13e-3),
    ("pulse_delta_source_delay", 15e-6), ("pulse_delta_source_delay", 12e-3),
    ("pulse_delta_count", 0), ("pulse_delta_count", 70000), ("pulse_delta_interval", 4),
    ("pulse_delta_low_measurements", 3), ("pulse_delta_ranging", "auto"),
    ("buffer_points", 70000), ("delta_delay", 0), ("delta_delay", "INF"),
])
def test_6221_refuses_out_of_range_before_writing(prop, value):
    with expected_protocol(Keithley6221, []) as inst:
        with pytest.raises(ValueError):
            setattr(inst, prop, value)


def test_6221_methods():
    with expected_protocol(Keithley6221, [
        (":SOUR:PDEL:ARM", None), (":INIT:IMM", None), (":SOUR:SWE:ABOR", None),
        (":TRAC:CLE;:INIT:IMM", None), (":TRAC:CLE;:INIT:IMM;:TRAC:POIN:ACT?", "0"),
        (":TRAC:CLE", None), (":TRAC:DATA?", "1.5E-04,0.0,2.5E-04,0.1"),
        (':SYST:COMM:SER:SEND ":SENS:VOLT:RANG 0.1"', None),
        (':SYST:COMM:SER:SEND ":SENS:VOLT:NPLC?"', None), (":SYST:COMM:SER:ENT?", "5.000000E+00"),
        (":SOUR:LIST:COMP 10,10", None),
    ]) as inst:
        inst.pulse_delta_arm()
        inst.pulse_delta_start()
        inst.pulse_delta_abort()
        inst.start_run()
        inst.start_run(":TRAC:POIN:ACT?")
        assert inst.read() == "0"
        inst.trace_clear()
        assert inst.delta_values == [1.5e-4, 0.0, 2.5e-4, 0.1]
        inst.serial_send(":SENS:VOLT:RANG 0.1")
        assert float(inst.serial_ask(":SENS:VOLT:NPLC?")) == 5
        inst.sweep_list_compliances = [10, 10]


def test_6221_shutdown_aborts_ramps_and_turns_off():
    with expected_protocol(Keithley6221, [
        (":SOUR:SWE:ABOR", None), (":SOUR:CURR?", "4.000000E-03"),
        (":SOUR:CURR 0.002", None), (":SOUR:CURR 0", None), ("OUTPUT OFF", None),
    ]) as inst:
        inst.shutdown(ramp_steps=2, ramp_pause=0)
        assert inst.isShutdown


def test_6221_shutdown_never_raises(monkeypatch, caplog):
    with expected_protocol(Keithley6221, [
        (":SOUR:CURR?", "0"), (":SOUR:CURR 0", None), ("OUTPUT OFF", None),
    ]) as inst:
        real_write = inst.write

        def failing_write(cmd, **kw):
            if cmd == ":SOUR:SWE:ABOR":
                raise ConnectionError("bus fault")
            real_write(cmd, **kw)

        monkeypatch.setattr(inst, "write", failing_write)
        with caplog.at_level(logging.ERROR):
            inst.shutdown(ramp_steps=3, ramp_pause=0)
        assert "bus fault" in caplog.text     # logged, and the later stages still ran


def test_2182_channel_2_range_limit_holds():
    with expected_protocol(Keithley2182, [(":SENS:VOLT:CHAN2:RANG 10", None),
                                          (":SENS:VOLT:CHAN1:RANG 100", None)]) as inst:
        with pytest.raises(ValueError):
            inst.ch_2.voltage_range = 15
        inst.ch_2.voltage_range = 10
        inst.ch_1.voltage_range = 100


# ----- roles ------------------------------------------------------------------------------------
NVM_SETUP = [   # the 2182A's range and NPLC through the 6221's RS-232 link, read back
    (':SYST:COMM:SER:SEND ":SENS:VOLT:CHAN1:RANG 0.1"', None),
    (':SYST:COMM:SER:SEND ":SENS:VOLT:NPLC 5"', None),
    (':SYST:COMM:SER:SEND ":SENS:VOLT:CHAN1:RANG?"', None), (":SYST:COMM:SER:ENT?", "1.000000E-01"),
    (':SYST:COMM:SER:SEND ":SENS:VOLT:NPLC?"', None), (":SYST:COMM:SER:ENT?", "5.000000E+00"),
]
KNOWN_STATE = [(":SOUR:SWE:ABOR", None), ("*CLS", None), (":SOUR:CURR 0", None),
               (":SOUR:CURR:COMP 10", None), (":SOUR:LIST:COMP 10", None)]
CHECKED = [(":STAT:MEAS?", "0"), ("SYST:ERR?", '0,"No error"')]
PDEL_SETUP = KNOWN_STATE + [   # once per cache generation, then sweep off (a Pulse Delta reader
    # may have turned it on) and the pulse's own amplitude / width / A-D delay
    (":SOUR:PDEL:LOW 0", None), (":SOUR:PDEL:COUN 1", None),
    (":SOUR:PDEL:RANG BEST", None), (":SOUR:PDEL:INT 5", None), (":SOUR:PDEL:LME 2", None),
    (":FORM:ELEM READ,TST", None), (":TRAC:POIN 1", None)] + NVM_SETUP + CHECKED + [
    (":SOUR:PDEL:SWE 0", None),
    (":SOUR:PDEL:HIGH 0.01", None), (":SOUR:PDEL:WIDT 0.0001", None), (":SOUR:PDEL:SDEL 5e-05", None),
]
PDEL_ARM = [(":SOUR:PDEL:ARM", None), (":SOUR:PDEL:ARM?", "1")]     # arm, then poll: never one message
PDEL_GO = [(":TRAC:CLE;:INIT:IMM;:TRAC:POIN:ACT?;:STAT:MEAS?", "1;0")]   # bit 3 (compliance) clear
PDEL_FIRE = PDEL_ARM + PDEL_GO
PDEL_POLL = ":TRAC:POIN:ACT?;:STAT:MEAS?"


def test_k6221_pulse_source_sends_settings_only_when_they_change():
    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_SETUP + PDEL_FIRE + PDEL_GO + [
        # the same pulse again: still armed (a finished run re-starts on INIT, UM 5-41)
        # shorter pulse: abort the armed run first; the A/D delay moves first so it stays inside
        (":SOUR:SWE:ABOR", None), (":SOUR:PDEL:HIGH -0.01", None), (":SOUR:PDEL:SDEL 2.5e-05", None),
        (":SOUR:PDEL:WIDT 5e-05", None)] + PDEL_FIRE + [
        # longer pulse: width first
        (":SOUR:SWE:ABOR", None), (":SOUR:PDEL:WIDT 0.002", None), (":SOUR:PDEL:SDEL 0.001", None),
    ] + PDEL_FIRE,
    ) as inst:
        src = K6221PulseSource(inst, Limits(), **NO_SLEEP)
        src.pulse(0.01, 1e-4)
        src.pulse(0.01, 1e-4)
        src.pulse(-0.01, 50e-6)
        src.pulse(-0.01, 2e-3)
        snap = src.snapshot()
        assert snap["idn"] == IDN_6221
        assert snap["settings"]["pulse_delta_width"] == 2e-3
        assert snap["limits"] == Limits().as_dict()


def test_k6221_pulse_source_polls_until_done():
    slept = []
    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_SETUP + [
        (":SOUR:PDEL:ARM", None), (":SOUR:PDEL:ARM?", "0"), (":SOUR:PDEL:ARM?", "1"),   # arming
        (PDEL_GO[0][0], "0;0"), (PDEL_POLL, "0;0"), (PDEL_POLL, "1;0")],
    ) as inst:
        K6221PulseSource(inst, Limits(), sleep=slept.append).pulse(0.01, 1e-4)
    # the expected arm time, one more arm poll, two more buffer polls
    assert len(slept) == 4 and all(s > 0 for s in slept)


@pytest.mark.parametrize("amplitude, width", [(0.03, 1e-4), (float("nan"), 1e-4), (0.01, 1e-5), (0.01, 0.02)])
def test_k6221_pulse_source_checks_limits_before_any_write(amplitude, width):
    with expected_protocol(Keithley6221, OPEN_PDEL) as inst:
        src = K6221PulseSource(inst, Limits(), **NO_SLEEP)
        with pytest.raises(LimitError):
            src.pulse(amplitude, width)


@pytest.mark.parametrize("cls, query", [(K6221PulseSource, ":SOUR:PDEL:NVPR?"),
                                        (DeltaHallReader, ":SOUR:DELT:NVPR?")])
def test_k6221_roles_need_the_2182(cls, query):
    with expected_protocol(Keithley6221, [("*IDN?", IDN_6221), (query, "0")]) as inst:
        with pytest.raises(UserError, match="2182A"):
            cls(inst, Limits())


def test_k6221_role_refuses_limits_beyond_the_instrument():
    with expected_protocol(Keithley6221, []) as inst:
        with pytest.raises(LimitError):
            K6221PulseSource(inst, Limits(max_pulse_current=0.2))
        with pytest.raises(LimitError):
            K6221PulseSource(inst, Limits(compliance_voltage=200))


def test_k6221_error_forgets_cache_so_settings_are_resent():
    from labspin.drivers.common import poll_plan

    _, polls = poll_plan(5 / 50, 0)
    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_SETUP + PDEL_ARM + [(PDEL_GO[0][0], "0;0")]
                           + [(PDEL_POLL, "0;0")] * polls + [
        # on a time-out: abort at once (and VISA device clear), only then ask anything
        (":SOUR:SWE:ABOR", None), (":STAT:MEAS?", "0"),
        ("SYST:ERR?", '-221,"Settings conflict"'), ("SYST:ERR?", '0,"No error"'),
    ] + PDEL_SETUP + PDEL_FIRE) as inst:
        src = K6221PulseSource(inst, Limits(), sleep=lambda s: None, timeout=0)
        with pytest.raises(RuntimeError, match="Settings conflict"):
            src.pulse(0.01, 1e-4)
        src.pulse(0.01, 1e-4)


def test_k6221_pulse_source_reports_a_compliance_trip_and_forgets_its_settings():
    # a pulse clamped at compliance still gives a reading; the latched event bit 3 says so
    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_SETUP + PDEL_ARM + [
        (PDEL_GO[0][0], "1;40"),                                # bits 3 (compliance) and 5
        (":SOUR:SWE:ABOR", None), ("SYST:ERR?", '0,"No error"'),
    ] + PDEL_SETUP + PDEL_FIRE) as inst:
        src = K6221PulseSource(inst, Limits(), **NO_SLEEP)
        with pytest.raises(ComplianceError, match=r"compliance \(10 V\).*0.01 A pulse"):
            src.pulse(0.01, 1e-4)
        src.pulse(0.01, 1e-4)                                   # settings re-sent after the trip


def test_k6221_pulse_source_ignores_other_event_bits():
    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_SETUP + PDEL_ARM + [
        (PDEL_GO[0][0], "1;544")]) as inst:                     # bits 5 and 9, not 3
        K6221PulseSource(inst, Limits(), **NO_SLEEP).pulse(0.01, 1e-4)


def test_k6221_pulse_source_shutdown():
    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_SETUP + PDEL_FIRE + [
        (":SOUR:SWE:ABOR", None), (":SOUR:CURR?", "0"), (":SOUR:CURR 0", None), ("OUTPUT OFF", None),
    ] + PDEL_SETUP + PDEL_FIRE) as inst:
        src = K6221PulseSource(inst, Limits(), **NO_SLEEP)
        src.pulse(0.01, 1e-4)
        src.shutdown()
        src.pulse(0.01, 1e-4)    # settings re-sent after shutdown


DELTA_SETUP = KNOWN_STATE + [
    (":UNIT:VOLT:DC V", None), (":SOUR:DELT:DELay 0.002", None),
    (":SOUR:DELT:COUN 1", None), (":SOUR:SWEep:COUN 1", None), (":SOUR:DELT:CAB ON", None),
    (":FORM:ELEM READ,TST", None), (":TRAC:POIN 1", None)] + NVM_SETUP + CHECKED + [
    (":SOUR:DELT:HIGH 0.0001", None),
]
DELTA_ARM = [(":SOUR:DELT:ARM", None), (":SOUR:DELT:ARM?", "1")]
DELTA_GO = [(":TRAC:CLE;:INIT:IMM;:TRAC:POIN:ACT?", "1")]
DELTA_FIRE = DELTA_ARM + DELTA_GO


def test_delta_hall_reader():
    v1, v2 = 1.234e-4, -5.0e-5
    with expected_protocol(Keithley6221, OPEN_DELT + DELTA_SETUP + DELTA_FIRE + [
        (":TRAC:DATA?", f"{v1:E},0.000000E+00")] + [   # same Delta current: still armed, no re-arm
        (DELTA_GO[0][0], "0"), (":TRAC:POIN:ACT?", "1"),   # the count is polled, never an empty TRAC:DATA?
        (":TRAC:DATA?", f"{v2:E},0.000000E+00")]) as inst:
        reader = DeltaHallReader(inst, Limits(), **NO_SLEEP)
        r = reader.read(1e-4)
        assert r.hall_resistance == pytest.approx(v1 / 1e-4)
        assert r.hall_voltage == pytest.approx(v1)
        r = reader.read(-1e-4)        # negative read current: same DELT:HIGH, sign carried
        assert r.hall_resistance == pytest.approx(v2 / 1e-4)
        assert r.hall_voltage / r.read_current == pytest.approx(r.hall_resistance)


def test_delta_hall_reader_says_compliance_when_delta_aborted_on_it():
    # CAB ON: a compliance trip aborts the Delta run, so no reading arrives; the event bit names why
    from labspin.drivers.common import poll_plan

    _, polls = poll_plan(3 * (2e-3 + 5 / 50), 0)
    with expected_protocol(Keithley6221, OPEN_DELT + DELTA_SETUP + DELTA_ARM + [(DELTA_GO[0][0], "0")]
                           + [(":TRAC:POIN:ACT?", "0")] * polls + [
        (":SOUR:SWE:ABOR", None), (":STAT:MEAS?", "8")]) as inst:
        reader = DeltaHallReader(inst, Limits(), sleep=lambda s: None, timeout=0)
        with pytest.raises(ComplianceError, match="Delta read at 0.0001 A .*0 of 1 readings"):
            reader.read(1e-4)


def test_delta_hall_reader_averages_count_readings():
    setup = [(c, r) for c, r in DELTA_SETUP]
    setup[setup.index((":SOUR:DELT:COUN 1", None))] = (":SOUR:DELT:COUN 3", None)
    setup[setup.index((":TRAC:POIN 1", None))] = (":TRAC:POIN 3", None)
    vals = [1e-4, 2e-4, 4e-4]
    with expected_protocol(Keithley6221, OPEN_DELT + setup + DELTA_ARM + [(DELTA_GO[0][0], "3")] + [
        (":TRAC:DATA?", ",".join(f"{v:E},{i:E}" for i, v in enumerate(vals)))]) as inst:
        r = DeltaHallReader(inst, Limits(), count=3, **NO_SLEEP).read(1e-4)
        assert r.hall_voltage == pytest.approx(sum(vals) / 3)


@pytest.mark.parametrize("current", [2e-3, 0.0, float("inf")])
def test_delta_hall_reader_limits(current):
    with expected_protocol(Keithley6221, OPEN_DELT) as inst:
        with pytest.raises(LimitError):
            DeltaHallReader(inst, Limits(), **NO_SLEEP).read(current)


# ----- lock-ins (issue #12 item 7) ------------------------------------------------------------
SR830_SETUP = [("FMOD 1", None), ("HARM1", None), ("PHAS0.00", None), ("ISRC 1", None),
               ("OFLT8", None), ("OFLT?", "8")]
SR860_SETUP = [("RSRC 0", None), ("Harm 1", None), ("PHAS 0.0000000", None), ("IVMD 0", None),
               ("ISRC 1", None), ("OFLT 10", None), ("OFLT?", "10")]


@pytest.mark.parametrize("cls, setup, slvl, snap, tau", [
    (SR830, SR830_SETUP, [("SLVL1.000", None), ("SLVL?", "1.000")], "SNAP? 1,2", 0.1),
    (SR860, SR860_SETUP, [("SLVL 1.000000000e+00", None), ("SLVL?", "1.00000e+00")], "SNAP? X, Y", 0.1),
])
def test_lockin_hall_reader(cls, setup, slvl, snap, tau):
    """Reference, harmonic 1, phase, A−B input and time constant set once; SLVL set and read
    back; each read clears the status (*CLS), snaps, and checks LIAS?."""
    slept = []
    x = 2.5e-4
    with expected_protocol(cls, [("*IDN?", "Stanford_Research_Systems,X,1,1")] + setup + slvl + [
        ("*CLS", None), (snap, f"{x:e},1e-7"), ("LIAS?", "0"),
        ("*CLS", None), (snap, f"{-x:e},1e-7"), ("LIAS?", "0")]) as inst:
        reader = LockinHallReader(inst, Limits(), 1e4, sleep=slept.append)
        r = reader.read(1e-4)                       # SLVL = 1e-4 A * 1e4 ohm = 1 V rms
        assert r.hall_resistance == pytest.approx(x / 1e-4)
        r = reader.read(1e-4)                       # settings sent once, waited each read
        assert r.hall_resistance == pytest.approx(-x / 1e-4)
    assert slept == pytest.approx([10 * tau, 10 * tau])


def test_lockin_current_is_computed_from_the_slvl_read_back():
    """SR830: 5.3e-7 A through 1e4 ohm asks 5.3 mV; the instrument sets 2-mV steps (the role
    sends the rounded 0.006 V) and the current is the one that SLVL? reports."""
    with expected_protocol(SR830, [("*IDN?", "Stanford_Research_Systems,SR830,1,1")] + SR830_SETUP + [
        ("SLVL0.006", None), ("SLVL?", "0.006"),
        ("*CLS", None), ("SNAP? 1,2", "3e-7,0"), ("LIAS?", "0")]) as inst:
        r = LockinHallReader(inst, Limits(), 1e4, **NO_SLEEP).read(5.3e-7)
    assert r.read_current == pytest.approx(6e-7)
    assert r.hall_resistance == pytest.approx(3e-7 / 6e-7)


@pytest.mark.parametrize("cls, setup, slvl, snap, status, words", [
    (SR830, SR830_SETUP, [("SLVL1.000", None), ("SLVL?", "1.000")], "SNAP? 1,2", "4", "output overload"),
    (SR830, SR830_SETUP, [("SLVL1.000", None), ("SLVL?", "1.000")], "SNAP? 1,2", "8", "reference unlock"),
    (SR860, SR860_SETUP, [("SLVL 1.000000000e+00", None), ("SLVL?", "1")], "SNAP? X, Y", "16",
     "input range overload"),
])
def test_lockin_overload_or_unlock_refuses_the_reading(cls, setup, slvl, snap, status, words):
    with expected_protocol(cls, [("*IDN?", "Stanford_Research_Systems,X,1,1")] + setup + slvl + [
        ("*CLS", None), (snap, "1e-4,0"), ("LIAS?", status)]) as inst:
        with pytest.raises(RuntimeError, match=words):
            LockinHallReader(inst, Limits(), 1e4, **NO_SLEEP).read(1e-4)


def test_lockin_read_limit_is_the_peak_not_the_rms():
    """0.8 mA rms is under max_read_current = 1 mA, but its peak (1.13 mA) is not."""
    with expected_protocol(SR830, [("*IDN?", "SRS,SR830,1,1")]) as inst:
        reader = LockinHallReader(inst, Limits(max_read_current=1e-3), 1e3, **NO_SLEEP)
        with pytest.raises(LimitError, match="peak"):
            reader.read(8e-4)


def test_lockin_hall_reader_refuses_sine_out_of_range():
    with expected_protocol(SR860, [("*IDN?", "SRS,SR860,1,1")]) as inst:
        reader = LockinHallReader(inst, Limits(max_read_current=1e-3), 1e4, **NO_SLEEP)
        with pytest.raises(LimitError, match="SR860"):
            reader.read(5e-4)                       # needs 5 V rms, SR860 gives 2 V


def test_lockin_hall_reader_shutdown_never_raises():
    with expected_protocol(SR830, [("*IDN?", "SRS,SR830,1,1"), ("SLVL0.004", None)]) as inst:
        LockinHallReader(inst, Limits(), 1e4, **NO_SLEEP).shutdown()


# ----- SourceMeters (issue #12 items 1, 2, 9, 10) ---------------------------------------------
K2400_INIT = [(":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None),
              ("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C30")]
K2400_READ_SETUP = [
    (":SOURCE:FUNCTION CURR", None), (":SYSTEM:RSENSE 1", None), (":SYSTEM:RSENSE?", "1"),
    (":SENSE:VOLTAGE:PROTECTION 10", None), (":SOUR:VOLT:PROT 10", None),
    (":SOURCE:CURRENT:RANGE 0.001", None), (":SENSE:VOLTAGE:NPLCYCLES 1", None),
    (':SENS:FUNC "VOLT"', None), (":STAT:MEAS?", "0")]


def test_sourcemeter_hall_reader_2400():
    """4-wire sense on and read back, OVP at the compliance voltage, ±I, latched compliance."""
    vp, vm = 1.1e-4, -0.9e-4
    with expected_protocol(Keithley2400, K2400_INIT + K2400_READ_SETUP + [
        (":SOURCE:CURRENT 0.0001", None), ("OUTPUT 1", None),
        (":READ?", f"{vp:E},1E-04,+9.91E37,1.0,4.8E4"), (":SOURCE:CURRENT -0.0001", None),
        (":READ?", f"{vm:E},-1E-04,+9.91E37,1.1,4.8E4"), ("OUTPUT 0", None), (":STAT:MEAS?", "0"),
    ]) as inst:
        r = SourceMeterHallReader(inst, Limits()).read(1e-4)
        assert r.hall_resistance == pytest.approx((vp - vm) / 2 / 1e-4)


def test_sourcemeter_hall_reader_refuses_when_4_wire_does_not_stick():
    with expected_protocol(Keithley2400, K2400_INIT + [
        (":SOURCE:FUNCTION CURR", None), (":SYSTEM:RSENSE 1", None), (":SYSTEM:RSENSE?", "0"),
        ("SYST:ERR?", '0,"No error"')]) as inst:
        with pytest.raises(RuntimeError, match="remote sense did not turn on"):
            SourceMeterHallReader(inst, Limits()).read(1e-4)


def test_sourcemeter_hall_reader_2400_compliance_is_a_compliance_error():
    with expected_protocol(Keithley2400, K2400_INIT + K2400_READ_SETUP + [
        (":SOURCE:CURRENT 0.0001", None), ("OUTPUT 1", None),
        (":READ?", "1E-04,1E-04,+9.91E37,1.0,4.8E4"), (":SOURCE:CURRENT -0.0001", None),
        (":READ?", "-1E-04,-1E-04,+9.91E37,1.1,4.8E4"), ("OUTPUT 0", None),
        (":STAT:MEAS?", str(1 << 13)),              # OVP limited the source meanwhile
    ]) as inst:
        with pytest.raises(ComplianceError, match="read at ±0.0001 A"):
            SourceMeterHallReader(inst, Limits()).read(1e-4)


IDN_2450 = [("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,1,1"), ("*LANG?", "SCPI")]
K2450_PULSE_SETUP = [
    (":SOUR:FUNC CURR", None), (":SENS:VOLT:RSEN 0", None),
    (":SOUR:CURR:VLIM 10", None), (":SOUR:VOLT:PROT PROT10", None),
    (":SOUR:CURR:RANG:AUTO 0;:SOUR:CURR:RANG 0.02", None)]
TRIP_2450 = ":SOUR:CURR:VLIM:TRIP?;:SOUR:VOLT:PROT:TRIP?"


def _virtual():
    t = [0.0]
    return dict(sleep=lambda dt: t.__setitem__(0, t[0] + dt), now=lambda: t[0])


def test_sourcemeter_pulse_source_2450():
    """2-wire sense (compliance guards the channel), OVP, trip asked before OUTP OFF, floor."""
    with expected_protocol(Keithley2450, IDN_2450 + K2450_PULSE_SETUP + [
        (":SOUR:CURR:LEV 0.01", None), ("OUTPUT ON", None), (TRIP_2450, "0;0"), ("OUTPUT OFF", None),
        (":SOUR:CURR:LEV -0.01", None), ("OUTPUT ON", None), (TRIP_2450, "0;0"), ("OUTPUT OFF", None),
        (":SOUR:CURR?", "-1.0E-02"), (":SOUR:CURR:LEV -0.01", None), (":SOUR:CURR:LEV -0.005", None),
        (":SOUR:CURR:LEV 0", None), ("OUTPUT OFF", None),
    ]) as inst:
        src = SourceMeterPulseSource(inst, Limits(), **_virtual())
        assert src.pulse(0.01, 5e-3) == pytest.approx(5e-3)
        assert src.pulse(-0.01, 6e-3) == pytest.approx(6e-3)
        with pytest.raises(LimitError):
            src.pulse(0.5, 5e-3)
        with pytest.raises(LimitError, match="min_smu_pulse_width"):
            src.pulse(0.01, 1e-3)                    # 1 ms: inside min/max_pulse_width, under the SMU floor
        from labspin.drivers.smu import shutdown_sourcemeter
        shutdown_sourcemeter(inst, steps=3)


def test_sourcemeter_pulse_source_2450_trip_names_the_pulse():
    with expected_protocol(Keithley2450, IDN_2450 + K2450_PULSE_SETUP + [
        (":SOUR:CURR:LEV 0.01", None), ("OUTPUT ON", None), (TRIP_2450, "1;0"), ("OUTPUT OFF", None),
    ]) as inst:
        src = SourceMeterPulseSource(inst, Limits(), **_virtual())
        with pytest.raises(ComplianceError, match="0.01 A, 0.005 s SourceMeter pulse"):
            src.pulse(0.01, 5e-3)


def test_sourcemeter_pulse_source_2400_reads_the_latched_compliance_event():
    with expected_protocol(Keithley2400, K2400_INIT + [
        (":SOURCE:FUNCTION CURR", None), (":SYSTEM:RSENSE 0", None),
        (":SENSE:VOLTAGE:PROTECTION 10", None), (":SOUR:VOLT:PROT 10", None),
        (":SOURCE:CURRENT:RANGE 0.02", None), (":SOURCE:CURRENT 0.01", None), (":STAT:MEAS?", "0"),
        ("OUTPUT 1", None), ("OUTPUT 0", None), (":STAT:MEAS?", "0"),
        ("OUTPUT 1", None), ("OUTPUT 0", None), (":STAT:MEAS?", str(1 << 14)),
    ]) as inst:
        src = SourceMeterPulseSource(inst, Limits(), **_virtual())
        assert src.pulse(0.01, 5e-3) == pytest.approx(5e-3)
        with pytest.raises(ComplianceError, match="compliance"):
            src.pulse(0.01, 5e-3)


def test_one_2400_as_pulse_source_and_reader_toggles_sense_and_verifies_4_wire_once():
    """Pulses in 2-wire (compliance guards the channel), reads in 4-wire (the cross)."""
    read = [(":SOURCE:CURRENT 0.0001", None), ("OUTPUT 1", None),
            (":READ?", "1E-04,1E-04,+9.91E37,1.0,4.8E4"), (":SOURCE:CURRENT -0.0001", None),
            (":READ?", "-1E-04,-1E-04,+9.91E37,1.1,4.8E4"), ("OUTPUT 0", None), (":STAT:MEAS?", "0")]
    pulse = [("OUTPUT 1", None), ("OUTPUT 0", None), (":STAT:MEAS?", "0")]
    with expected_protocol(Keithley2400, K2400_INIT + K2400_INIT[1:] + [
        (":SOURCE:FUNCTION CURR", None), (":SYSTEM:RSENSE 0", None),
        (":SENSE:VOLTAGE:PROTECTION 10", None), (":SOUR:VOLT:PROT 10", None),
        (":SOURCE:CURRENT:RANGE 0.02", None), (":SOURCE:CURRENT 0.01", None), (":STAT:MEAS?", "0"),
    ] + pulse + [
        (":SYSTEM:RSENSE 1", None), (":SYSTEM:RSENSE?", "1"), (":SOURCE:CURRENT:RANGE 0.001", None),
        (":SENSE:VOLTAGE:NPLCYCLES 1", None), (':SENS:FUNC "VOLT"', None),
    ] + read + [
        (":SYSTEM:RSENSE 0", None), (":SOURCE:CURRENT:RANGE 0.02", None), (":SOURCE:CURRENT 0.01", None),
    ] + pulse + [(":SYSTEM:RSENSE 1", None), (":SOURCE:CURRENT:RANGE 0.001", None)] + read) as inst:
        src, reader = SourceMeterPulseSource(inst, Limits(), **_virtual()), SourceMeterHallReader(inst, Limits())
        for _ in range(2):
            src.pulse(0.01, 5e-3)
            reader.read(1e-4)


def test_sourcemeter_2450_in_tsp_mode_is_refused_in_one_line():
    with expected_protocol(Keithley2450, [("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,1,1"),
                                          ("*LANG?", "TSP")]) as inst:
        with pytest.raises(UserError, match=r"TSP command set.*\*LANG SCPI.*restart") as e:
            SourceMeterHallReader(inst, Limits())
    assert "\n" not in str(e.value)


# ----- registry ---------------------------------------------------------------------------------
def test_driver_registry():
    assert set(DRIVERS) == {"keithley6221", "keithley2182", "sr830", "sr860", "keithley2400", "keithley2450"}
    assert DRIVERS["keithley6221"] is Keithley6221
    assert issubclass(DRIVERS["sr830"], SR830) and issubclass(DRIVERS["keithley2450"], Keithley2450)


def test_open_instrument_unknown_driver():
    with pytest.raises(UserError, match="keithley9999"):
        open_instrument("keithley9999", "GPIB0::12::INSTR")


def test_open_instrument_bad_address_names_it():
    with pytest.raises(UserError, match="NOT-AN-ADDRESS"):
        open_instrument("keithley6221", "NOT-AN-ADDRESS", visa_library="@nonexistent-backend")


def test_pulse_source_and_reader_share_one_6221_without_undoing_each_other():
    three = ",".join(f"{v:E},{i:E}" for i, v in enumerate([1e-4, 1e-4, 1e-4]))
    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_SETUP + PDEL_FIRE + OPEN_DELT + [
        # known state, compliance, buffer format and the 2182A were already set by the pulse source;
        # Delta settings may change while Pulse Delta is armed, SWE:COUN (both runs) may not
        (":UNIT:VOLT:DC V", None), (":SOUR:DELT:DELay 0.002", None), (":SOUR:DELT:COUN 3", None),
        (":SOUR:SWE:ABOR", None), (":SOUR:SWEep:COUN 1", None), (":SOUR:DELT:CAB ON", None),
        (":TRAC:POIN 3", None)] + CHECKED + [(":SOUR:DELT:HIGH 0.0001", None)]
        + DELTA_ARM + [(DELTA_GO[0][0], "3"), (":TRAC:DATA?", three),
        (":SOUR:PDEL:HIGH -0.01", None)] + PDEL_FIRE     # Delta armed: no abort for a PDEL setting
        + DELTA_ARM + [(DELTA_GO[0][0], "3"), (":TRAC:DATA?", three)]) as inst:
        src = K6221PulseSource(inst, Limits(), **NO_SLEEP)
        src.pulse(0.01, 1e-4)
        reader = DeltaHallReader(inst, Limits(), count=3, **NO_SLEEP)
        reader.read(1e-4)
        src.pulse(-0.01, 1e-4)
        assert reader.read(1e-4).hall_resistance == pytest.approx(1.0)


# ----- sweeps, custom lists and the Pulse Delta Hall reader (hardware-timed blocks) --------------
@pytest.mark.parametrize("prop, value, command", [
    ("sweep_spacing", "list", ":SOUR:SWE:SPAC LIST"),
    ("sweep_spacing", "linear", ":SOUR:SWE:SPAC LIN"),
    ("sweep_ranging", "best", ":SOUR:SWE:RANG BEST"),
    ("sweep_ranging", "fixed", ":SOUR:SWE:RANG FIX"),
    ("sweep_count", 1, ":SOUR:SWE:COUN 1"),
    ("sweep_count", "INF", ":SOUR:SWE:COUN INF"),
    ("sweep_compliance_abort", False, ":SOUR:SWE:CAB 0"),
    ("sweep_list_currents", [0.01, -1e-4, 0.105], ":SOUR:LIST:CURR 0.01,-0.0001,0.105"),
    ("sweep_list_currents", (1e-4,), ":SOUR:LIST:CURR 0.0001"),
    ("sweep_list_currents_append", [-0.00964], ":SOUR:LIST:CURR:APP -0.00964"),
    ("sweep_list_delays", [5e-3, 1e-3], ":SOUR:LIST:DEL 0.005,0.001"),
    ("sweep_list_delays_append", [2.5], ":SOUR:LIST:DEL:APP 2.5"),
    ("pulse_delta_sweep", True, ":SOUR:PDEL:SWE 1"),
])
def test_6221_sweep_setters(prop, value, command):
    with expected_protocol(Keithley6221, [(command, None)]) as inst:
        setattr(inst, prop, value)


@pytest.mark.parametrize("prop, query, reply, value", [
    ("sweep_spacing", ":SOUR:SWE:SPAC?", "LIST", "list"),
    ("sweep_ranging", ":SOUR:SWE:RANG?", "BEST", "best"),
    ("sweep_count", ":SOUR:SWE:COUN?", "1", 1),
    ("sweep_compliance_abort", ":SOUR:SWE:CAB?", "0", False),
    ("sweep_list_currents", ":SOUR:LIST:CURR?", "1.000000E-02,-1.000000E-04", [0.01, -1e-4]),
    ("sweep_list_currents", ":SOUR:LIST:CURR?", "1.000000E-04", [1e-4]),     # still a list
    ("sweep_list_current_points", ":SOUR:LIST:CURR:POIN?", "22", 22),
    ("sweep_list_delays", ":SOUR:LIST:DEL?", "5.000000E-03,5.000000E-03", [5e-3, 5e-3]),
    ("sweep_list_delay_points", ":SOUR:LIST:DEL:POIN?", "2", 2),
])
def test_6221_sweep_getters(prop, query, reply, value):
    with expected_protocol(Keithley6221, [(query, reply)]) as inst:
        assert getattr(inst, prop) == value


@pytest.mark.parametrize("prop, value", [
    ("sweep_spacing", "random"), ("sweep_ranging", "fastest"), ("sweep_count", 0),
    ("sweep_count", 10000), ("sweep_list_currents", [0.01, 0.2]),   # refused, not clipped
    ("sweep_list_currents", []), ("sweep_list_currents", "0.01"),
    ("sweep_list_currents", [float("nan")]), ("sweep_list_currents", [1e-4] * 101),
    ("sweep_list_currents_append", [-0.2]), ("sweep_list_delays", [0.0]),
    ("sweep_list_delays", [1e6]), ("sweep_list_delays_append", [5e-4]),
])
def test_6221_sweep_refuses_out_of_range_before_writing(prop, value):
    with expected_protocol(Keithley6221, []) as inst:
        with pytest.raises(ValueError):
            setattr(inst, prop, value)


def test_6221_set_sweep_list_sends_chunks_of_at_most_100():
    cur = [1e-3 * (i % 7) for i in range(150)]
    dly = [5e-3] * 150
    fmt = lambda vals: ",".join(f"{v:g}" for v in vals)      # noqa: E731
    with expected_protocol(Keithley6221, [
        (f":SOUR:LIST:CURR {fmt(cur[:100])}", None), (f":SOUR:LIST:CURR:APP {fmt(cur[100:])}", None),
        (f":SOUR:LIST:DEL {fmt(dly[:100])}", None), (f":SOUR:LIST:DEL:APP {fmt(dly[100:])}", None),
    ]) as inst:
        inst.set_sweep_list(cur, dly)
    with expected_protocol(Keithley6221, []) as inst:          # checked before anything is sent
        with pytest.raises(ValueError):
            inst.set_sweep_list([1e-3, 2e-3], [5e-3])
        with pytest.raises(ValueError):
            inst.set_sweep_list([1e-3] * 150 + [0.2], [5e-3] * 151)


PDEL_READER_SETUP = [(":SOUR:SWE:ABOR", None), ("*CLS", None), (":SOUR:CURR 0", None),
                     (":SOUR:CURR:COMP 10", None), (":UNIT:VOLT:DC V", None), (":SOUR:PDEL:LOW 0", None),
                     (":SOUR:PDEL:LME 2", None), (":SOUR:SWE:SPAC LIST", None), (":SOUR:SWE:RANG BEST", None),
                     (":SOUR:SWE:COUN 1", None), (":SOUR:SWE:CAB 1", None), (":FORM:ELEM READ,TST", None),
                     ] + NVM_SETUP + CHECKED


def _trace(readings, cycle=0.1):
    return ",".join(f"{v:E},{i * cycle:E}" for i, v in enumerate(readings))


def test_pulse_delta_reader_block_is_one_list_sweep():
    from labspin.drivers.hall import PulseDeltaHallReader
    from labspin.protocols import Step

    steps = [Step(0, 0, -0.00964, 1e-4, 1e-4), Step(0, 1, 0.005415, 1e-4, 1e-4),
             Step(0, 2, 0.0, 0.0, -1e-4)]                       # read-only step: its read only
    data = _trace([0.0, -8e-5, 0.0, -7.9e-5, 7.9e-5])
    sweep = [(PDEL_GO[0][0], "5;0"), (":TRAC:DATA?", data)]
    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_READER_SETUP + [
        (":SOUR:PDEL:SWE 1", None), (":SOUR:PDEL:WIDT 0.0001", None), (":SOUR:PDEL:SDEL 5e-05", None),
        (":TRAC:POIN 5", None),
        (":SOUR:LIST:CURR -0.00964,0.0001,0.005415,0.0001,-0.0001", None),
        (":SOUR:LIST:DEL 0.1,0.1,0.1,0.1,0.1", None),         # 5 PLC at 50 Hz
        (":SOUR:LIST:COMP 10,10,10,10,10", None),              # with the lists: none stale
    ] + PDEL_ARM + sweep + sweep) as inst:    # same block again: lists cached, still armed
        reader = PulseDeltaHallReader(inst, Limits(), **NO_SLEEP)
        for _ in range(2):
            r = reader.run_block(steps)
            assert [x.hall_resistance for x in r] == pytest.approx([-0.8, -0.79, -0.79])
            assert [x.read_current for x in r] == [1e-4, 1e-4, -1e-4]
            assert [x.timestamp for x in r] == pytest.approx([0.1, 0.3, 0.4])


def test_pulse_delta_reader_lone_read_and_sharing_with_the_pulse_source():
    from labspin.drivers.hall import PulseDeltaHallReader

    with expected_protocol(Keithley6221, OPEN_PDEL + PDEL_SETUP + PDEL_FIRE + OPEN_PDEL + [
        # compliance, low level, LME, buffer format and the 2182A were already set by the pulse
        # source; Pulse Delta is armed, so the first sweep setting aborts it
        (":UNIT:VOLT:DC V", None), (":SOUR:SWE:ABOR", None), (":SOUR:SWE:SPAC LIST", None),
        (":SOUR:SWE:RANG BEST", None), (":SOUR:SWE:COUN 1", None), (":SOUR:SWE:CAB 1", None),
        ] + CHECKED + [(":SOUR:PDEL:SWE 1", None),
        (":SOUR:PDEL:WIDT 0.00011", None), (":SOUR:PDEL:SDEL 5.5e-05", None),
        (":SOUR:LIST:CURR 0.0001", None), (":SOUR:LIST:DEL 0.1", None), (":SOUR:LIST:COMP 10", None),
        ] + PDEL_ARM + [(PDEL_GO[0][0], "1;0"), (":TRAC:DATA?", "5.000000E-05,0.000000E+00"),
        # back to a fixed-output pulse: abort the armed sweep, sweep output off, width back down
        (":SOUR:SWE:ABOR", None), (":SOUR:PDEL:SWE 0", None), (":SOUR:PDEL:HIGH -0.01", None),
        (":SOUR:PDEL:SDEL 5e-05", None), (":SOUR:PDEL:WIDT 0.0001", None)] + PDEL_FIRE) as inst:
        src = K6221PulseSource(inst, Limits(), **NO_SLEEP)
        src.pulse(0.01, 1e-4)
        reader = PulseDeltaHallReader(inst, Limits(), **NO_SLEEP)
        r = reader.read(1e-4)
        assert r.hall_resistance == pytest.approx(0.5) and r.hall_voltage == pytest.approx(5e-5)
        src.pulse(-0.01, 1e-4)


@pytest.mark.parametrize("steps", [
    [(0.03, 1e-4, 1e-4)],                    # write current over max_pulse_current
    [(0.01, 1e-4, 1e-4), (0.01, 1e-4, 2e-3)],   # second read over max_read_current
    [(0.01, 1e-5, 1e-4)],                    # width under min_pulse_width (write and read)
    [(0.01, 1e-4, 0.0)],                     # a zero read current cannot give R_H
    [(0.01, 1e-4, 1e-4), (0.01, 2e-4, 1e-4)],   # two widths in one block
])
def test_pulse_delta_reader_checks_the_whole_block_before_any_write(steps):
    from labspin.drivers.hall import PulseDeltaHallReader
    from labspin.protocols import Step

    with expected_protocol(Keithley6221, OPEN_PDEL) as inst:
        reader = PulseDeltaHallReader(inst, Limits(), **NO_SLEEP)
        with pytest.raises(ValueError):          # LimitError is a ValueError
            reader.run_block([Step(0, i, c, w, r) for i, (c, w, r) in enumerate(steps)])


def test_pulse_delta_reader_needs_the_2182_and_instrument_limits():
    from labspin.drivers.hall import PulseDeltaHallReader

    with expected_protocol(Keithley6221, [("*IDN?", IDN_6221), (":SOUR:PDEL:NVPR?", "0")]) as inst:
        with pytest.raises(UserError, match="2182A"):
            PulseDeltaHallReader(inst, Limits())
    with expected_protocol(Keithley6221, []) as inst:
        with pytest.raises(LimitError):
            PulseDeltaHallReader(inst, Limits(max_pulse_current=0.2))
        with pytest.raises(LimitError):
            PulseDeltaHallReader(inst, Limits(), cycle_time=1e-4)


@pytest.mark.parametrize("name", ["keithley6221", "keithley2400", "keithley2450", "sr830", "sr860"])
def test_plain_attribute_access_is_exact_without_reserved_names(name):
    """These driver classes skip pymeasure's reserved-name guard on attribute reads (speed); that
    is exact only while the class has no dynamic property, hence no reserved name."""
    from pymeasure.instruments.common_base import DynamicProperty
    cls = DRIVERS[name]
    assert cls.__getattribute__ is object.__getattribute__
    assert not [n for n, v in inspect.getmembers(cls) if isinstance(v, DynamicProperty)]
    constructor = [(":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None)] \
        if name == "keithley2400" else []                       # pymeasure's 2400 writes in __init__
    with expected_protocol(cls, constructor) as k:
        assert k._special_names == []
