"""Station files on the simulated bench: `[simulator]` + `address = "sim"`, every read mode from
docs/stations, the same staircase read the same by each mode, bad files in one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labspin.cli import main
from labspin.errors import UserError
from labspin.protocols import load_recipe
from labspin.runner import Runner
from labspin.station import load_station_spec
from labspin.store import read_run
from fakes import Collect

STATIONS = Path(__file__).resolve().parents[1] / "docs" / "stations"
READ_MODES = ("delta", "pulse_delta", "lockin_sr830", "lockin_sr860", "sourcemeter_2400",
              "sourcemeter_2450")


def test_every_mode_has_a_shipped_station():
    modes = {}
    for name in READ_MODES:
        spec = load_station_spec(STATIONS / f"{name}.toml")
        assert spec.simulated and spec.simulator.device == "tilted:1"
        assert spec.simulator.line_frequency == 50.0
        assert all(i.address == "sim" for i in spec.instruments.values())
        modes[name] = (spec.hall_reader.mode, spec.instruments[spec.hall_reader.instrument].driver)
    assert sorted(set(modes.values())) == sorted([
        ("dc_delta", "keithley6221"), ("pulse_delta", "keithley6221"), ("lockin", "sr830"),
        ("lockin", "sr860"), ("sourcemeter", "keithley2400"), ("sourcemeter", "keithley2450")])
    only = load_station_spec(STATIONS / "sourcemeter_only_2450.toml")      # the SMU as pulse source
    assert only.instruments[only.pulse_source].driver == "keithley2450"


def test_same_staircase_same_states_in_every_mode(tmp_path):
    """Each mode reads the same device (tilted:1) through the same staircase: the state means
    agree within the spread of the states over cycles (4 standard errors of the difference).

    The device's heating read-back and slow drift are switched off (a device file beside the
    stations): they are real, but they depend on how long after a pulse a mode reads (ms in a
    Pulse Delta sweep, ~1 s with Delta reads), which is the device's doing, not the read chain's."""
    import tomli_w

    from labspin.device_file import FORMAT
    from labspin.sim_backend.physics import preset

    quiet = preset("tilted").replace(readback=0.0, drift=0.0).to_dict()
    (tmp_path / "tilted-quiet.toml").write_text(tomli_w.dumps({"format": FORMAT, "device": quiet}))
    cycles = 20
    recipe = load_recipe("staircase", {"cycles": cycles})
    means, spread = {}, {}
    for name in READ_MODES:
        text = (STATIONS / f"{name}.toml").read_text()
        (tmp_path / f"{name}.toml").write_text(
            text.replace('device = "tilted:1"', 'device = "tilted-quiet.toml:1"'))
        spec = load_station_spec(tmp_path / f"{name}.toml")
        grab = Collect()
        with spec.open() as st:        # pre-flight is `labspin run`'s; test_check covers it
            assert Runner(st, recipe, [grab]).run() == "completed"
            assert type(st.hall_reader).__name__ == {
                "dc_delta": "DeltaHallReader", "pulse_delta": "PulseDeltaHallReader",
                "lockin": "LockinHallReader", "sourcemeter": "SourceMeterHallReader"}[spec.hall_reader.mode]
        step, rh = grab.column("step"), grab.column("hall_resistance")
        assert len(rh) == 11 * cycles
        means[name] = np.array([rh[step == k].mean() for k in range(11)])
        spread[name] = np.array([rh[step == k].std(ddof=1) for k in range(11)])
    ref = means["delta"]
    assert np.all(np.diff(ref) > 0) and ref[-1] - ref[0] > 1.0          # 11 ordered states
    for name in READ_MODES[1:]:
        se = np.sqrt((spread[name] ** 2 + spread["delta"] ** 2) / cycles)
        assert np.all(np.abs(means[name] - ref) <= 4 * se + 1e-3), (name, means[name] - ref)


@pytest.mark.parametrize("name", READ_MODES + ("sourcemeter_only_2450",))
def test_dry_run_every_shipped_station(name, capsys):
    args = ["dry-run", "staircase", "--station", str(STATIONS / f"{name}.toml")]
    if name == "sourcemeter_only_2450":
        args = ["dry-run", "loop", "--station", str(STATIONS / f"{name}.toml"),
                "--set", "pulse_width=5e-3"]
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr().out
    assert e.value.code == 0 and "limits" in out.lower()
    mode = load_station_spec(STATIONS / f"{name}.toml").hall_reader.mode
    assert mode in out


def test_sourcemeter_only_station_runs(tmp_path):
    """The 2450 writes (software-timed, 5 ms) and reads; the loop switches the device."""
    spec = load_station_spec(STATIONS / "sourcemeter_only_2450.toml")
    recipe = load_recipe("loop", {"pulse_width": 5e-3, "cycles": 1})
    grab = Collect()
    with spec.open() as st:
        assert Runner(st, recipe, [grab]).run() == "completed"
        assert type(st.pulse_source).__name__ == "SourceMeterPulseSource"
        on, level = st.bench.output_history("GPIB0::18::INSTR")[-1][1:]
    assert not on and level == 0.0
    rh = grab.column("hall_resistance")
    assert rh.max() - rh.min() > 1.0                                  # the loop opened


def test_simulator_faults_from_the_station_file(tmp_path, capsys):
    text = (STATIONS / "delta.toml").read_text().replace(
        "line_frequency = 50", 'line_frequency = 60\n'
        'faults = [{ instrument = "k6221", kind = "disconnect", after = 200 }]')
    station = tmp_path / "faulty.toml"
    station.write_text(text)
    spec = load_station_spec(station)
    assert spec.simulator.line_frequency == 60.0 and spec.simulator.faults[0].after == 200
    out = tmp_path / "run.h5"
    with pytest.raises(SystemExit) as e:
        main(["run", "staircase", "--station", str(station), "-o", str(out), "--set", "cycles=3",
              "--no-progress"])
    assert e.value.code == 1                                           # the run failed ...
    run = read_run(out)
    assert run.status == "failed" and 0 < len(run.data) < 33            # ... part-way, and says so


GOOD = (STATIONS / "lockin_sr830.toml").read_text()


@pytest.mark.parametrize("old,new,expect", [
    ('device = "tilted:1"', 'device = "nosuch:1"', "simulator.device: "),
    ('device = "tilted:1"', 'device = "tilted:x"', "simulator.device: "),
    ('device = "tilted:1"', "", "simulator.device: missing"),
    ("line_frequency = 50", "line_frequency = 55", "simulator.line_frequency: 55 Hz (50 or 60)"),
    ("line_frequency = 50", "line_freq = 50", "simulator.line_freq: unknown key"),
    ("line_frequency = 50", 'line_frequency = 50\nfaults = [{ instrument = "nope", kind = "error" }]',
     "simulator.faults[0].instrument: no instrument 'nope'"),
    ("line_frequency = 50", 'line_frequency = 50\nfaults = [{ instrument = "k6221", kind = "fire" }]',
     "simulator.faults[0].kind: 'fire'"),
    ("line_frequency = 50", 'line_frequency = 50\nfaults = [{ instrument = "k6221", kind = "error", '
     "after = -1 }]", "simulator.faults[0].after: expected an integer >= 0"),
    ("[instruments.lockin]", '[instruments.lia2]\ndriver = "sr830"\naddress = "GPIB0::3::INSTR"\n\n'
     "[instruments.lockin]", "instruments.lockin: the simulated bench has one sr830, already "
     "instruments.lia2"),
    ("[simulator]", "[simulatorx]", "simulatorx: unknown key"),
    ('[instruments.lockin]', '[instruments.k2182]\ndriver = "keithley2182"\naddress = "sim"\n\n'
     '[instruments.lockin]', "instruments.k2182: the keithley2182 is on the RS-232 link of 'k6221'"),
    ("max_pulse_current = 15e-3", "max_pulse_current = 0.2",
     "limits.max_pulse_current: 0.2 is beyond what the pulse_source 'k6221' (keithley6221) can do"),
    ("max_pulse_width = 12e-3", "max_pulse_width = 20e-3",
     "limits.max_pulse_width: 0.02 is beyond what the pulse_source 'k6221'"),
])
def test_bad_simulated_station_is_one_line_exit_2(tmp_path, capsys, old, new, expect):
    assert old in GOOD
    station = tmp_path / "bad.toml"
    station.write_text(GOOD.replace(old, new, 1))
    for verb in (["check"], ["dry-run", "staircase"], ["run", "staircase", "-o", str(tmp_path / "r.h5")]):
        with pytest.raises(SystemExit) as e:
            main([*verb, "--station", str(station)])
        err = capsys.readouterr().err
        assert e.value.code == 2 and expect in err and len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"labspin: error: {station}: ")
    assert not (tmp_path / "r.h5").exists()


def test_sim_address_needs_a_simulator_and_2182a_on_gpib_is_refused(tmp_path):
    real = GOOD.split("[simulator]")[0] + '[sample]\nid = "D1"\nwidth = 1e-5\nthickness = 5e-9\n' \
        + "[limits]" + GOOD.split("[limits]")[1]
    station = tmp_path / "real.toml"
    station.write_text(real)
    with pytest.raises(UserError, match=r'instruments.k6221.address: "sim" needs a \[simulator\] table'):
        load_station_spec(station)
    # defect 11: the example bench with its 2182A also opened on GPIB
    example = (STATIONS.parent / "station_example.toml").read_text()
    station.write_text(example + '\n[instruments.k2182]\ndriver = "keithley2182"\n'
                                 'address = "GPIB0::7::INSTR"\n')
    with pytest.raises(UserError) as e:
        load_station_spec(station)
    assert "instruments.k2182: the keithley2182 is on the RS-232 link of 'k6221'" in str(e.value)
    assert "remove [instruments.k2182]" in str(e.value) and "\n" not in str(e.value)


def test_gui_runs_a_station_file_on_the_simulator_with_a_bus_log(qtbot, tmp_path):
    from labspin.buslog import read_bus_log
    from labspin.gui.window import MainWindow

    bus = tmp_path / "gui.bus"
    w = MainWindow(station_file=str(STATIONS / "lockin_sr860.toml"), recipe="staircase",
                   bus_log=str(bus))
    qtbot.addWidget(w)
    w.output_edit.setText(str(tmp_path / "run.h5"))
    w.set_parameter("cycles", 2)
    assert w.validate(), w._blocker
    with qtbot.waitSignal(w.run_finished, timeout=60_000) as done:
        assert w.start_run()
    assert done.args[0] == "completed", done.args
    assert read_run(tmp_path / "run.h5").station["roles"]["hall_reader"]["class"] == "LockinHallReader"
    lines = read_bus_log(bus)
    assert any(l.resource == "GPIB0::9::INSTR" and l.message.startswith("SNAP?") for l in lines)


def test_simulator_device_may_be_a_device_file_beside_the_station(tmp_path):
    """A fitted device file (labspin fit) names the simulated device of a station file, by a path
    relative to the station file; its parameters reach the bench."""
    import tomli_w

    from labspin.device_file import FORMAT
    from labspin.sim_backend.physics import preset

    params = preset("tilted").replace(R0=3.25).to_dict()
    (tmp_path / "twin.toml").write_text(tomli_w.dumps({"format": FORMAT, "device": params}))
    text = (STATIONS / "delta.toml").read_text().replace('device = "tilted:1"', 'device = "twin.toml:4"')
    (tmp_path / "station.toml").write_text(text)
    spec = load_station_spec(tmp_path / "station.toml")
    assert spec.simulator.seed == 4 and spec.sample["params"]["R0"] == 3.25
    station = spec.open()
    try:
        assert station.bench.hallbar.params.R0 == 3.25
    finally:
        station.close()


def test_hall_reader_settings_from_the_station_file(tmp_path):
    """Optional roles.hall_reader keys reach the role: the lock-in's time constant (the SR830's
    next step at or above it, read back), settle, phase and input; they set the dry run's
    per-point estimate too."""
    from labspin.dryrun import dry_run

    text = (STATIONS / "lockin_sr830.toml").read_text()
    for old, new in (("time_constant = 0.1 ", "time_constant = 0.02"), ("settle = 10 ", "settle = 5 "),
                     ("phase = 0.0 ", "phase = -30.0"), ("differential = true", "differential = false")):
        assert old in text
        text = text.replace(old, new, 1)
    (tmp_path / "s.toml").write_text(text)
    spec = load_station_spec(tmp_path / "s.toml")
    recipe = load_recipe("staircase", {"cycles": 1})
    with spec.open() as st:
        assert Runner(st, recipe, [grab := Collect()]).run() == "completed"
        st.hall_reader.read(1e-4)
        snap = st.hall_reader.snapshot()
        lockin = st.bench.instrument("GPIB0::8::INSTR")
    assert grab.info.station["roles"]["hall_reader"]["time_constant_requested"] == 0.02   # run file
    assert snap["time_constant"] == pytest.approx(0.03)          # SR830 steps: 10, 30, 100 ms
    assert snap["settle_time_constants"] == 5 and snap["phase"] == -30.0 and snap["input"] == "A"
    assert lockin.s["tc_idx"] == 7                               # OFLT 7 = 30 ms (manual 5-6)
    default = dry_run(recipe, load_station_spec(STATIONS / "lockin_sr830.toml"))
    quick = dry_run(recipe, spec)
    assert default.overhead - quick.overhead == pytest.approx(10 * 0.1 - 5 * 0.02)
    assert "time_constant = 0.02" in quick.hall_settings


@pytest.mark.parametrize("old, new, expect", [
    ("settle = 10 ", "settle = -1 ", "roles.hall_reader.settle: must be > 0"),
    ("differential = true", "differential = 1", "roles.hall_reader.differential: expected true or false"),
    ("settle = 10 ", "count = 3 ", "roles.hall_reader.count: only used with mode = 'dc_delta'"),
])
def test_bad_hall_reader_setting_is_one_line(tmp_path, capsys, old, new, expect):
    station = tmp_path / "bad.toml"
    station.write_text((STATIONS / "lockin_sr830.toml").read_text().replace(old, new, 1))
    with pytest.raises(SystemExit) as e:
        main(["dry-run", "staircase", "--station", str(station)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and expect in err and len(err.strip().splitlines()) == 1, err


def test_dry_run_names_pulse_timing_and_the_smu_floor(capsys):
    """A SourceMeter pulse is host-timed: the dry run says so and lists a width under
    limits.min_smu_pulse_width as a violation; a 6221 pulse is hardware-timed."""
    from labspin.dryrun import dry_run, format_summary

    smu = load_station_spec(STATIONS / "sourcemeter_only_2450.toml")
    s = dry_run(load_recipe("loop", {"pulse_width": 2e-3}), smu)
    assert "host-timed" in s.pulse_timing and "5 ms" in s.pulse_timing
    assert "min_smu_pulse_width" in [v.limit for v in s.violations]
    assert "host-timed" in format_summary(s)
    assert dry_run(load_recipe("loop", {"pulse_width": 5e-3}), smu).ok
    k = dry_run(load_recipe("staircase"), load_station_spec(STATIONS / "delta.toml"))
    assert k.pulse_timing.startswith("hardware-timed by the keithley6221") and k.ok
