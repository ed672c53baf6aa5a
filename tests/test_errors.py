"""Structured errors: the library names the field (`key`), the CLI shows the flag the user typed."""
from __future__ import annotations

import pickle

import pytest

from labspin.analysis import cluster_1d
from labspin.cli import main
from labspin.errors import FieldError, UserError
from labspin.protocols import ParameterError, load_recipe
from labspin.station import sim_station_spec


def cli(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    return exc.value.code, capsys.readouterr().err


def test_field_error_carries_key_reason_and_file():
    err = FieldError("observer", "unknown 'kl'")
    assert (err.key, err.reason, str(err)) == ("observer", "unknown 'kl'", "observer: unknown 'kl'")
    moved = err.replace(where="cfg.toml")
    assert str(moved) == "cfg.toml: observer: unknown 'kl'" and moved.key == "observer"
    assert isinstance(err, UserError) and UserError("x").key is None
    back = pickle.loads(pickle.dumps(ParameterError("cycles", "must be >= 1", "a.toml")))   # dask workers
    assert type(back) is ParameterError and (back.key, back.parameter, str(back)) == (
        "parameters.cycles", "cycles", "a.toml: parameters.cycles: must be >= 1")


def test_recipe_errors_keep_their_key_through_load_recipe():
    with pytest.raises(ParameterError) as exc:
        load_recipe("staircase", {"cycles": 0})
    assert exc.value.key == "parameters.cycles" and exc.value.where == "staircase.toml"
    assert str(exc.value) == "staircase.toml: parameters.cycles: must be >= 1, got 0 (override)"
    with pytest.raises(ParameterError) as exc:
        load_recipe("staircase", {"nosuch": 1})
    assert exc.value.key == "parameters.nosuch" and "unknown parameter" in exc.value.reason


@pytest.mark.parametrize("call, key", [
    (lambda: sim_station_spec("tilted:x"), "sim"),
    (lambda: sim_station_spec("tilted:1", hall_mode="lockin"), "hall_mode"),
    (lambda: cluster_1d([1.0, 2.0], 5), "states"),
])
def test_library_messages_name_the_field_not_a_flag(call, key):
    with pytest.raises(FieldError) as exc:
        call()
    assert exc.value.key == key and str(exc.value).startswith(f"{key}: ") and "--" not in str(exc.value)


def test_cli_maps_the_field_to_the_flag_it_was_given_as(capsys, tmp_path):
    code, err = cli(capsys, "dry-run", "staircase", "--sim", "tilted:x")
    assert code == 2 and err == ("labspin: error: --sim: tilted:x: seed must be a non-negative integer, "
                                 "got 'x'\n")
    code, err = cli(capsys, "run", "staircase", "--station", "x.toml", "--hall-mode", "pulse_delta",
                    "-o", str(tmp_path / "r.h5"))
    assert code == 2 and err.startswith("labspin: error: --hall-mode: only with a simulated bench")
    # a recipe parameter is no option: it keeps its field name (and the recipe file)
    code, err = cli(capsys, "dry-run", "staircase", "--sim", "tilted:1", "--set", "cycles=0")
    assert code == 2 and err == "labspin: error: staircase.toml: parameters.cycles: must be >= 1, got 0 (override)\n"
    assert not (tmp_path / "r.h5").exists()


def test_flag_for_matches_the_option_keyword_or_its_spelling():
    import click

    from labspin.cli.flags import flag_for

    @click.command()
    @click.option("--batch-size", type=int)
    @click.option("--column", "columns", multiple=True)
    @click.option("--ctc")
    def cmd(batch_size, columns, ctc):
        """test"""
    assert flag_for(cmd, "batch_size") == "--batch-size"
    assert flag_for(cmd, "column") == "--column"              # keyword `columns`, spelt --column
    assert flag_for(cmd, "ctc_definition") == "--ctc"         # the API's name for --ctc
    assert flag_for(cmd, "parameters.cycles") is None


def test_an_existing_output_names_the_overwrite_field(capsys, tmp_path):
    from labspin.errors import OutputExists
    err = OutputExists(tmp_path / "r.h5", "exists", " to replace it")
    assert err.key == "overwrite" and str(err) == f"{tmp_path / 'r.h5'}: exists (use overwrite to replace it)"
    out = tmp_path / "run.h5"
    out.write_bytes(b"keep")
    code, err = cli(capsys, "import", str(tmp_path / "data.csv"), "-o", str(out))
    assert code == 2 and err == f"labspin: error: {out}: exists (use --overwrite to replace it)\n"
    assert out.read_bytes() == b"keep"


def test_a_file_field_is_never_shown_as_an_option(capsys, tmp_path):
    """A station file's own key named like an option (`sim`) stays the file's key."""
    bad = tmp_path / "bad.toml"
    bad.write_text('sim = "tilted"\n')
    code, err = cli(capsys, "check", "--station", str(bad))
    assert code == 2 and err.startswith(f"labspin: error: {bad}: sim: unknown key") and "--sim" not in err


def test_fit_demo_and_station_messages_name_no_flag(tmp_path):
    """The fit's missing pulse width names its run column, the demo's hint its field, the
    pre-flight refusal no option: the library never spells a CLI flag."""
    from types import SimpleNamespace

    import pandas as pd

    from labspin import demo, fit
    from labspin.drivers.checks import CheckReport
    from labspin.station.factory import failed_checks_error

    run = SimpleNamespace(kind="loop", unit="ohm", sources=["run.h5"], name="run",
                          data=pd.DataFrame({"cycle": [0, 0], "pulse_width": [0.0, 0.0],
                                             "pulse_current": [1e-3, -1e-3],
                                             "hall_resistance": [1.0, 2.0]}))
    with pytest.raises(FieldError) as exc:
        fit.loop_tracks([run])
    assert (exc.value.key, exc.value.where) == ("pulse_width", "run.h5")
    assert str(exc.value).startswith("run.h5: pulse_width: cycle 0 has none") and "--" not in str(exc.value)
    ended = demo.RunEnded("d/runs/t.h5: the staircase run on tilted ended failed")
    assert ended.key == "resume" and "--" not in str(ended)
    assert str(ended).endswith("; continue with resume (same options)")
    report = CheckReport("k6221", "keithley6221", "GPIB0::12::INSTR")
    report.problem("error queue not empty: -310")
    msg = str(failed_checks_error(sim_station_spec("tilted:1"), [report]))
    assert "pre-flight check failed: k6221 (keithley6221 @ GPIB0::12::INSTR): FAIL: " in msg
    assert "--" not in msg


def test_the_demo_cli_spells_the_resume_field_as_its_flag(capsys, tmp_path, monkeypatch):
    from labspin import demo

    def ended(cfg, say):
        raise demo.RunEnded(f"{cfg.out_dir}: the staircase run on tilted ended failed")

    monkeypatch.setattr(demo, "run_demo", ended)
    code, err = cli(capsys, "demo", "-o", str(tmp_path / "d"))
    assert code == 2 and err == (f"labspin: error: {tmp_path / 'd'}: the staircase run on tilted "
                                 "ended failed; continue with --resume (same options)\n")


def test_the_demo_cli_itself_gives_the_checkpoint_and_data_hint(capsys, tmp_path, monkeypatch):
    from labspin import demo

    for var in ("LABSPIN_CHECKPOINT", "LABSPIN_DATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(demo, "run_demo", lambda cfg, say: None)
    for extra, hint in (((), True), (("--checkpoint", "c.pt", "--data", "x.npz"), False)):
        with pytest.raises(SystemExit) as exc:
            main(["demo", "-o", str(tmp_path / "d"), *extra])
        out = capsys.readouterr().out
        assert exc.value.code == 0 and ("note: give --checkpoint CKPT --data CIFAR" in out) is hint
