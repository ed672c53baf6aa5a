"""Issue #12, the 6221/2182A defects: the simulated 6221 is as strict as the real one (each first
test shows what the old driver did fail against it), and the roles hold against it.

Manual sections: UM = 6220/6221 User's Manual, RM = Reference Manual (../shared/reference/scpi.md).
"""
from __future__ import annotations

import pyvisa
import pytest
from pyvisa import constants
from pyvisa.errors import VisaIOError

from fakes import FixedHallBar
from labspin.drivers import open_instrument
from labspin.drivers.hall import DeltaHallReader, PulseDeltaHallReader
from labspin.drivers.pulse import K6221PulseSource
from labspin.drivers.roles import ComplianceError, Limits
from labspin.sim_backend.errors import SimulatorInputError
from labspin.protocols import Step
from labspin.sim_backend import SimBench
from labspin.sim_backend.instruments.keithley6221 import ARM_TIME

K6221 = "GPIB0::12::INSTR"


def _bench(**kw) -> SimBench:
    return SimBench(FixedHallBar(r_h=0.5, r_xx=1000.0), **kw)


def _raw(b: SimBench):
    return pyvisa.ResourceManager(b.visa_library).open_resource(K6221)


def _errors(k) -> list[str]:
    out = []
    while not (e := k.query("SYST:ERR?").strip()).startswith("0,"):
        out.append(e)
    return out


def _list_sweep(k, b, currents, delays, *, comp=20, cab=False, arm=True):
    for msg in (f"SOUR:CURR:COMP {comp}", "SOUR:PDEL:LOW 0", "SOUR:PDEL:WIDT 1e-4",
                "SOUR:PDEL:SDEL 5e-5", "SOUR:PDEL:SWE ON", "SOUR:SWE:SPAC LIST", "SOUR:SWE:COUN 1",
                f"SOUR:SWE:CAB {int(cab)}", "TRAC:POIN 1000",
                "SOUR:LIST:CURR " + ",".join(f"{c:g}" for c in currents),
                "SOUR:LIST:DEL " + ",".join(f"{d:g}" for d in delays)):
        k.write(msg)
    if arm:
        k.write("SOUR:PDEL:ARM")
        b.clock.advance(ARM_TIME)


def _roles(b: SimBench, limits: Limits | None = None, **kw):
    k = open_instrument("keithley6221", b.addresses["keithley6221"], visa_library=b.visa_library)
    return k, limits or Limits(), kw


# ----- 3. Pulse Delta timing follows the power line ---------------------------------------------
@pytest.mark.parametrize("f, fixed, swept", [
    (50, 0.1, [0.1, 0.12, 0.3]),          # 5 PLC; 2 ms -> 5 PLC, 110 ms -> 6 PLC, 300 ms = 15 PLC
    (60, 5 / 60, [5 / 60, 7 / 60, 0.3]),   # 5 PLC; 2 ms -> 5 PLC, 110 ms -> 7 PLC, 300 ms = 18 PLC
])
def test_pulse_delta_cycles_are_line_synchronised(f, fixed, swept):
    b = _bench(line_frequency=f)
    k = _raw(b)
    assert k.query("SYST:LFR?").strip() == str(f)
    # fixed output: PDEL:INT power-line cycles (UM 5-28)
    for msg in ("SOUR:PDEL:HIGH 1e-3", "SOUR:PDEL:COUN 3", "SOUR:PDEL:INT 5", "SOUR:PDEL:SWE OFF",
                "TRAC:POIN 3", "SOUR:PDEL:ARM"):
        k.write(msg)
    b.clock.advance(ARM_TIME)
    t0 = b.clock.now
    k.write("INIT:IMM")
    assert b.clock.now - t0 == pytest.approx(3 * fixed)
    k.write("SOUR:SWE:ABOR")
    # sweep output: each list delay is a cycle time, on whole line cycles, never under 5 PLC
    # (the old driver assumed a 5 ms cycle: it lasts 5 PLC on the instrument)
    _list_sweep(k, b, [1e-3, 2e-3, 3e-3], [2e-3, 0.11, 0.3])
    t0 = b.clock.now
    k.write("INIT:IMM")
    assert b.clock.now - t0 == pytest.approx(sum(swept))
    stamps = [float(x) for x in k.query("TRAC:DATA?").split(",")][1::2]
    assert stamps == pytest.approx([0.0, swept[0], swept[0] + swept[1]])
    assert _errors(k) == []
    b.close()


def test_line_frequency_is_50_or_60():
    with pytest.raises(SimulatorInputError, match="line_frequency"):
        SimBench(FixedHallBar(), line_frequency=55)


def test_pulse_delta_reader_block_takes_the_real_time_and_says_so():
    b = _bench(line_frequency=60)
    k, limits, _ = _roles(b)
    reader = PulseDeltaHallReader(k, limits)
    steps = [Step(0, i, 0.01 * (-1) ** i, 1e-4, 1e-4) for i in range(5)]
    t0 = b.clock.now
    r = reader.run_block(steps)
    dt = b.clock.now - t0
    # 10 pulses; the 100 ms list delay is 6 PLC at 60 Hz; arming, the set-up's own time on top
    assert dt == pytest.approx(10 * 0.1 + ARM_TIME, abs=0.06)
    assert [x.timestamp for x in r] == pytest.approx([0.1 + 0.2 * i for i in range(5)])
    assert reader.sweep_time(10, 1e-4) == pytest.approx(1.0)     # what the timeouts allow for
    assert r[0].hall_resistance == pytest.approx(0.5, abs=1e-3)
    b.close()


# ----- 4. Arming takes time; INIT:IMM before it is not a start -----------------------------------
def test_init_before_armed_is_refused_so_arm_and_init_in_one_message_reads_nothing():
    b = _bench()
    k = _raw(b)
    for msg in ("SOUR:PDEL:HIGH 1e-3", "SOUR:PDEL:COUN 1", "TRAC:POIN 1"):
        k.write(msg)
    k.write(":TRAC:CLE;:SOUR:PDEL:ARM;:INIT:IMM")              # what the old driver sent
    assert k.query("TRAC:POIN:ACT?").strip() == "0"
    assert _errors(k) == ['-221,"Settings conflict"']
    assert k.query("SOUR:PDEL:ARM?").strip() == "0"            # still arming
    b.clock.advance(ARM_TIME)
    assert k.query("SOUR:PDEL:ARM?").strip() == "1"
    k.write("INIT:IMM")
    assert k.query("TRAC:POIN:ACT?").strip() == "1"
    # a finished run stays armed: INIT again re-starts it, its readings overwrite the buffer
    k.write("INIT:IMM")
    assert k.query("TRAC:POIN:ACT?").strip() == "1" and _errors(k) == []
    b.close()


def test_settings_of_an_armed_run_are_refused_until_aborted():
    b = _bench()
    k = _raw(b)
    k.write("SOUR:PDEL:ARM")
    b.clock.advance(ARM_TIME)
    k.write("SOUR:PDEL:HIGH 2e-3")                             # Pulse Delta armed: refused
    k.write("SOUR:LIST:CURR 1e-3")                             # sweep lists: refused
    k.write("SOUR:DELT:HIGH 1e-4")                             # a Delta setting: not this run's
    assert _errors(k) == ['-221,"Settings conflict"'] * 2
    assert float(k.query("SOUR:PDEL:HIGH?")) == 1e-3
    k.write("SOUR:SWE:ABOR")
    k.write("SOUR:PDEL:HIGH 2e-3")
    assert float(k.query("SOUR:PDEL:HIGH?")) == 2e-3 and _errors(k) == []
    b.close()


def test_roles_arm_poll_and_start_in_separate_messages_and_abort_before_changes():
    b = _bench()
    k, limits, _ = _roles(b)
    src, reader = K6221PulseSource(k, limits), DeltaHallReader(k, limits)
    pd = PulseDeltaHallReader(k, limits)
    for i in range(3):
        src.pulse(0.01 * (-1) ** i, 1e-4)
        reader.read(1e-4)
        pd.run_block([Step(0, 0, 0.01, 1e-4, 1e-4)])
    inst = b.instrument(K6221)
    assert list(inst.errors) == []                             # no refused setting, no early INIT
    writes = [r.message.upper() for r in b.log if r.kind == "write" and r.address == K6221]
    assert not [w for w in writes if "ARM" in w and "INIT" in w]
    last_arm = None
    for w in writes:                                           # every INIT after an ARM? = 1
        if w.endswith(":ARM"):
            last_arm = "armed?"
        elif w.endswith(":ARM?"):
            last_arm = "polled"
        elif "INIT" in w:
            assert last_arm in ("polled", None)
    b.close()


# ----- 5. TRAC:DATA? on an empty buffer -----------------------------------------------------------
def test_empty_buffer_gives_error_230_and_no_reply():
    b = _bench()
    k = _raw(b)
    k.timeout = 50
    with pytest.raises(VisaIOError) as e:
        k.query("TRAC:DATA?")                                  # the old Delta reader's first poll
    assert e.value.error_code == constants.StatusCode.error_timeout
    # -230 from the query; the read that found nothing to send adds -420 (Query UNTERMINATED)
    assert _errors(k)[0] == '-230,"Data corrupt or stale"'
    b.close()


def test_delta_reader_polls_the_count_not_the_data():
    b = _bench()
    k, limits, _ = _roles(b)
    r = DeltaHallReader(k, limits, count=2).read(1e-4)
    assert r.hall_resistance == pytest.approx(0.5, abs=1e-3)
    writes = [r.message for r in b.log if r.kind == "write" and r.address == K6221]
    i = writes.index(":TRAC:DATA?")
    assert writes[i - 1].endswith(":TRAC:POIN:ACT?")           # asked only once readings are there
    assert list(b.instrument(K6221).errors) == []
    b.close()


# ----- 6. A late reply after a VISA timeout -------------------------------------------------------
def test_a_late_reply_goes_to_the_next_read_until_a_device_clear():
    b = _bench()
    k = _raw(b)
    k.timeout = 50
    b.inject_fault(K6221, "late")
    with pytest.raises(VisaIOError):
        k.query("SOUR:CURR:COMP?")                             # times out ...
    assert k.query("*IDN?").strip() == "1.000000E+01"          # ... and arrives for the next one
    assert "6221" in k.read()                                  # (the *IDN? reply waits behind it)
    b.inject_fault(K6221, "late")
    with pytest.raises(VisaIOError):
        k.query("SOUR:CURR:COMP?")
    k.clear()                                                  # VISA device clear drops it
    assert "6221" in k.query("*IDN?")
    b.close()


def test_after_a_timeout_the_role_aborts_clears_then_asks_and_no_stale_reply_is_taken():
    b = _bench()
    k, limits, _ = _roles(b)
    src = K6221PulseSource(k, limits)
    src.pulse(0.01, 1e-4)
    k.adapter.connection.timeout = 50
    n0 = len(b.log)
    # ABOR, HIGH, ARM, ARM?: then the reply to the start message and its first poll is late
    b.inject_fault(K6221, "late", after=4)
    with pytest.raises(VisaIOError) as e:
        src.pulse(-0.01, 1e-4)
    assert e.value.error_code == constants.StatusCode.error_timeout   # not a parse error
    writes = [r.message for r in b.log[n0:] if r.kind == "write"]
    start = next(i for i, w in enumerate(writes) if "INIT" in w)
    assert writes[start + 1] == ":SOUR:SWE:ABOR"               # at once, before any query
    # the late "<count>;<events>" reply was dropped by the device clear: STAT:MEAS? got its own
    # answer (one integer), never the late compound reply
    assert writes[start + 2] == ":STAT:MEAS?"
    reads = [r.message for r in b.log[n0:] if r.kind == "read"]
    assert not [r for r in reads if ";" in r] and not b.instrument(K6221)._out
    src.pulse(-0.01, 1e-4)                                     # set up again, works
    b.close()


def test_shutdown_ramps_from_the_true_level_not_from_a_late_reply():
    b = _bench()
    k, _, _ = _roles(b)
    k.adapter.connection.timeout = 50
    k.source_compliance = 10
    k.source_current = 2e-3
    k.enable_source()
    b.inject_fault(K6221, "late")
    with pytest.raises(VisaIOError):
        k.ask(":SOUR:CURR:COMP?")                              # "1.000000E+01" is on its way
    k.shutdown()
    levels = [lvl for _t, on, lvl in b.output_history(K6221) if on]
    assert levels[-10:] == pytest.approx([2e-3 * (9 - i) / 10 for i in range(10)])   # 2 mA -> 0
    assert b.output_history(K6221)[-1][1:] == (False, 0.0)
    b.close()


# ----- 8. A known starting state ------------------------------------------------------------------
def test_roles_set_the_2182_over_the_serial_link_zero_the_dc_level_and_clear_the_compliance_list():
    b = _bench()
    k = _raw(b)
    k.write("SOUR:CURR 0.004")                                 # left by someone else
    k.write("SOUR:LIST:COMP 0.5")                              # a stale compliance list
    nvm = b.instrument(b.addresses["keithley2182"])
    assert nvm.s["nplc"] == 5.0 and nvm._auto[1]
    k, limits, _ = _roles(b)
    reader = PulseDeltaHallReader(k, limits, nvm_range=0.01, nvm_nplc=2)
    steps = [Step(0, 0, 0.003, 1e-4, 1e-4)]                    # 3 mA × 1 kΩ = 3 V > 0.5 V
    r = reader.run_block(steps)                                # no trip: the stale list is gone
    assert r[0].hall_resistance == pytest.approx(0.5, abs=1e-3)
    inst = b.instrument(K6221)
    assert inst.s["level"] == 0.0 and inst.s["list_comp"] == (10.0, 10.0)
    assert nvm.s["nplc"] == 2.0 and nvm._range[1] == 0.01 and not nvm._auto[1]
    b.close()


def test_stale_compliance_list_applies_per_point_in_the_simulator():
    b = _bench()
    k = _raw(b)
    k.write("SOUR:LIST:COMP 0.5")
    _list_sweep(k, b, [3e-3, 3e-3], [0.1, 0.1])                # what the old reader did: no LIST:COMP
    k.write("INIT:IMM")
    readings = [float(x) for x in k.query("TRAC:DATA?").split(",")][0::2]
    # point 0 at 0.5 V compliance: 0.5 mA flowed; point 1 beyond the list: SOUR:CURR:COMP (20 V)
    assert readings == pytest.approx([0.5e-3 * 0.5, 3e-3 * 0.5], abs=1e-6)
    assert int(k.query("STAT:MEAS?")) & 8
    b.close()


def test_setup_reads_the_error_queue():
    b = _bench()
    k, limits, _ = _roles(b)
    src = K6221PulseSource(k, limits)
    b.inject_fault(K6221, "error", after=2)                    # after SWE:ABOR and *CLS
    with pytest.raises(RuntimeError, match="errors after set-up: -310"):
        src.pulse(0.01, 1e-4)
    src.pulse(0.01, 1e-4)                                      # set up again, clean
    b.close()


# ----- 9. SOUR:SWE:CAB ON: the 6221 stops a Pulse Delta sweep at compliance -----------------------
@pytest.mark.parametrize("cab", [False, True])
def test_compliance_abort_stops_the_list_sweep(cab):
    b = _bench()
    k = _raw(b)
    _list_sweep(k, b, [1e-3, 0.01, 1e-3], [0.1] * 3, comp=5, cab=cab)    # 10 mA × 1 kΩ > 5 V
    k.write("STAT:OPER?")
    k.read()
    k.write("INIT:IMM")
    n = int(k.query("TRAC:POIN:ACT?"))
    oper = int(k.query("STAT:OPER?"))
    if cab:
        assert n == 1 and oper & 4                             # stopped: bit 2, sweep aborted
    else:
        assert n == 3 and not oper & 4                         # clamped at 5 mA, went on
    assert int(k.query("STAT:MEAS?")) & 8
    b.close()


def test_pulse_delta_reader_sets_compliance_abort_and_reports_compliance():
    b = _bench()
    k, _, _ = _roles(b)
    reader = PulseDeltaHallReader(k, Limits(compliance_voltage=5))
    with pytest.raises(ComplianceError, match="compliance"):
        reader.run_block([Step(0, i, 0.0, 0.0, 1e-4) for i in range(3)]
                         + [Step(0, 3, 0.01, 1e-4, 1e-4)] + [Step(0, 4, 0.0, 0.0, 1e-4)])
    inst = b.instrument(K6221)
    assert inst.s["swe_cab"] is True
    assert len(inst.buffer) == 3                               # stopped at the 10 mA pulse
    assert not inst.output_on or inst.level == 0.0
    b.close()


def test_dry_run_estimate_follows_the_line_frequency():
    from labspin.dryrun import seconds_per_point

    assert seconds_per_point("pulse_delta", 50) == pytest.approx(0.2)      # 2 cycles of 5 PLC
    assert seconds_per_point("pulse_delta", 60) == pytest.approx(1 / 6)
    # a Pulse Delta pulse (arm + 5 PLC) and a Delta read (arm + 3 A/Ds of 2 ms + 5 PLC)
    assert seconds_per_point("dc_delta", 50) == pytest.approx(0.2 + 0.1 + 3 * 0.102)
    assert seconds_per_point("dc_delta", 60) < seconds_per_point("dc_delta", 50)
    # and the simulator agrees: one staircase point in dc_delta mode, virtual seconds
    b = _bench()
    k, limits, _ = _roles(b)
    src, reader = K6221PulseSource(k, limits), DeltaHallReader(k, limits)
    src.pulse(0.01, 1e-4)
    reader.read(1e-4)
    t0 = b.clock.now
    src.pulse(-0.01, 1e-4)
    reader.read(1e-4)
    assert b.clock.now - t0 == pytest.approx(seconds_per_point("dc_delta", 50), rel=0.05)
    b.close()
