"""Bad input never ends in a traceback: generated and mutated recipes, station files, level tables,
run files and CLI values each end in success or one line + exit 2, and never change a file."""
from __future__ import annotations

import pytest

from labspin.cli import main

LOOP_TEXT = open(__import__("labspin.protocols.recipe", fromlist=["x"])._recipes_dir()
                 .joinpath("loop.toml"), encoding="utf-8").read()


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`labspin ARGV` in-process: a traceback escapes as an exception and fails the test."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def assert_one_line(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("labspin: error: "), (code, err)
    for n in needles:
        assert n in lines[0], (n, lines[0])


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
