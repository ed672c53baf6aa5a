"""`labspin sim loop`: table, switching currents, plot, and one-line errors."""
from __future__ import annotations

import re

import pytest

from labspin.cli import main


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _table(out):
    rows = [line.split() for line in out.splitlines() if line.startswith(("up ", "down "))]
    return [(b, float(i), float(r)) for b, i, r in rows]


def test_sim_loop_prints_table_and_switching_currents(capsys):
    code, out, err = run_cli(["sim", "loop", "--device", "tilted", "--seed", "1", "--steps", "21"], capsys)
    assert code == 0, err
    rows = _table(out)
    assert len(rows) == 84                      # the loop recipe: 0 → +I → −I → 0, 21 pulses a quarter
    assert {b for b, _, _ in rows} == {"up", "down"}
    sw = [float(v) for v in re.findall(r"switching current \((?:up|down) branch\):\s+([-+0-9.]+) mA", out)]
    assert len(sw) == 2 and sw[0] * sw[1] < 0
    r = [x for _, _, x in rows]
    assert max(r) - min(r) > 0.5        # tilted preset: R_AHE 0.8 ohm, window ~1.6 ohm


def test_sim_loop_is_reproducible_with_a_seed(capsys):
    argv = ["sim", "loop", "--device", "idmi", "--seed", "7", "--steps", "11"]
    _, out1, _ = run_cli(argv, capsys)
    _, out2, _ = run_cli(argv, capsys)
    assert out1 == out2


def test_sim_loop_plot(tmp_path, capsys):
    png = tmp_path / "loop.png"
    code, out, err = run_cli(["sim", "loop", "--steps", "11", "--plot", str(png)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run_cli(["sim", "loop", "--steps", "11", "--plot", str(png)], capsys)
    assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, word", [
    (["--device", "nosuch"], "nosuch"),
    (["--width", "1e-3", "--max-current", "0.5"], "max_current"),
    (["--read-current", "0.05"], "max_read_current"),
    (["--width", "1"], "pulse_width"),
    (["--steps", "0"], "current_steps"),
])
def test_sim_loop_bad_input_is_one_line_exit_2(argv, word, capsys):
    code, out, err = run_cli(["sim", "loop", *argv], capsys)
    assert code == 2
    assert err.startswith("labspin: error:") and word in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
