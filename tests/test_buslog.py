"""The bus transcript: every VISA message, one per line, read back for each Hall-read mode."""
from __future__ import annotations

import re
from pathlib import Path

import pyvisa
import pytest
from pymeasure.instruments.keithley import Keithley2400

from labspin.buslog import BusLog, read_bus_log
from labspin.cli import main
from labspin.errors import UserError
from labspin.sim_backend import SimBench

STATIONS = Path(__file__).resolve().parents[1] / "docs" / "stations"

# what each mode's reads must put on the bus (beyond the common set-up)
SIGNATURES = {
    "delta.toml": ("GPIB0::12::INSTR", ":SOUR:DELT:ARM"),
    "pulse_delta.toml": ("GPIB0::12::INSTR", ":SOUR:LIST:CURR "),
    "lockin_sr830.toml": ("GPIB0::8::INSTR", "SNAP?"),
    "lockin_sr860.toml": ("GPIB0::9::INSTR", "SNAP?"),
    "sourcemeter_2400.toml": ("GPIB0::24::INSTR", ":READ?"),
    "sourcemeter_2450.toml": ("GPIB0::18::INSTR", ":READ?"),
}


def test_buslog_records_writes_replies_and_failures(tmp_path):
    bench = SimBench("tilted", 1, addresses={"keithley2400": "GPIB0::24::INSTR"})
    log = BusLog(tmp_path / "bus.log", clock=lambda: float(bench.clock.now))
    smu = Keithley2400("GPIB0::24::INSTR", visa_library=bench.visa_library)
    log.attach(smu, "GPIB0::24::INSTR")
    assert "2400" in smu.ask("*IDN?")
    smu.write(":SOUR:CURR 1e-4")
    bench.inject_fault("GPIB0::24::INSTR", "timeout")
    smu.adapter.connection.timeout = 50
    with pytest.raises(pyvisa.VisaIOError):
        smu.ask(":SOUR:CURR?")
    log.close()
    smu.adapter.close()
    bench.close()
    lines = read_bus_log(tmp_path / "bus.log")
    assert [(l.direction, l.message[:6]) for l in lines] == [
        (">", "*IDN?"), ("<", "KEITHL"), (">", ":SOUR:"), (">", ":SOUR:"), ("!", "VisaIO")]
    # the first message is stamped once it has crossed the bus (the simulated SMU's 1 ms latency)
    assert {l.resource for l in lines} == {"GPIB0::24::INSTR"} and 0.0 <= lines[0].time <= 1e-3
    with pytest.raises(UserError, match=r"bus log .*bus\.log: exists"):
        BusLog(tmp_path / "bus.log")
    (tmp_path / "bad.log").write_text("0.1 GPIB0::1::INSTR ? *IDN?\n")
    with pytest.raises(UserError, match=r"bad.log:1: not a bus-log line"):
        read_bus_log(tmp_path / "bad.log")


def _lang_ok() -> bool:
    from test_check import _sim_2450_answers_lang
    return _sim_2450_answers_lang()


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_transcript_of_each_mode(name, tmp_path, capsys):
    station = STATIONS / name
    if "2450" in name and not _lang_ok():
        # until the simulated 2450 answers *LANG?, its pre-flight fails: the run is refused, in
        # one line, before a file is written — and the transcript shows why
        station = tmp_path / name
        station.write_text((STATIONS / name).read_text())
        expected_code = 2
    else:
        expected_code = 0
    out, bus = tmp_path / "run.h5", tmp_path / "run.bus"
    with pytest.raises(SystemExit) as e:
        main(["run", "staircase", "--station", str(station), "-o", str(out), "--set", "cycles=1",
              "--no-progress", "--bus-log", str(bus)])
    assert e.value.code == expected_code, capsys.readouterr().err
    lines = read_bus_log(bus)
    resource, signature = SIGNATURES[name]
    by_resource: dict[str, list] = {}
    for line in lines:
        by_resource.setdefault(line.resource, []).append(line)
    assert resource in by_resource and "GPIB0::12::INSTR" in by_resource   # the 6221 writes
    for res, mine in by_resource.items():
        # from the first message on, what the pymeasure class writes in its constructor included
        first = [(l.direction, l.message) for l in mine[:2]]
        if "sourcemeter_2400" in name and res == resource:
            assert first == [(">", ":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS"),
                             (">", "*IDN?")]
        else:
            assert first[0] == (">", "*IDN?")
        for prev, line in zip(mine, mine[1:]):
            if line.direction == "<":                                    # a reply answers a query
                assert prev.direction == ">" and "?" in prev.message
    times = [l.time for l in lines]
    assert times == sorted(times) and times[0] == 0.0
    if expected_code == 2:
        assert any(l.message == "*LANG?" for l in by_resource[resource]) and not out.exists()
        return
    assert any(signature in l.message for l in by_resource[resource])
    # the run's last word to the 6221 leaves it off (ramped and OUTP OFF)
    last = [l.message for l in by_resource["GPIB0::12::INSTR"] if l.direction == ">"][-1]
    assert re.fullmatch(r":?OUTP(UT)?(:STAT(E)?)? (OFF|0)", last, re.I), last
