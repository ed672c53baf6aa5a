"""labspin.outputs: the one rule for files and folders labspin writes (report, evaluate, demo,
levels, import, fit, bus logs)."""
from __future__ import annotations

import pytest

from labspin.cli import main
from labspin.errors import UserError
from labspin.levels import LevelTable
from labspin.outputs import check_output_dir, check_output_file, prepare_output_dir


def test_output_folder_missing_is_created_with_its_parents(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_output_dir(target) == target and not target.exists()    # the check writes nothing
    assert prepare_output_dir(target) == target and target.is_dir()
    assert prepare_output_dir(target) == target                          # empty: fine again


def test_output_folder_with_any_file_needs_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"exists and is not empty \(use overwrite") as exc:
        prepare_output_dir(tmp_path)
    assert str(tmp_path) in str(exc.value) and "\n" not in str(exc.value)
    assert exc.value.key == "overwrite"          # the CLI shows --overwrite (tests/test_errors.py)
    assert prepare_output_dir(tmp_path, overwrite=True) == tmp_path
    assert (tmp_path / "notes.txt").read_text() == "mine"              # writing into it deletes nothing


def test_output_folder_that_is_a_file_is_refused_even_with_overwrite(tmp_path):
    f = tmp_path / "report"
    f.write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        check_output_dir(f, overwrite=True)


def test_output_file_rules(tmp_path):
    with pytest.raises(UserError, match="is a folder, not a file"):
        check_output_file(tmp_path, overwrite=True)
    with pytest.raises(UserError, match=r"--plot .*: folder .*missing does not exist"):
        check_output_file(tmp_path / "missing" / "x.png", label="--plot")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(UserError, match=r"x\.json: exists \(use overwrite"):
        check_output_file(tmp_path / "x.json")
    check_output_file(tmp_path / "x.json", overwrite=True)


def test_levels_export_follows_the_rule(tmp_path):
    t = LevelTable([1.0, 2.0], [0.1, 0.1], [5, 5], device={"id": "d"})
    with pytest.raises(UserError, match="does not exist"):
        t.save_json(tmp_path / "nope" / "l.json")
    assert not (tmp_path / "nope").exists()


def test_evaluate_refuses_a_folder_holding_other_files(tmp_path, capsys):
    """The stricter of the two old rules: `labspin evaluate -o DIR` refused only its own four
    files; now any file in DIR is an output it would mix with, like `labspin analyze`."""
    out = tmp_path / "res"
    out.mkdir()
    (out / "report.md").write_text("an analysis report")
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--uniform", "8", "--checkpoint", str(tmp_path / "ck.pt"), "--data",
              str(tmp_path / "d.npz"), "-o", str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "not empty" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["report.md"]
