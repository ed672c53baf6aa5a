"""Protocol kinds and recipes: schedules, validation, overrides, shipped recipes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from labspin.errors import UserError
from labspin.protocols import (PROTOCOLS, Loop, PotDep, Protocol, Recipe, Retention, Staircase, Step,
                               load_recipe, parse_recipe, shipped_recipes)

SHIPPED = ["loop", "potdep", "retention", "staircase", "staircase_idmi", "staircase_orange_peel"]


def write(tmp_path, text, name="r.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


STAIRCASE = """
name = "mine"
kind = "staircase"
[parameters]
reset_current = -5e-3
start = 1e-3
stop = 4e-3
states = 4
pulse_width = 100e-6
read_current = 1e-4
cycles = 3
"""


# --- shipped recipes ----------------------------------------------------------------------------

def test_shipped_recipes_listed():
    assert set(SHIPPED) <= set(shipped_recipes())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_loads_and_is_consistent(name):
    r = load_recipe(name)
    assert isinstance(r, Recipe) and r.kind in PROTOCOLS and isinstance(r.protocol, PROTOCOLS[r.kind])
    assert r.path and r.path.endswith(f"{name}.toml")
    assert "[parameters]" in r.text
    assert r.protocol.parameters() == json.loads(json.dumps(r.protocol.parameters()))
    assert load_recipe(f"{name}.toml").protocol == r.protocol
    steps = list(r.protocol.steps())
    assert len(steps) == len(r.protocol) > 0
    a = r.protocol.arrays()
    assert np.array_equal(a["pulse_current"], [s.pulse_current for s in steps])
    assert np.array_equal(a["pulse_index"], np.arange(len(steps)))


@pytest.mark.parametrize("name,states", [("staircase", 11), ("staircase_idmi", 6), ("staircase_orange_peel", 4)])
def test_shipped_staircases_match_the_presets(name, states):
    p = load_recipe(name).protocol
    assert p.n_states == states and p.cycles == 200 and p.pulse_width == pytest.approx(100e-6)


# --- schedules ----------------------------------------------------------------------------------

def test_staircase_schedule_linear():
    p = parse_recipe(STAIRCASE).protocol
    steps = list(p.steps())
    assert len(p) == len(steps) == 3 * 4
    assert [s.step for s in steps] == [0, 1, 2, 3] * 3
    assert [s.cycle for s in steps] == [0] * 4 + [1] * 4 + [2] * 4
    assert np.allclose([s.pulse_current for s in steps[:4]], [-5e-3, 1e-3, 2.5e-3, 4e-3])
    assert all(s.pulse_current == -5e-3 for s in steps if s.step == 0)
    assert all(s.pulse_current > 0 for s in steps if s.step > 0)
    assert all(s.read_current == 1e-4 and s.wait == 0.0 for s in steps)
    assert p.peak_current == pytest.approx(5e-3)


def test_staircase_explicit_amplitudes_and_reset_width():
    p = Staircase(reset_current=6e-3, amplitudes=[-1e-3, -2e-3, -4e-3], pulse_width=1e-4,
                  read_current=1e-4, cycles=2, reset_width=1e-3)
    assert p.n_states == 4 and len(p) == 8
    a = p.arrays()
    assert np.allclose(a["pulse_current"][:4], [6e-3, -1e-3, -2e-3, -4e-3])
    assert np.allclose(a["pulse_width"][:4], [1e-3, 1e-4, 1e-4, 1e-4])
    # energy: Σ I² R t_p, by hand
    expect = 2 * (36e-6 * 1e-3 + (1e-6 + 4e-6 + 16e-6) * 1e-4) * 50.0
    assert p.energy(50.0) == pytest.approx(expect)
    assert p.duration(overhead=0.5) == pytest.approx(2 * (1e-3 + 3e-4) + 8 * 0.5)


def test_loop_schedule():
    p = Loop(max_current=4e-3, current_steps=4, pulse_width=1e-4, read_current=1e-4, cycles=2)
    a = p.arrays()
    one = np.array([1, 2, 3, 4, 3, 2, 1, 0, -1, -2, -3, -4, -3, -2, -1, 0]) * 1e-3
    assert len(p) == 32
    assert np.allclose(a["pulse_current"], np.tile(one, 2))
    assert list(a["cycle"]) == [0] * 16 + [1] * 16 and list(a["step"][:16]) == list(range(16))
    # a zero-current point is a read only: no width, no energy
    assert np.all(a["pulse_width"][a["pulse_current"] == 0] == 0)
    assert p.n_pulses == 28 and p.peak_current == pytest.approx(4e-3)


def test_potdep_schedule():
    p = PotDep(amplitude=2e-3, pulses=3, pulse_width=1e-4, read_current=1e-4, cycles=2,
               depression_amplitude=3e-3)
    steps = list(p.steps())
    assert len(steps) == 12
    assert [s.step for s in steps] == list(range(6)) * 2
    assert [s.pulse_current for s in steps[:6]] == [2e-3] * 3 + [-3e-3] * 3
    assert [s.cycle for s in steps] == [0] * 6 + [1] * 6


def test_retention_schedule():
    p = Retention(reads=5, interval=2.0, read_current=1e-4, set_current=5e-3, pulse_width=2e-4)
    steps = list(p.steps())
    assert len(steps) == 6 and [s.step for s in steps] == list(range(6))
    assert steps[0] == Step(0, 0, 5e-3, 2e-4, 1e-4, 0.0)
    assert all(s.pulse_current == 0 and s.pulse_width == 0 and s.wait == 2.0 for s in steps[1:])
    assert p.duration() == pytest.approx(2e-4 + 10.0)
    bare = Retention(reads=3, interval=0.5, read_current=1e-4)
    assert len(bare) == 3 and bare.n_pulses == 0 and bare.peak_current == 0.0


def test_steps_start_resumes_at_index():
    p = parse_recipe(STAIRCASE).protocol
    all_steps = list(p.steps())
    assert list(p.steps(start=5)) == all_steps[5:]
    assert list(p.steps(start=len(p))) == []


def test_arrays_are_read_only():
    a = parse_recipe(STAIRCASE).protocol.arrays()
    with pytest.raises(ValueError):
        a["pulse_current"][0] = 1.0


def test_large_schedule_is_cheap():
    p = Loop(max_current=1e-3, current_steps=50, pulse_width=1e-4, read_current=1e-4, cycles=1000)
    assert len(p) == 200_000
    n = sum(1 for _ in p.steps())
    assert n == 200_000


# --- validation ---------------------------------------------------------------------------------

def bad(tmp_path, text):
    p = write(tmp_path, text)
    with pytest.raises(UserError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg
    return msg


def test_unknown_parameter(tmp_path):
    msg = bad(tmp_path, STAIRCASE + "colour = 3\n")
    assert "parameters.colour" in msg and "unknown" in msg


def test_unknown_top_level_key(tmp_path):
    assert "author: unknown key" in bad(tmp_path, 'author = "me"\n' + STAIRCASE)


def test_garbled_toml(tmp_path):
    assert "invalid TOML" in bad(tmp_path, STAIRCASE.replace("states = 4", "states = = 4"))


def test_wrong_type(tmp_path):
    msg = bad(tmp_path, STAIRCASE.replace("cycles = 3", 'cycles = "three"'))
    assert "parameters.cycles" in msg and "integer" in msg
    msg = bad(tmp_path, STAIRCASE.replace("pulse_width = 100e-6", "pulse_width = true"))
    assert "parameters.pulse_width" in msg and "number" in msg


@pytest.mark.parametrize("old,new,key", [
    ("pulse_width = 100e-6", "pulse_width = -1e-4", "pulse_width"),
    ("pulse_width = 100e-6", "pulse_width = nan", "pulse_width"),
    ("cycles = 3", "cycles = 0", "cycles"),
    ("states = 4", "states = 1", "states"),
    ("read_current = 1e-4", "read_current = 0", "read_current"),
    ("reset_current = -5e-3", "reset_current = 5e-3", "reset_current"),   # same sign as the ladder
    ("stop = 4e-3", "stop = 0.5e-3", "stop"),                             # ladder must grow
    ("stop = 4e-3", "stop = inf", "stop"),
])
def test_out_of_range(tmp_path, old, new, key):
    assert f"parameters.{key}:" in bad(tmp_path, STAIRCASE.replace(old, new))


def test_missing_parameter_and_ladder_conflict(tmp_path):
    assert "parameters.states: missing" in bad(tmp_path, STAIRCASE.replace("states = 4", ""))
    msg = bad(tmp_path, STAIRCASE + "amplitudes = [1e-3, 2e-3]\n")
    assert "amplitudes or start/stop/states" in msg


def test_bad_kind_and_name(tmp_path):
    assert "kind: unknown kind 'spiral'" in bad(tmp_path, STAIRCASE.replace('"staircase"', '"spiral"'))
    assert "name: missing" in bad(tmp_path, STAIRCASE.replace('name = "mine"', ""))


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="nope.toml: no such recipe"):
        load_recipe(tmp_path / "nope.toml")
    with pytest.raises(UserError, match="no_such_shipped: no such recipe"):
        load_recipe("no_such_shipped")


def test_direct_construction_validates():
    with pytest.raises(UserError, match=r"parameters\.pulses: must be >= 1"):
        PotDep(amplitude=1e-3, pulses=0, pulse_width=1e-4, read_current=1e-4)
    with pytest.raises(UserError, match=r"parameters\.amplitudes\[1\]"):
        Staircase(reset_current=-1e-3, amplitudes=[1e-3, 0.0], pulse_width=1e-4, read_current=1e-4, cycles=1)


# --- overrides and text -------------------------------------------------------------------------

def test_overrides_apply_and_keep_text(tmp_path):
    p = write(tmp_path, STAIRCASE)
    r = load_recipe(p, overrides={"cycles": "7", "states": 5, "pulse_width": 2e-4})
    assert r.protocol.cycles == 7 and r.protocol.n_states == 5 and r.protocol.pulse_width == 2e-4
    assert len(r.protocol) == 35
    assert r.text == STAIRCASE and r.overrides == {"cycles": 7, "states": 5, "pulse_width": 2e-4}
    assert r.parameters()["cycles"] == 7
    r = load_recipe("staircase", overrides={"amplitudes": "[1e-3, 2e-3]", "start": None, "stop": None,
                                            "states": None})
    assert r.protocol.n_states == 3


def test_bad_overrides(tmp_path):
    p = write(tmp_path, STAIRCASE)
    with pytest.raises(UserError, match=r"r\.toml: parameters\.cycles: must be >= 1.*\(override\)"):
        load_recipe(p, overrides={"cycles": 0})
    with pytest.raises(UserError, match=r"parameters\.speed: unknown"):
        load_recipe(p, overrides={"speed": 1})
    with pytest.raises(UserError, match=r"parameters\.pulse_width: expected a number"):
        load_recipe(p, overrides={"pulse_width": "fast"})


def test_protocols_registry():
    assert set(PROTOCOLS) == {"loop", "staircase", "potdep", "retention", "endurance"}
    for kind, cls in PROTOCOLS.items():
        assert issubclass(cls, Protocol) and cls.kind == kind


@pytest.mark.parametrize("name,preset", [("staircase", "tilted"), ("staircase_idmi", "idmi"),
                                         ("staircase_orange_peel", "orange_peel")])
def test_shipped_ladders_follow_the_physics_calibration(name, preset):
    """The shipped ladders are the simulator's suggested ones; a recalibration must update them."""
    from labspin.sim_backend import physics

    p = load_recipe(name).protocol
    s = physics.suggested_staircase(physics.preset(preset), p.n_states, p.pulse_width)
    assert p.reset_current == pytest.approx(s["reset_current"], rel=1e-3), \
        f"update protocols/recipes/{name}.toml from physics.suggested_staircase"
    assert np.allclose(p.ladder(), s["amplitudes"], rtol=1e-3), \
        f"update protocols/recipes/{name}.toml from physics.suggested_staircase"


@pytest.mark.parametrize("name", SHIPPED)
def test_parameters_round_trip(name):
    """What the run file stores (parameters JSON) rebuilds the same protocol (analysis, resume)."""
    p = load_recipe(name).protocol
    stored = json.loads(json.dumps(p.parameters()))
    assert PROTOCOLS[p.kind].from_parameters(stored) == p
