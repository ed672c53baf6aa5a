"""Station files: validation without instruments, the simulated station, and Station behaviour."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from labspin.drivers import DRIVERS
from labspin.drivers.roles import HallReader, HallReading, Limits, PulseSource
from labspin.errors import UserError
from labspin.station import (DRIVER_NAMES, Station, load_station_spec, parse_sim_spec,
                             sim_station_spec)

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "station_example.toml"

GOOD = """
name = "b1"
[sample]
id = "D1"
type = "idmi"
width = 8e-6
thickness = 4e-9
[limits]
max_pulse_current = 0.01
min_pulse_width = 1e-4
[instruments.src]
driver = "keithley6221"
address = "GPIB0::12::INSTR"
[instruments.lia]
driver = "sr830"
address = "GPIB0::8::INSTR"
options = { timeout = 3000 }
[roles]
pulse_source = "src"
hall_reader = { mode = "lockin", instrument = "lia", series_resistance = 10e3 }
"""


@pytest.fixture
def no_visa(monkeypatch):
    """Any attempt to create a VISA resource manager fails the test."""
    import pyvisa
    import pyvisa.highlevel

    def boom(*a, **k):
        raise AssertionError("a VISA resource manager was created")
    monkeypatch.setattr(pyvisa, "ResourceManager", boom)
    monkeypatch.setattr(pyvisa.highlevel, "ResourceManager", boom)


def write(tmp_path, text):
    p = tmp_path / "station.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_example_station_validates(no_visa):
    spec = load_station_spec(EXAMPLE)
    assert spec.limits.max_pulse_current == pytest.approx(15e-3)
    assert spec.sample["width"] == pytest.approx(10e-6) and spec.sample["r_xx"] == pytest.approx(1500.0)
    assert spec.pulse_source == "k6221" and spec.hall_reader.mode == "dc_delta"
    assert list(spec.instruments) == ["k6221"]      # the 2182A is reached over the 6221's RS-232
    json.dumps(spec.as_dict())


def test_good_station_parses(tmp_path, no_visa):
    spec = load_station_spec(write(tmp_path, GOOD))
    assert spec.name == "b1" and not spec.simulated
    assert spec.limits == Limits(max_pulse_current=0.01, min_pulse_width=1e-4)
    assert spec.hall_reader.series_resistance == 10e3 and spec.hall_reader.instrument == "lia"
    assert spec.instruments["lia"].options == {"timeout": 3000}


def test_driver_names_match_the_driver_registry():
    assert set(DRIVER_NAMES) == set(DRIVERS)


@pytest.mark.parametrize("old,new,expect", [
    ('type = "idmi"', 'colour = "red"', "sample.colour: unknown key"),
    ('id = "D1"', "", "sample.id: missing"),
    ("width = 8e-6", "width = -8e-6", "sample.width: must be > 0"),
    ("thickness = 4e-9", 'thickness = "thin"', "sample.thickness: expected a number"),
    ("max_pulse_current = 0.01", "max_pulse_curent = 0.01", "limits.max_pulse_curent: unknown key"),
    ("max_pulse_current = 0.01", "max_pulse_current = inf", "limits.max_pulse_current: must be finite"),
    ("min_pulse_width = 1e-4", "min_pulse_width = 1.0", "limits.min_pulse_width"),
    ('address = "GPIB0::12::INSTR"', 'address = "banana"', "instruments.src.address: malformed VISA address"),
    ('address = "GPIB0::12::INSTR"', 'address = "GPIB0::99::INSTR"', "instruments.src.address: malformed"),
    ('address = "GPIB0::12::INSTR"', 'address = "GPIB0::8::INSTR"',
     "instruments.lia.address: 'GPIB0::8::INSTR' is already used"),
    ('driver = "sr830"', 'driver = "hp3458"', "instruments.lia.driver: unknown driver 'hp3458'"),
    ('driver = "keithley6221"', 'driver = "keithley2182"', "roles.pulse_source: instrument 'src' is a keithley2182"),
    ('pulse_source = "src"', 'pulse_source = "nope"', "roles.pulse_source: no instrument 'nope'"),
    ('mode = "lockin"', 'mode = "magic"', "roles.hall_reader.mode: unknown mode 'magic'"),
    ('mode = "lockin"', 'mode = "dc_delta"', "roles.hall_reader.instrument: instrument 'lia' is a sr830"),
    (", series_resistance = 10e3", "", "roles.hall_reader.series_resistance: missing"),
    ("options = { timeout = 3000 }", "options = 3", "instruments.lia.options: expected a table"),
    ('name = "b1"', 'name = "b1"\nowner = "x"', "owner: unknown key"),
    ('name = "b1"', 'name = "b1"\n[[[', "invalid TOML"),
])
def test_station_validation_errors(tmp_path, no_visa, old, new, expect):
    assert old in GOOD
    p = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(UserError) as e:
        load_station_spec(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and expect in msg and "\n" not in msg


def test_missing_tables_and_file(tmp_path):
    with pytest.raises(UserError, match="roles: missing table"):
        load_station_spec(write(tmp_path, GOOD.split("[roles]")[0]))
    with pytest.raises(UserError, match="nowhere.toml: no such station file"):
        load_station_spec(tmp_path / "nowhere.toml")


def test_sim_spec_parsing():
    assert parse_sim_spec("tilted") == ("tilted", 0)
    assert parse_sim_spec("idmi:42") == ("idmi", 42)
    with pytest.raises(UserError, match="seed"):
        parse_sim_spec("tilted:x")
    with pytest.raises(UserError, match="seed"):
        parse_sim_spec("tilted:-1")


def test_sim_station_spec(no_visa):
    spec = sim_station_spec("tilted:3")
    assert spec.simulated and spec.sim == ("tilted", 3)
    assert spec.sample["seed"] == 3 and spec.sample["type"] == "tilted"
    assert spec.sample["width"] > 0 and spec.sample["thickness"] > 0
    assert spec.sample["params"]["name"] == "tilted"
    assert {i.driver for i in spec.instruments.values()} == {"keithley6221"}   # 2182A: on its RS-232
    assert spec.hall_reader.mode == "dc_delta"
    json.dumps(spec.sample) and json.dumps(spec.as_dict())
    assert sim_station_spec("tilted:4").sample["seed"] == 4
    with pytest.raises(UserError):
        sim_station_spec("no_such_preset:1")


# --- Station behaviour with stand-in roles -------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def advance(self, dt):
        self.now += dt


class FakeBench:
    def __init__(self):
        self.clock = FakeClock()


class FakePulse(PulseSource):
    def __init__(self, fail=False):
        self.limits, self.fail, self.down = Limits(), fail, 0

    def pulse(self, amplitude, width):
        pass

    @property
    def output_enabled(self):
        return False

    def snapshot(self):
        if self.fail:
            raise RuntimeError("bus gone")
        return {"class": "FakePulse", "x": 1}

    def shutdown(self):
        self.down += 1
        if self.fail:
            raise RuntimeError("bus gone")


class FakeReader(HallReader):
    def __init__(self):
        self.limits, self.down = Limits(), 0

    def read(self, read_current):
        return HallReading(0.0, read_current, 0.0)

    def snapshot(self):
        return {"class": "FakeReader", "settings": {"nplc": 1}}

    def shutdown(self):
        self.down += 1


class FakeInst:
    def __init__(self):
        self.closed = 0
        self.adapter = self

    def ask(self, command):
        assert command == "*IDN?"
        return "KEITHLEY INSTRUMENTS INC.,MODEL 6221,1,A01"

    def close(self):
        self.closed += 1


def make_station(bench=None, fail=False):
    inst = FakeInst()
    st = Station(pulse_source=FakePulse(fail), hall_reader=FakeReader(), limits=Limits(),
                 sample={"id": "x"}, bench=bench, instruments={"k6221": inst},
                 addresses={"k6221": "GPIB0::12::INSTR"})
    return st, inst


def test_station_clock_is_virtual_with_a_bench():
    st, _ = make_station(FakeBench())
    t0 = st.now()
    st.wait(3600.0)
    assert st.now() - t0 == pytest.approx(3600.0)


def test_station_clock_is_real_without_a_bench():
    st, _ = make_station()
    t0 = st.now()
    st.wait(0.02)
    assert 0.015 <= st.now() - t0 < 1.0


def test_shutdown_never_raises_and_reaches_every_role():
    st, inst = make_station(fail=True)
    st.shutdown()                       # the pulse source raises; the reader must still be shut down
    assert st.pulse_source.down == 1 and st.hall_reader.down == 1
    snap = st.snapshot()                # a failing role snapshot is recorded, not raised
    assert "bus gone" in snap["roles"]["pulse_source"]["error"]
    st.close()
    st.close()
    assert inst.closed == 1 and st.pulse_source.down == 1


def test_snapshot_is_jsonable():
    st, _ = make_station(FakeBench())
    snap = st.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap["instruments"]["k6221"]["idn"].startswith("KEITHLEY") and snap["limits"] == Limits().as_dict()
    assert snap["roles"]["hall_reader"]["settings"] == {"nplc": 1}


# --- opening on the simulated bench --------------------------------------------------------------

def test_sim_station_opens_and_shuts_down():
    from labspin.drivers.hall import DeltaHallReader
    from labspin.drivers.pulse import K6221PulseSource

    spec = sim_station_spec("tilted:3")
    st = spec.open()
    try:
        assert isinstance(st.pulse_source, K6221PulseSource) and isinstance(st.hall_reader, DeltaHallReader)
        assert st.bench is not None and st.bench.seed == 3 and st.sample["seed"] == 3
        t0 = st.now()
        st.pulse_source.pulse(-9e-3, 100e-6)
        low = st.hall_reader.read(100e-6).hall_resistance
        st.pulse_source.pulse(9e-3, 100e-6)
        high = st.hall_reader.read(100e-6).hall_resistance
        assert high != low                               # the device switched; reads see it
        assert st.now() - t0 >= 200e-6                   # pulses took virtual time
        t1 = st.now()
        st.wait(1000.0)
        assert st.now() - t1 == pytest.approx(1000.0)    # and waiting cost no real time
        snap = st.snapshot()
        assert json.loads(json.dumps(snap)) == snap and snap["simulated"] and snap["sim"] == "tilted:3"
        assert "6221" in snap["instruments"]["k6221"]["idn"]
        assert snap["instruments"]["k6221"]["address"] == st.bench.addresses["keithley6221"]
    finally:
        st.close()
    on, level = st.bench.output_history(st.bench.addresses["keithley6221"])[-1][1:]
    assert not on and level == 0.0


def test_station_file_opens_on_a_simulated_bench():
    from labspin.sim_backend import SimBench

    bench = SimBench("idmi", seed=5)
    spec = load_station_spec(EXAMPLE)
    with spec.open(bench=bench) as st:
        assert st.bench is bench and st.limits == spec.limits and st.sample["id"] == "D17-3"
        from labspin.drivers.roles import LimitError
        with pytest.raises(LimitError):
            st.pulse_source.pulse(20e-3, 100e-6)         # over the file's 15 mA: refused, not clipped
        st.pulse_source.pulse(-9e-3, 100e-6)
        assert math.isfinite(st.hall_reader.read(100e-6).hall_resistance)


def test_pulse_delta_mode_validates_and_must_share_the_pulse_source(tmp_path, no_visa):
    text = GOOD.replace('hall_reader = { mode = "lockin", instrument = "lia", series_resistance = 10e3 }',
                        'hall_reader = { mode = "pulse_delta", instrument = "src" }')
    spec = load_station_spec(write(tmp_path, text))
    assert spec.hall_reader.mode == "pulse_delta" and spec.hall_reader.instrument == "src"
    two = text.replace('hall_reader = { mode = "pulse_delta", instrument = "src" }',
                       'hall_reader = { mode = "pulse_delta", instrument = "k2" }') \
        + '[instruments.k2]\ndriver = "keithley6221"\naddress = "GPIB0::13::INSTR"\n'
    with pytest.raises(UserError, match="roles.hall_reader.instrument: .*pulse_source 'src'"):
        load_station_spec(write(tmp_path, two))
    with pytest.raises(UserError, match="sr830"):
        load_station_spec(write(tmp_path, text.replace('instrument = "src" }', 'instrument = "lia" }')))


def test_sim_station_hall_mode(no_visa):
    assert sim_station_spec("tilted:2").hall_reader.mode == "dc_delta"
    spec = sim_station_spec("tilted:2", hall_mode="pulse_delta")
    assert spec.hall_reader.mode == "pulse_delta" and spec.hall_reader.instrument == spec.pulse_source
    with pytest.raises(UserError, match="^hall_mode: 'lockin'") as err:     # the field, not a CLI flag
        sim_station_spec("tilted:2", hall_mode="lockin")
    assert err.value.key == "hall_mode"


def test_pulse_delta_sim_station_opens_with_a_block_reader():
    from labspin.drivers.hall import PulseDeltaHallReader
    from labspin.protocols import Step

    with sim_station_spec("tilted:2", hall_mode="pulse_delta").open() as st:
        assert isinstance(st.hall_reader, PulseDeltaHallReader)
        r = st.hall_reader.read(1e-4)
        assert r.hall_resistance == pytest.approx(st.bench.hallbar.hall_resistance, abs=3e-3)
        (r,) = st.hall_reader.run_block([Step(0, 0, 0.0096, 1e-4, 1e-4)])
        assert r.hall_resistance > 0.5                  # a +9.6 mA pulse set the tilted device high
        assert st.snapshot()["roles"]["hall_reader"]["mode"] == "pulse_delta"
