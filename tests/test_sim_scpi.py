"""SCPI parsing and instrument command sets of the simulated bench, through raw pyvisa sessions."""
from __future__ import annotations

import warnings

import pytest
import pyvisa

from fakes import RoundingHallBar
from labspin.sim_backend import SimBench
from labspin.sim_backend.instruments.keithley6221 import ARM_TIME
from labspin.sim_backend.scpi import CommandTable, KeithleyParser, parse_srs, split_params

K6221, K2182, SR830, SR860, K2400, K2450 = (
    "GPIB0::12::INSTR", "GPIB0::7::INSTR", "GPIB0::8::INSTR", "GPIB0::9::INSTR",
    "GPIB0::24::INSTR", "GPIB0::18::INSTR")


@pytest.fixture
def bench():
    b = SimBench("tilted", seed=3)
    yield b
    b.close()


@pytest.fixture
def rm(bench):
    return pyvisa.ResourceManager(bench.visa_library)


def _table():
    calls = []
    t = CommandTable()
    t.add("[:SOURce]:CURRent[:LEVel][:IMMediate][:AMPLitude]",
          set=lambda i, p, s: calls.append(("curr", p)), query=lambda i, p, s: "curr?")
    t.add(":STATus:OPERation:ENABle", set=lambda i, p, s: calls.append(("enab", p)),
          query=lambda i, p, s: "enab?")
    t.add("[:SENSe]:VOLTage[:DC]:CHANnel#:RANGe[:UPPer]", set=lambda i, p, s: calls.append(("rang", p, s)))
    t.add("*CLS", set=lambda i, p, s: calls.append(("cls",)))
    return KeithleyParser(t), calls


@pytest.mark.parametrize("msg", [
    ":SOUR:CURR 0.001", "SOUR:CURR 0.001", "source:current 0.001", ":SOURCE:CURRENT:LEVEL:IMM:AMPL 0.001",
    "curr 0.001", "Curr:Lev 0.001", ":sour:curr:ampl 0.001"])
def test_short_long_case_and_optional_nodes(msg):
    parser, _ = _table()
    (cmd,) = parser.parse(msg)
    assert cmd.entry is not None and not cmd.query and cmd.params == ("0.001",)


def test_wrong_forms_are_undefined():
    parser, _ = _table()
    for msg in (":SOURC:CURR 1", ":SOUR:CURRE 1", ":LEV 1", ":SOUR:CURR:BOGUS 1"):
        assert parser.parse(msg)[0].entry is None, msg


def test_compound_path_rules_and_common_commands():
    parser, _ = _table()
    cmds = parser.parse(":stat:oper:enab 1; enab?")
    assert [c.entry.pattern for c in cmds] == [":STATus:OPERation:ENABle"] * 2
    assert cmds[1].query
    # a leading ':' after ';' resets to the root; '*' commands (also ':*CLS') keep the path
    cmds = parser.parse(":STAT:OPER:ENAB 1;*CLS;ENAB 2;:*CLS;:SOUR:CURR 1;")
    assert [c.entry.pattern for c in cmds] == [
        ":STATus:OPERation:ENABle", "*CLS", ":STATus:OPERation:ENABle", "*CLS",
        "[:SOURce]:CURRent[:LEVel][:IMMediate][:AMPLitude]"]
    # without the colon the second header would continue below STAT:OPER and be undefined
    assert parser.parse(":STAT:OPER:ENAB 1;SOUR:CURR 1")[1].entry is None


def test_numeric_suffixes():
    parser, _ = _table()
    assert parser.parse("SENS:VOLT:CHAN2:RANG 15")[0].sfx == (2,)
    assert parser.parse("sens1:volt:dc:chan1:rang:upp 0.1")[0].sfx == (1,)
    assert parser.parse("VOLT:CHAN:RANG 1")[0].sfx == (1,)       # missing suffix means 1


def test_quotes_protect_separators():
    assert split_params("'VOLT', \"a;b,c\" , 3") == ["'VOLT'", '"a;b,c"', "3"]
    parser, _ = _table()
    cmds = parser.parse(':SOUR:CURR "x;y";:*CLS')
    assert cmds[0].params == ('"x;y"',) and cmds[1].entry.pattern == "*CLS"


def test_srs_forms():
    assert parse_srs("SLVL1.000") == [("SLVL", False, ["1.000"], False)]
    assert parse_srs("OUTP?1") == [("OUTP", True, ["1"], False)]
    assert parse_srs("AUXV?1;") == [("AUXV", True, ["1"], False)]
    assert parse_srs("SNAP? X, Y") == [("SNAP", True, ["X", "Y"], True)]
    assert parse_srs("DDEF1,1,0")[0][2] == ["1", "1", "0"]


# ---- through pyvisa ---------------------------------------------------------------------------

def test_idn_each_instrument(rm):
    for addr, model in ((K6221, "6221"), (K2182, "2182A"), (SR830, "SR830"), (SR860, "SR860"),
                        (K2400, "2400"), (K2450, "2450")):
        r = rm.open_resource(addr)
        assert model in r.query("*IDN?")
        r.close()


def test_2182_read_termination_cr_has_no_warning(rm):
    nvm = rm.open_resource(K2182, read_termination="\r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nvm.query(":SENS:FUNC?") == '"VOLT:DC"'
        float(nvm.query(":READ?"))
    plain = rm.open_resource(K6221)
    assert plain.read_termination is None and plain.query("OUTP?").strip() == "0"


def test_pymeasure_strings_accepted_by_6221(rm, bench):
    k = rm.open_resource(K6221)
    for msg in ("status:queue:clear;*RST;:stat:pres;:*CLS;", ":SOUR:CURR:RANG:AUTO 0;:SOUR:CURR:RANG 0.002",
                ":ARM:SOUR IMM;:TRIG:SOUR IMM;", ":SOUR:DELT:DELay 0.1", "TRAC:POIN 100",
                ":STAT:PRES;*CLS;*SRE 1;:STAT:MEAS:ENAB 512;", ":TRAC:FEED SENSE;:TRAC:FEED:CONT NEXT;",
                ":SOUR:WAVE:FUNC SIN", ":SOUR:WAVE:DUR:TIME INF", ":SOUR:WAVE:PMAR:STAT 1", "OUTPut 1",
                "OUTPUT OFF", ":OUTPut:ISHield GUAR", ":UNIT:VOLT:DC OHMS", ":SOUR:DELT:CAB ON"):
        k.write(msg)
    assert k.query("SYST:ERR?").strip() == '0,"No error"'
    assert k.query(":SOUR:CURR:RANG?").strip() == "2.000000E-03"
    assert k.query(":SOUR:WAVE:FUNC?").strip() == "SIN"
    assert k.query(":OUTPut:ISHield?").strip() == "GUAR"
    assert k.query(":UNIT:VOLT:DC?").strip() == "OHMS"
    assert k.query(":SOUR:DELT:CAB?").strip() == "1"
    assert k.query(":STAT:MEAS:ENAB 8; ENAB?").strip() == "8"


def test_error_queue_order_and_clear(rm):
    k = rm.open_resource(K6221)
    k.write(":SOUR:BOGUS 1")
    k.write(":SOUR:CURR 0.2")             # beyond ±105 mA
    k.write(":SOUR:DELT:DEL INF")          # pymeasure lets it through; the instrument refuses
    k.write(":TRIG:SOUR BUS")              # not a 6221 trigger source
    assert k.query("SYST:ERR?").strip() == '-113,"Undefined header"'
    assert k.query("SYST:ERR?").strip() == '-222,"Parameter data out of range"'
    assert k.query("SYST:ERR?").strip().startswith("-222")
    assert k.query("STAT:QUE?").strip().startswith("-224")
    assert k.query("SYST:ERR?").strip() == '0,"No error"'
    k.write(":SOUR:PDEL:WIDT 1")
    assert int(k.query("*ESR?")) & 16          # EXE
    k.write("*CLS")
    assert k.query("SYST:ERR?").strip() == '0,"No error"'
    assert float(k.query(":SOUR:PDEL:WIDT?")) == pytest.approx(110e-6)   # refused value not applied


def test_2182_channel_range_limits(rm):
    nvm = rm.open_resource(K2182, read_termination="\r")
    nvm.write(":SENS:VOLT:CHAN2:RANG 15")
    assert nvm.query("SYST:ERR?").startswith("-222")
    nvm.write(":SENS:VOLT:CHAN1:RANG 0.05")
    assert float(nvm.query(":SENS:VOLT:CHAN1:RANG?")) == pytest.approx(0.1)
    assert nvm.query(":SENS:VOLT:CHAN1:RANG:AUTO?") == "0"
    nvm.write(":SENS:CHAN 1;:SENS:FUNC 'VOLT';:SENS:VOLT:NPLC 1;")
    assert nvm.query(":SENS:FUNC?") == '"VOLT:DC"' and float(nvm.query(":SENS:VOLT:NPLC?")) == 1.0
    nvm.write('SENS:FUNC "VOLT:DC"')
    assert nvm.query("SYST:ERR?") == '0,"No error"'


def test_sourcemeter_reply_shapes(rm):
    smu = rm.open_resource(K2400)
    smu.write(":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS")
    smu.write(":SOURCE:FUNCTION CURR")
    assert smu.query(":SOURCE:FUNCTION?").strip() == "CURR"
    smu.write(":SOURCE:CURRENT 0.001")
    smu.write("OUTPUT 1")
    values = [float(x) for x in smu.query(":READ?").split(",")]
    assert len(values) == 5 and values[1] == pytest.approx(1e-3) and values[2] == 9.91e37
    assert len(smu.query(":MEASURE:VOLTAGE?").split(",")) == 5
    smu.write(":SOURCE:CURRENT 2.0")
    assert smu.query("SYST:ERR?").startswith("-222")
    s2 = rm.open_resource(K2450)
    s2.write(":SOUR:FUNC CURR")
    s2.write(":SOUR:CURR:LEV 0.001")
    s2.write("OUTPUT ON")
    assert len(s2.query(":READ?").split(",")) == 1
    assert s2.query("OUTPUT?").strip() == "1"
    s2.write(":SOUR:CURR:VLIM -2")
    assert s2.query("SYST:ERR?").startswith("-222")


def test_lockin_syntax_and_esr(rm):
    l1 = rm.open_resource(SR830)
    l1.write("SENS17")
    l1.write("OFLT8")
    assert l1.query("SENS?").strip() == "17" and l1.query("OFLT?").strip() == "8"
    assert len(l1.query("SNAP? 1,2,9").split(",")) == 3
    l1.write("SLVL9")                    # beyond 5 V: EXE
    l1.write("FOO 1")                    # unknown: CME
    assert int(l1.query("*ESR?")) == 16 + 32
    assert int(l1.query("*ESR?")) == 0
    # several queries on one line: answered individually
    l1.write("SENS?;OFLT?")
    assert l1.read().strip() == "17" and l1.read().strip() == "8"
    l2 = rm.open_resource(SR860)
    l2.write("RTRG 3")                   # pymeasure's POSTTL bug: refused
    assert int(l2.query("*ESR?")) & 16
    l2.write("PSTF2, 1.000000e+01")      # no space after the mnemonic: refused
    assert int(l2.query("*ESR?")) & 32
    l2.write("SCAL 9")
    assert l2.query("SCAL?;OFLT?").strip() == "9;10"
    assert len(l2.query("SNAP? X, Y").split(",")) == 2
    assert len(l2.query("SNAPD?").split(",")) == 4


# ----- 6221 custom lists and the Pulse Delta list sweep ------------------------------------------
def _list_bench(**kw):
    hb = RoundingHallBar()
    b = SimBench(hb, **kw)
    return b, hb, pyvisa.ResourceManager(b.visa_library).open_resource(K6221)


def _arm_list(k, currents, delays=None, count=1, width=1e-4, points=1000):
    k.write("SOUR:LIST:CURR " + ",".join(f"{c:g}" for c in currents))
    if delays is not None:
        k.write("SOUR:LIST:DEL " + ",".join(f"{d:g}" for d in delays))
    for msg in ("SOUR:CURR:COMP 20", "SOUR:PDEL:LOW 0", f"SOUR:PDEL:WIDT {width:g}", "SOUR:PDEL:SDEL 5e-5",
                "SOUR:PDEL:SWE ON", "SOUR:SWE:SPAC LIST", f"SOUR:SWE:COUN {count}", "SOUR:PDEL:LME 2",
                "TRAC:CLE", f"TRAC:POIN {points}", "SOUR:PDEL:ARM"):
        k.write(msg)
    k.visalib.bench.clock.advance(ARM_TIME)                         # arming takes time


def test_6221_list_commands_append_points_and_range_checks(rm):
    k = rm.open_resource(K6221)
    k.write("SOUR:LIST:CURR 1e-3,-2e-3")
    k.write("SOUR:LIST:CURR:APP 0.105")
    assert k.query("SOUR:LIST:CURR:POIN?").strip() == "3"
    assert k.query("SOUR:LIST:CURR?").strip() == "1.000000E-03,-2.000000E-03,1.050000E-01"
    k.write("SOUR:LIST:DEL 5e-3;:SOUR:LIST:DEL:APP 1e-3,2")
    assert k.query("SOUR:LIST:DEL:POIN?").strip() == "3"
    assert k.query("SYST:ERR?").strip() == '0,"No error"'
    for bad, code in (("SOUR:LIST:CURR 1e-3,0.2", "-222"), ("SOUR:LIST:CURR:APP -0.11", "-222"),
                      ("SOUR:LIST:DEL 5e-4", "-222"), ("SOUR:LIST:DEL:APP 1e6", "-222"),
                      ("SOUR:LIST:CURR abc", "-104"), ("SOUR:LIST:CURR", "-109")):
        k.write(bad)
        assert k.query("SYST:ERR?").startswith(code), bad
    # a refused message leaves the lists as they were
    assert k.query("SOUR:LIST:CURR:POIN?").strip() == "3"
    assert k.query("SOUR:LIST:DEL:POIN?").strip() == "3"
    k.write("*RST")
    assert k.query("SOUR:LIST:CURR:POIN?").strip() == "0"


def test_pulse_delta_list_sweep_delivers_the_list_in_order_and_reads_each_pulse():
    b, hb, k = _list_bench(thermal_emf=5e-6)
    currents = [0.01, 1e-4, -0.01, 1e-4, -2e-4]
    # the list delays are cycle times, on whole line cycles (50 Hz), at least 5 PLC
    _arm_list(k, currents, delays=[0.1, 0.1, 0.15, 2e-3, 0.1], count=2)
    assert k.query("SOUR:PDEL:ARM?").strip() == "1"
    t0 = b.clock.now
    k.write("INIT:IMM")
    assert int(k.query("TRAC:POIN:ACT?")) == 10                    # one reading per pulse, ×SWE:COUN
    assert b.clock.now - t0 == pytest.approx(2 * (0.1 + 0.1 + 0.16 + 0.1 + 0.1))
    data = [float(x) for x in k.query("TRAC:DATA?").split(",")]
    readings, stamps = data[0::2], data[1::2]
    # (2B - A - C)/2 = I * R_H: the 5 µV thermal EMF cancels (A/D noise ~60 nV)
    assert readings == pytest.approx([c * 0.5 for c in currents] * 2, abs=3e-7)
    assert stamps[:4] == pytest.approx([0.0, 0.1, 0.2, 0.36])
    # every pulse reached the device, in list order, at the programmed width (read pulses too)
    assert hb.pulses == [(c, 1e-4) for c in currents] * 2
    assert k.query("SYST:ERR?").strip() == '0,"No error"'
    k.write("SOUR:SWE:ABOR")
    t, on, level = b.output_history(K6221)[-1]
    assert not on and level == 0.0
    b.close()


def test_pulse_delta_list_sweep_cycle_from_sour_del_and_arm_conflicts():
    b, hb, k = _list_bench()
    k.write("SOUR:DEL 0.25")
    _arm_list(k, [1e-3, 2e-3])                                     # no delay list: SOUR:DEL
    t0 = b.clock.now
    k.write("INIT:IMM")
    assert b.clock.now - t0 == pytest.approx(2 * 0.26)             # 12.5 PLC -> 13 PLC
    k.write("SOUR:SWE:ABOR")
    k.write("SOUR:LIST:DEL 1e-3,1e-3,1e-3")                        # 3 delays for 2 currents
    k.write("SOUR:PDEL:ARM")
    assert k.query("SYST:ERR?").startswith("-221")
    assert k.query("SOUR:PDEL:ARM?").strip() == "0"
    b.close()


def test_pulse_delta_list_sweep_compliance_clamps_like_fixed_output():
    b, hb, k = _list_bench()                                       # R_xx = 1 kΩ
    _arm_list(k, [0.01, 1e-4], delays=[2e-3, 2e-3])
    k.write("SOUR:CURR:COMP 5")
    k.write("SOUR:PDEL:ARM")
    b.clock.advance(ARM_TIME)
    k.write("INIT:IMM")
    readings = [float(x) for x in k.query("TRAC:DATA?").split(",")][0::2]
    assert readings == pytest.approx([5e-3 * 0.5, 1e-4 * 0.5], abs=3e-7)   # 10 mA asked, 5 mA flowed
    assert int(k.query("STAT:MEAS?")) & 8
    assert hb.pulses[0] == (5e-3, 1e-4)
    b.close()


def test_pulse_delta_list_sweep_infinite_count_then_abort():
    b, hb, k = _list_bench()
    _arm_list(k, [1e-3, 2e-3, 3e-3], delays=[1e-3] * 3, count="INF")
    k.write("INIT:IMM")
    b.clock.advance(0.45)                                          # 1 ms delays: 100 ms cycles
    n = int(k.query("TRAC:POIN:ACT?"))
    assert n == 0                                                  # produced when asked for data
    first = [float(x) for x in k.query("TRAC:DATA?").split(",")][0::2]
    assert len(first) >= 3 and first[:3] == pytest.approx([5e-4, 1e-3, 1.5e-3], abs=3e-7)
    assert [c for c, _ in hb.pulses][:4] == [1e-3, 2e-3, 3e-3, 1e-3]   # the list repeats
    k.write("SOUR:SWE:ABOR")
    assert k.query("SOUR:PDEL:ARM?").strip() == "0"
    t, on, level = b.output_history(K6221)[-1]
    assert not on and level == 0.0                                 # un-armed: output back off
    count = len(hb.pulses)
    b.clock.advance(1.0)
    k.query("TRAC:DATA?")
    assert len(hb.pulses) == count                                 # nothing more after the abort
    b.close()
