"""Extension points: a protocol kind and an observer defined outside labspin, as a user would.

The kind `toggle` (alternating ±I writes, a read after each; its write error rate) lives in a
module written to tmp_path and reached only through the entry-point groups of an installed
distribution (a dist-info folder on sys.path): `labspin run` loads its recipe, runs it on the
simulated bench, `labspin analyze` adds its analysis and its report section. Observers: one
defined in this file, selected by name, labelled in the evaluator's table; one from the same
plugin distribution used by `labspin evaluate --observer`.
"""
from __future__ import annotations

import json
import sys
import textwrap
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

from labspin.cli import main
from labspin.errors import UserError
from labspin.levels import LevelTable
from labspin.protocols import PROTOCOLS, Protocol, load_recipe, param, parse_recipe, registry
from labspin.quant import observers
from labspin.quant.data import ImageSet
from labspin.quant.evaluate import config_label, evaluate_levels
from labspin.quant.levels_map import uniform_levels
from labspin.quant.model import resnet18_cifar
from labspin.quant.observers import OBSERVERS, Observer, make_observer, range_to_qparams
from labspin.store import read_run

TOGGLE = '''
    """`toggle`: +I then -I write pulses each cycle, a read after each (step 0: after +I)."""
    from dataclasses import dataclass
    from typing import ClassVar

    import numpy as np

    from labspin.protocols import Demand, Protocol, Segment, param
    from labspin.protocols.base import at_least, nonzero, positive


    @dataclass(frozen=True)
    class Toggle(Protocol):
        kind: ClassVar[str] = "toggle"
        states_from_step: ClassVar[bool] = True
        analysis: ClassVar[str] = "toy_toggle:analyze"
        report: ClassVar[str] = "toy_toggle_report:ToggleSection"

        write_current: float = param(unit="A", check=positive)
        pulse_width: float = param(unit="s", check=positive)
        read_current: float = param(unit="A", check=nonzero)
        cycles: int = param(1, kind="int", check=at_least(1))

        def _segments(self):
            i = self.write_current
            one = {"cycle": np.zeros(2, np.int64), "step": np.arange(2), "pulse_current": np.array([i, -i]),
                   "pulse_width": self.pulse_width, "read_current": self.read_current, "wait": 0.0}
            return [Segment(one, self.cycles)]

        def demands(self):
            return [Demand("write_current", "pulse_current", self.write_current),
                    Demand("write_current", "pulse_current", -self.write_current),
                    Demand("pulse_width", "pulse_width", self.pulse_width),
                    Demand("read_current", "read_current", self.read_current)]


    def analyze(a):
        """A cycle toggled when its two reads lie on opposite sides of the window's midpoint."""
        piv = a.data.pivot_table(index="cycle", columns="step", values="hall_resistance",
                                 aggfunc="last").dropna()
        mid = (a.window["r_min"] + a.window["r_max"]) / 2
        toggled = int(((piv[0] > mid) != (piv[1] > mid)).sum())
        return {"toggle": {"cycles": len(piv), "toggled": toggled,
                           "error_rate": 1 - toggled / len(piv)}}
'''

TOGGLE_REPORT = '''
    from labspin import report


    class ToggleSection(report.ReportSection):
        captions = {"toggle": "R_H after +I and after -I per cycle"}

        def figures(self, a, out, name):
            fig = report.figure((7, 4))
            ax = fig.add_subplot()
            for step, label in ((0, "after +I"), (1, "after -I")):
                d = a.data[a.data["step"] == step]
                ax.plot(d["cycle"], d["hall_resistance"], "o", ms=3, label=label)
            ax.legend()
            return {"toggle": report.save(fig, out / f"{name}_toggle.png").name}

        def markdown(self, a):
            t = a.results["toggle"]
            return [f"- toggled in {t['toggled']} of {t['cycles']} cycles (write error rate {t['error_rate']:.3g})"]

        def summary(self, a):
            return [f"write error rate {a.results['toggle']['error_rate']:.3g}"]
'''

MAXABS = '''
    from labspin.quant.observers import Observer, range_to_qparams


    class MaxAbsObserver(Observer):
        """[-max|w|, max|w|] onto the levels: zero maps to the middle of the ladder."""
        name = "maxabs"
        label = "max-abs"

        def observe_rows(self, w2d, levels):
            m = w2d.abs().amax(dim=1)
            return range_to_qparams(-m, m, levels)
'''

RECIPE = """
name = "wer"
kind = "toggle"
description = "write error rate at +/-11 mA"
[parameters]
write_current = "11 mA"
pulse_width = 100e-6
read_current = 100e-6
cycles = 20
"""

MODULES = ("toy_toggle", "toy_toggle_report", "toy_maxabs")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed distribution `labspin-toy` whose entry points name the toy kind and observer."""
    site = tmp_path / "site"
    site.mkdir()
    for module, text in zip(MODULES, (TOGGLE, TOGGLE_REPORT, MAXABS)):
        (site / f"{module}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    dist = site / "labspin_toy-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: labspin-toy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[labspin.protocols]\ntoggle = toy_toggle\n\n"
                                           "[labspin.observers]\nmaxabs = toy_maxabs:MaxAbsObserver\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    registry.unregister("toggle")
    observers.unregister("maxabs")
    for module in MODULES:
        sys.modules.pop(module, None)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


# --------------------------------------------------------------------------- protocol kinds

def test_shipped_kinds_bring_their_analysis_and_report_section():
    entries = registry.entries()
    assert list(PROTOCOLS) == ["loop", "staircase", "potdep", "retention", "endurance"]
    assert [k for k, e in entries.items() if e.states_from_step] == ["levels", "staircase", "potdep"]
    assert entries["loop"].analysis_function().__module__ == "labspin.analysis.loop"
    assert type(entries["retention"].report_section()).__name__ == "RetentionSection"
    assert entries["levels"].protocol is None and "levels" not in PROTOCOLS


def test_a_kind_from_an_installed_plugin_runs_analyses_and_reports(plugin, tmp_path, capsys):
    assert "toy_toggle" not in sys.modules          # nothing imported it: the entry point will
    recipe = tmp_path / "wer.toml"
    recipe.write_text(RECIPE, encoding="utf-8")
    code, out, err = cli(capsys, "dry-run", str(recipe), "--sim", "tilted:3")
    assert code == 0 and "wer (toggle)" in out, err + out
    run = tmp_path / "wer.h5"
    code, _, err = cli(capsys, "run", str(recipe), "--sim", "tilted:3", "-o", str(run), "--no-progress")
    assert code == 0, err
    rf = read_run(run)
    assert rf.status == "completed" and rf.protocol["kind"] == "toggle" and len(rf.data) == 40
    np.testing.assert_array_equal(rf.data["pulse_current"].to_numpy()[:4], [11e-3, -11e-3, 11e-3, -11e-3])

    code, out, err = cli(capsys, "analyze", str(run), "-o", str(tmp_path / "rep"))
    assert code == 0, err
    # the reads, recomputed here: after +I and after -I on either side of the midpoint, every cycle
    r = rf.data["hall_resistance"].to_numpy().reshape(20, 2)
    mid = (r[:, 0].mean() + r[:, 1].mean()) / 2
    toggled = int(np.sum((r[:, 0] > mid) != (r[:, 1] > mid)))
    assert toggled == 20 and abs(r[:, 0].mean() - r[:, 1].mean()) > 0.1   # ±11 mA switches the tilted bar
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())["runs"][0]
    assert summary["toggle"] == {"cycles": 20, "toggled": toggled, "error_rate": 0.0}
    assert summary["n_states"] == 2 and summary["state_source"] == "step" and summary["ctc"] > 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "- toggled in 20 of 20 cycles (write error rate 0)" in md
    assert "![R_H after +I and after -I per cycle](wer_toggle.png)" in md
    assert (tmp_path / "rep" / "wer_toggle.png").stat().st_size > 1000
    assert "wer: toggle" in out and "write error rate 0" in out

    code, out, _ = cli(capsys, "recipes")
    assert code == 0 and "toggle" in out.split("protocol kinds:")[1]
    with pytest.raises(UserError, match=r"parameters\.write_current: missing \(required for kind 'toggle'\)"):
        load_recipe(recipe, {"write_current": None})


def test_a_kind_defined_in_code_registers_and_a_taken_kind_is_refused():
    from dataclasses import dataclass

    from labspin.protocols import Demand, Segment

    @dataclass(frozen=True)
    class Hold(Protocol):
        kind: ClassVar[str] = "hold"
        read_current: float = param(unit="A")
        reads: int = param(kind="int")

        def _segments(self):
            return [Segment({"cycle": 0, "step": np.arange(self.reads), "pulse_current": 0.0,
                             "pulse_width": 0.0, "read_current": self.read_current, "wait": 0.0}, 1)]

        def demands(self):
            return [Demand("read_current", "read_current", self.read_current)]

    try:
        assert PROTOCOLS["hold"] is Hold and registry.get("hold").analysis is None
        r = parse_recipe('name = "h"\nkind = "hold"\n[parameters]\nread_current = "100 uA"\nreads = 3\n')
        assert [s.read_current for s in r.protocol.steps()] == [1e-4] * 3
        with pytest.raises(ValueError, match="'loop' is already registered"):
            @dataclass(frozen=True)
            class NotALoop(Hold):
                kind: ClassVar[str] = "loop"
        assert PROTOCOLS["loop"].__module__ == "labspin.protocols.loop"
    finally:
        registry.unregister("hold")
    with pytest.raises(UserError, match="unknown kind 'hold'"):
        parse_recipe('name = "h"\nkind = "hold"\n[parameters]\n')


# --------------------------------------------------------------------------- observers

def test_an_observer_defined_here_is_selected_labelled_and_evaluated():
    class SymmetricObserver(Observer):
        name = "symmetric"
        label = "symmetric max-abs"

        def observe_rows(self, w2d, levels):
            m = w2d.abs().amax(dim=1)
            return range_to_qparams(-m, m, levels)

    try:
        ob = make_observer("Symmetric", "channel")
        assert isinstance(ob, SymmetricObserver) and "symmetric" in OBSERVERS
        w = torch.tensor([[-0.1, 0.3, 0.2], [-0.8, 0.1, 0.4]])
        lv = uniform_levels(5)
        s, _ = ob(w, lv)
        # the range is ±max|w| whatever the sign: 2·0.3 and 2·0.8 over the ladder's span
        torch.testing.assert_close(s, torch.tensor([0.6, 1.6]) / float(lv.hi - lv.lo))
        assert config_label("symmetric", "channel", True) == "per-channel symmetric max-abs + CTC noise"
        assert config_label("minmax", "tensor", False) == "per-tensor min-max"

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 10)).eval()
        g = torch.Generator().manual_seed(0)
        images = ImageSet(torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8, generator=g),
                          torch.randint(0, 10, (16,), generator=g), "synthetic")
        df = evaluate_levels(model, 7, images, observers="minmax,symmetric", granularities="channel",
                             noise=False, batch_size=16)
        assert list(df["config"]) == ["FP32", "per-channel min-max", "per-channel symmetric max-abs"]
        assert list(df["observer"]) == ["", "minmax", "symmetric"]
        assert df.loc[2, "weight_mse"] != df.loc[1, "weight_mse"]      # a different map, a different error
    finally:
        observers.unregister("symmetric")
    with pytest.raises(UserError, match="observer: unknown 'symmetric'") as e:
        make_observer("symmetric")
    assert e.value.key == "observer"


def test_an_observer_from_an_installed_plugin_in_labspin_evaluate(plugin, tmp_path, capsys):
    sd = resnet18_cifar().state_dict()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, tmp_path / "ck.pt")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "small.npz", x=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
             y=rng.integers(0, 10, 8).astype(np.uint8))
    LevelTable(np.linspace(0.0, 1.0, 7), np.full(7, 0.02), np.full(7, 50), device={"id": "t7"},
               ctc_definition="window").save_json(tmp_path / "levels.json")
    code, out, err = cli(capsys, "evaluate", "--levels", str(tmp_path / "levels.json"),
                         "--checkpoint", str(tmp_path / "ck.pt"), "--data", str(tmp_path / "small.npz"),
                         "--observer", "maxabs", "--granularity", "channel", "--no-noise",
                         "--batch-size", "8", "-o", str(tmp_path / "res"))
    assert code == 0, err
    df = pd.read_csv(tmp_path / "res" / "results.csv")
    assert list(df["config"]) == ["FP32", "per-channel max-abs"] and list(df["observer"])[1] == "maxabs"
    assert type(make_observer("max_abs")).__module__ == "toy_maxabs"
