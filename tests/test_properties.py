"""Bad input never ends in a traceback: generated and mutated recipes, station files, level tables,
run files and CLI values each end in success or one line + exit 2, and never change a file.

hypothesis drives the inputs (max_examples kept small: the suite runs on 2 cores in CI); every
test calls the real entry points (the parsers and `labspin ...` in-process) and fails on any
exception other than UserError, on a message of more than one line, or on a touched file.
"""
from __future__ import annotations

import hashlib
import math
import os
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from labspin.cli import main
from labspin.errors import UserError
from labspin.levels import load_levels
from labspin.protocols.recipe import _recipes_dir, parse_recipe, shipped_recipes
from labspin.station import load_station_spec
from labspin.store import read_run

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
LOOP_TEXT = (_recipes_dir() / "loop.toml").read_text(encoding="utf-8")
STATION_TEXT = (ROOT / "docs" / "station_example.toml").read_text(encoding="utf-8")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`labspin ARGV` in-process: a traceback escapes as an exception and fails the test."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def assert_one_line(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("labspin: error: "), (code, err)
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def ok_or_one_line(code: int, err: str) -> None:
    if code != 0:
        assert_one_line(code, err)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def user_error_is_one_line(fn, *args) -> object | None:
    """fn(*args) succeeds or raises a one-line UserError; anything else fails the test."""
    try:
        return fn(*args)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).strip(), repr(exc)
        return None


# --- values TOML can hold -------------------------------------------------------------------

scalars = st.one_of(
    st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["5 mA", "100 us", "20 V", "-3 mA", "1e400 A", "2**99 A", "mA", "5 kg", "nan A",
                     "1e-3", "0x10", "[1]", "9999999999999999999 s"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=6)


# --- regressions the issue names ------------------------------------------------------------

def test_list_where_the_kind_belongs(tmp_path, capsys):
    p = tmp_path / "loop.toml"
    p.write_text(LOOP_TEXT.replace('kind = "loop"', 'kind = ["loop"]'))
    assert_one_line(*cli(capsys, "dry-run", str(p), "--sim", "tilted")[::2], "loop.toml", "kind")


def test_hdf5_signature_then_garbage(tmp_path, capsys):
    p = tmp_path / "bad.h5"
    raw = b"\x89HDF\r\n\x1a\n" + b"garbage!" * 64
    p.write_bytes(raw)
    assert_one_line(*cli(capsys, "info", str(p))[::2], "bad.h5")
    assert_one_line(*cli(capsys, "analyze", str(p), "-o", str(tmp_path / "out"))[::2], "bad.h5")
    assert p.read_bytes() == raw


# --- recipes ---------------------------------------------------------------------------------

@SETTINGS
@given(name=st.sampled_from(shipped_recipes()), data=st.data())
def test_mutated_recipes_validate_or_name_the_field(name, data):
    doc = tomllib.loads((_recipes_dir() / f"{name}.toml").read_text(encoding="utf-8"))
    target = data.draw(st.sampled_from(["name", "kind", "description", "parameters", "extra"]
                                       + [f"parameters.{k}" for k in doc["parameters"]]))
    new = data.draw(values)
    if target.startswith("parameters."):
        doc["parameters"][target.split(".", 1)[1]] = new
    else:
        doc[target] = new
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):          # e.g. NaN keys TOML cannot write: not an input
        assume(False)
    r = user_error_is_one_line(parse_recipe, text, "m.toml")
    if r is not None:                          # accepted: the schedule is usable and finite
        p = r.protocol
        assert len(p) >= 1 and math.isfinite(p.duration(0.1)) and math.isfinite(p.peak_current)


@SETTINGS
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_not_a_traceback(text):
    user_error_is_one_line(parse_recipe, text, "t.toml")


# --- station files ---------------------------------------------------------------------------

def _station_targets() -> list[str]:
    doc = tomllib.loads(STATION_TEXT)
    out = []
    for table in ("sample", "limits"):
        out += [f"{table}.{k}" for k in doc.get(table, {})]
    out += ["name", "roles.pulse_source", "roles.hall_reader", "instruments", "limits.bogus"]
    out += [f"instruments.{k}.{f}" for k, v in doc["instruments"].items() for f in ("driver", "address")]
    return out


@SETTINGS
@given(target=st.sampled_from(_station_targets()), new=values)
def test_mutated_station_files(tmp_path, monkeypatch, target, new):
    import pyvisa
    monkeypatch.setattr(pyvisa, "ResourceManager", lambda *a, **k: pytest.fail("VISA opened"))
    doc = tomllib.loads(STATION_TEXT)
    node = doc
    *path, last = target.split(".")
    for key in path:
        node = node.setdefault(key, {})
        assume(isinstance(node, dict))
    node[last] = new
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        assume(False)
    f = tmp_path / "station.toml"
    f.write_text(text)
    spec = user_error_is_one_line(load_station_spec, f)
    if spec is not None:
        lim = spec.limits
        assert all(math.isfinite(v) and v > 0 for v in lim.as_dict().values())


# --- level tables ----------------------------------------------------------------------------

level_rows = st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True), values, values),
                      max_size=5)


@SETTINGS
@given(rows=level_rows, fmt=st.sampled_from(["json", "csv", "junk"]), extra=values)
def test_generated_level_tables(tmp_path, rows, fmt, extra):
    import json
    if fmt == "json":
        doc = {"format": "labspin-levels/1",
               "levels": [{"mean": m, "std": s, "n": n} for m, s, n in rows], "device": extra}
        text = json.dumps(doc, default=str)
        name = "levels.json"
    elif fmt == "csv":
        text = "states,mean,std\n" + "".join(f"{i},{m},{s}\n" for i, (m, s, _) in enumerate(rows))
        name = "levels.csv"
    else:
        text = repr(extra)
        name = "levels.json"
    p = tmp_path / name
    p.write_text(text)
    before = digest(p)
    t = user_error_is_one_line(load_levels, p)
    if t is not None:
        assert len(t) >= 2 and np.all(np.isfinite(t.mean)) and np.all(np.diff(t.mean) >= 0)
    assert digest(p) == before


# --- run files -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "good.h5"
    with pytest.raises(SystemExit) as exc:
        main(["run", "staircase", "--sim", "tilted:1", "--set", "cycles=3", "-o", str(path),
              "--no-progress"])
    assert exc.value.code == 0
    return path


@SETTINGS
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                                 max_size=8))
def test_truncated_or_garbled_run_files(tmp_path, capsys, good_run, cut, flips):
    raw = bytearray(good_run.read_bytes())
    raw = raw[:max(8, int(len(raw) * cut))] if cut < 1.0 else raw
    for where, byte in flips:
        raw[int(where * (len(raw) - 1))] = byte
    p = tmp_path / "mangled.h5"
    p.write_bytes(bytes(raw))
    before = digest(p)
    user_error_is_one_line(read_run, p)
    ok_or_one_line(*cli(capsys, "info", str(p))[::2])
    assert digest(p) == before


@SETTINGS
@given(column=st.sampled_from(["pulse_index", "hall_resistance", "cycle", "step", "time"]),
       kind=st.sampled_from(["string", "2d", "missing", "short", "float_index"]))
def test_run_file_with_wrong_types(tmp_path, capsys, good_run, column, kind):
    p = tmp_path / "typed.h5"
    p.write_bytes(good_run.read_bytes())
    with h5py.File(p, "a") as f:
        d = f["entry/data"]
        n = d[column].shape[0]
        del d[column]
        if kind == "string":
            d[column] = np.array([b"x"] * n)
        elif kind == "2d":
            d[column] = np.zeros((n, 2))
        elif kind == "short":
            d[column] = np.zeros(max(0, n - 5))
        elif kind == "float_index":
            d[column] = np.linspace(0, 1, n)
    before = digest(p)
    user_error_is_one_line(read_run, p)
    ok_or_one_line(*cli(capsys, "info", str(p))[::2])
    assert digest(p) == before


# --- CLI argument values ---------------------------------------------------------------------

cli_text = st.one_of(st.text(max_size=15), st.sampled_from(
    ["", "=", "nan", "inf", "-1", "0", "1e999", "[1,", "{a=1}", "5 V", "200 us", "tilted:-1",
     "tilted:x", "tilted:1:2", ":", "orange_peel:99999999999999999999"]))


@SETTINGS
@given(key=st.sampled_from(["cycles", "pulse_width", "read_current", "amplitudes", "reset_current",
                            "bogus", "", "cycles "]), value=cli_text)
def test_set_values(capsys, key, value):
    ok_or_one_line(*cli(capsys, "dry-run", "staircase", "--sim", "tilted", "--set", f"{key}={value}")[::2])


@SETTINGS
@given(sim=cli_text, flush=cli_text, states=cli_text)
def test_option_values(tmp_path, capsys, good_run, sim, flush, states):
    before = digest(good_run)
    out = tmp_path / "o.h5"
    ok_or_one_line(*cli(capsys, "dry-run", "staircase", "--sim", sim)[::2])
    code, _, err = cli(capsys, "run", "staircase", "--sim", "tilted", "--set", "cycles=1", "-o",
                       str(out), "--flush-interval", flush, "--no-progress")
    ok_or_one_line(code, err)
    if out.exists():
        out.unlink()
    ok_or_one_line(*cli(capsys, "levels", str(good_run), "-o", str(tmp_path / "l.json"), "--states",
                        states, "--overwrite")[::2])
    assert digest(good_run) == before
