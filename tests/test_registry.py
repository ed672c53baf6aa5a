"""The instrument registry: the shipped entries, and a new instrument added from outside the
package — its driver, its simulated model and one entry — used in a station, checked and run."""
from __future__ import annotations

import pytest
from pymeasure.instruments.keithley import Keithley2400

from labspin.cli import main
from labspin.drivers import DRIVERS, registry
from labspin.drivers.checks import error_queue, output_off
from labspin.errors import UserError
from labspin.sim_backend.instruments.keithley2400 import Keithley2400 as SimKeithley2400
from labspin.station import DRIVER_NAMES, load_station_spec


# --- a new instrument, as a user would write it in their own module ---------------------------
class Keithley2401(Keithley2400):
    """The 2401: a 2400 with ±21 V (same SCPI)."""


class SimKeithley2401(SimKeithley2400):
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2401,4242,C32   Oct  4 2010 14:20:11/A02  /K/J"


CHECKED: list[str] = []


def check_2401(inst, ctx, report) -> None:
    CHECKED.append(ctx.name)
    output_off(inst, report)
    error_queue(inst, report)


ENTRY = registry.InstrumentEntry(
    name="keithley2401", driver=f"{__name__}:Keithley2401", idn_models=("MODEL 2401",),
    pulse_source="labspin.drivers.pulse:SourceMeterPulseSource",
    modes={"sourcemeter": registry.SOURCEMETER},
    capabilities=registry.Capabilities(1.05, 21.0),
    sim_model=f"{__name__}:SimKeithley2401", sim_address="GPIB0::25::INSTR",
    check=f"{__name__}:check_2401")

STATION = """
name = "toy"
[simulator]
device = "tilted:2"
[limits]
compliance_voltage = 20.0
[instruments.k6221]
driver = "keithley6221"
address = "sim"
[instruments.smu]
driver = "keithley2401"
address = "sim"
[roles]
pulse_source = "k6221"
hall_reader = { mode = "sourcemeter", instrument = "smu" }
"""


@pytest.fixture
def k2401():
    registry.register(ENTRY)
    CHECKED.clear()
    yield ENTRY
    registry.unregister(ENTRY.name)


def test_shipped_entries_are_complete():
    names = set(registry.entries())
    assert names == {"keithley6221", "keithley2182", "sr830", "sr860", "keithley2400", "keithley2450"}
    assert set(DRIVERS) == names and set(DRIVER_NAMES) == names
    for e in registry.entries().values():
        assert e.driver_class().__name__                       # every path resolves
        assert e.sim_class().idn and e.sim_address and e.check_function() is not None
        assert any(m.upper() in e.sim_class().idn.upper() for m in e.idn_models)
        for mode in e.modes.values():
            assert registry.resolve(mode.role).__name__.endswith("HallReader")
        if e.pulse_source:
            assert registry.resolve(e.pulse_source).__name__.endswith("PulseSource")
    assert registry.hall_modes() == {"dc_delta": ("keithley6221",), "pulse_delta": ("keithley6221",),
                                     "lockin": ("sr830", "sr860"),
                                     "sourcemeter": ("keithley2400", "keithley2450")}
    assert registry.pulse_sources() == ("keithley6221", "keithley2400", "keithley2450")
    # a bare SimBench() (no registry: the simulator stands alone) builds the same bench
    from labspin.sim_backend.bench import DEFAULT_ADDRESSES
    from labspin.sim_backend.instruments import MODELS
    assert {n: (e.sim_address, e.sim_class()) for n, e in registry.entries().items()} == {
        n: (DEFAULT_ADDRESSES[n], MODELS[n]) for n in names}


def test_registry_refuses_a_taken_name_and_a_contradicting_mode():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.entry("sr830"))
    odd = registry.InstrumentEntry(name="odd", driver="x:y", idn_models=("ODD",),
                                   modes={"pulse_delta": registry.Mode("x:y", "", 0.1)})
    with pytest.raises(ValueError, match="pulse_delta"):
        registry.register(odd)
    assert "odd" not in registry.entries()


def test_a_new_instrument_is_one_entry(tmp_path, k2401, capsys):
    path = tmp_path / "toy.toml"
    path.write_text(STATION, encoding="utf-8")
    spec = load_station_spec(path)
    assert spec.instruments["smu"].driver == "keithley2401"
    with spec.open(preflight=True) as st:
        assert type(st.hall_reader).__name__ == "SourceMeterHallReader"
        assert isinstance(st.instruments["smu"], Keithley2401)
        assert st.bench.addresses["keithley2401"] == "GPIB0::25::INSTR"
        assert isinstance(st.bench.instrument("GPIB0::25::INSTR"), SimKeithley2401)
        st.pulse_source.pulse(-9.6e-3, 100e-6)
        low = st.hall_reader.read(1e-4).hall_resistance
        st.pulse_source.pulse(9.6e-3, 100e-6)
        high = st.hall_reader.read(1e-4).hall_resistance
        p = st.bench.hallbar.params                         # the tilted window, about its offset
        assert high - low > 0.5 and low == pytest.approx(p.R0 - p.R_AHE, abs=0.1)
        assert [r.ok for r in st.checks] == [True, True] and CHECKED == ["smu"]
    with pytest.raises(SystemExit) as e:
        main(["check", "--station", str(path)])
    assert e.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("smu (keithley2401 @ GPIB0::25::INSTR): OK: ") and "MODEL 2401" in out[1]
    # its own limits: the 2401 cannot hold 30 V of compliance
    path.write_text(STATION.replace("compliance_voltage = 20.0", "compliance_voltage = 30.0"))
    with pytest.raises(UserError, match=r"limits.compliance_voltage: 30 is beyond what the "
                                        r"hall_reader 'smu' \(keithley2401\) can do \(max 21\)"):
        load_station_spec(path)


def test_unregistered_instrument_is_unknown(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(STATION, encoding="utf-8")
    with pytest.raises(UserError, match="instruments.smu.driver: unknown driver 'keithley2401'"):
        load_station_spec(path)
