"""Figures and reports a first-day user reads: the demo's accuracy figure (title from the run's
metadata, nothing overlapping), CTC with and without the reset state, retention drift on log time."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from labspin import report  # noqa: E402
from labspin.analysis import analyze_run, ctc, retention_drift, state_stats  # noqa: E402
from labspin.levels import LevelTable  # noqa: E402

CONFIGS = [f"{m}per-{g} {o}{n}" for m, gs in (("", ("tensor", "channel")), ("differential ", ("channel",)))
           for g in gs for o in ("min-max", "MSE") for n in ("", " + CTC noise")]


def _grid(mapping: str, rng) -> pd.DataFrame:
    """What evaluate_levels returns, for the demo's two grids (attrs differ between them)."""
    rows = [dict(config="FP32", accuracy=91.8, std=0.0, trials=1, noise=False, images=300, observer=None,
                 granularity=None, delta=0.0)]
    for c in CONFIGS:
        if c.startswith("differential") != (mapping == "differential"):
            continue
        noise = "noise" in c
        acc = 80 + 11 * rng.random()
        rows.append(dict(config=c, accuracy=acc, std=1.5 if noise else 0.0, trials=2 if noise else 1,
                         noise=noise, images=300, observer="mse" if "MSE" in c else "minmax",
                         granularity="channel" if "channel" in c else "tensor", delta=acc - 91.8))
    df = pd.DataFrame(rows)
    df.attrs.update(levels="tilted.json", k=11 if mapping == "direct" else 21, images=300, mapping=mapping)
    return df


@pytest.fixture
def captured(monkeypatch):
    figs = []
    close = plt.close
    monkeypatch.setattr(plt, "close", figs.append)      # keep the figure to inspect it
    yield figs
    for f in figs:
        close(f)


def _bbox_data_to_display(ax, x0, y0, x1, y1):
    from matplotlib.transforms import Bbox
    return Bbox(ax.transData.transform([(x0, y0), (x1, y1)]))


def test_demo_accuracy_figure_keeps_metadata_and_nothing_overlaps(tmp_path, monkeypatch, captured):
    import labspin.quant.data
    import labspin.quant.evaluate
    from labspin import demo

    rng = np.random.default_rng(3)
    monkeypatch.setattr(labspin.quant.data, "load_cifar10", lambda *a, **k: type("D", (), {"subset": lambda s, n: s})())
    monkeypatch.setattr(labspin.quant.evaluate, "evaluate_levels",
                        lambda ckpt, table, data, mapping="direct", **kw: _grid(mapping, rng))
    table = LevelTable.from_stats(np.linspace(-1, 1, 11), np.full(11, 0.02), np.full(11, 200))
    cfg = demo.DemoConfig(tmp_path, quick=True, checkpoint="x", data="y")
    acc = demo._evaluate({"tilted": table}, cfg, tmp_path, say=lambda m: None)
    assert (tmp_path / "accuracy" / "tilted.png").is_file() and len(acc) == 13
    (fig,) = captured
    ax = fig.axes[0]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    title = ax.get_title()
    assert "K = 11" in title and "300 test images" in title and "None" not in title, title

    _check_no_overlaps(fig, acc[acc.config != "FP32"].reset_index(drop=True), fp=91.8)


def _check_no_overlaps(fig, q: pd.DataFrame, fp: float) -> None:
    ax = fig.axes[0]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ticks = [t.get_window_extent(r) for t in ax.get_xticklabels()]
    assert len(ticks) == len(q)
    for a, b in zip(ticks, ticks[1:]):
        assert not a.overlaps(b), "tick labels overlap"
    boxes = [t.get_window_extent(r) for t in ax.texts]
    assert len(boxes) == len(q)
    fp_y = ax.transData.transform([(0, fp)])[0, 1]
    for i, (box, row) in enumerate(zip(boxes, q.itertuples())):
        assert box.y1 < fp_y, "a value label crosses the FP32 line"
        if row.trials > 1:            # the whole error bar: caps ±6 px wide, lines ~1 px thick
            from matplotlib.transforms import Bbox
            e = _bbox_data_to_display(ax, i, row.accuracy - row.std, i, row.accuracy + row.std)
            eb = Bbox([[e.x0 - 6, e.y0 - 1.5], [e.x1 + 6, e.y1 + 1.5]])
            assert not box.overlaps(eb), f"value label {i} collides with its error bar"
        bar = ax.patches[i].get_window_extent(r)
        assert bar.x0 <= box.x0 and box.x1 <= bar.x1, "value label outside its bar's column"
        assert box.y1 <= bar.y1 or box.y0 >= bar.y1, "value label straddles its bar's top"


def test_accuracy_figure_with_collapsed_configurations(tmp_path, captured):
    """Orange-peel-like results: bars of a few % cannot hold their value; it goes above the error bar."""
    from labspin.quant.evaluate import plot
    df = _grid("direct", np.random.default_rng(5))
    low = df.config.str.contains("min-max")
    df.loc[low, "accuracy"] = [7.5, 3.75, 5.0, 12.5][: int(low.sum())]
    df.loc[low & df.noise, "std"] = 1.77
    df.attrs.update(levels="orange_peel's 4 measured levels", k=4)
    plot(df, tmp_path / "a.png")
    (fig,) = captured
    assert "K = 4" in fig.axes[0].get_title()
    _check_no_overlaps(fig, df[df.config != "FP32"].reset_index(drop=True), fp=91.8)


def _staircase_frame(rng) -> pd.DataFrame:
    means = np.array([0.0, 0.3, 0.55, 0.8, 1.0])
    sig = np.array([0.0005, 0.02, 0.03, 0.025, 0.02])      # reset: read noise only
    cycles = 60
    cyc = np.repeat(np.arange(cycles), len(means))
    step = np.tile(np.arange(len(means)), cycles)
    r = means[step] + sig[step] * rng.standard_normal(step.size)
    df = pd.DataFrame({"pulse_index": np.arange(step.size), "cycle": cyc, "step": step,
                       "pulse_current": np.where(step == 0, -5e-3, 3e-3), "pulse_width": 1e-4,
                       "read_current": 1e-4, "hall_voltage": r * 1e-4, "hall_resistance": r,
                       "time": np.arange(step.size) * 0.1})
    df.attrs.update(path="synthetic.h5", protocol={"name": "s", "kind": "staircase"},
                    sample={"id": "dev1", "type": "tilted"})
    return df


def test_ctc_is_reported_with_and_without_the_reset_state():
    df = _staircase_frame(np.random.default_rng(0))
    a = analyze_run(df)
    st = state_stats(df["hall_resistance"], df["step"], df["cycle"])
    _, per, _ = ctc(st)
    assert a.reset_state == 0
    assert a.ctc == pytest.approx(per.mean())
    assert a.ctc_without_reset == pytest.approx(per[st["state"].to_numpy() != 0].mean())
    assert a.ctc_without_reset > 1.2 * a.ctc           # the reset state's read noise flatters the average
    assert a.summary()["ctc_without_reset"] == a.ctc_without_reset
    s = report.format_summary([a])
    assert f"{a.ctc_without_reset * 100:.3g} % without the reset state" in s


def _retention_frame(drifts: list[float], r0: list[float], rng, reads=60, interval=1.0) -> pd.DataFrame:
    rows = []
    t0 = 0.0
    for b, base in zip(drifts, r0):
        t = np.arange(reads + 1) * interval          # set pulse read at t = 0, then reads
        y = base + b * np.log10(np.maximum(t, 1e-9) / 1.0)
        y[0] = base
        y = y + 2e-5 * rng.standard_normal(y.size)
        for k, (ti, yi) in enumerate(zip(t, y)):
            rows.append((0, k, 5e-3 if k == 0 else 0.0, yi, t0 + ti + 0.05))
        t0 += t[-1] + 10
    cyc, step, cur, r, time = map(np.array, zip(*rows))
    df = pd.DataFrame({"pulse_index": np.arange(len(rows)), "cycle": cyc, "step": step, "pulse_current": cur,
                       "pulse_width": 1e-4, "read_current": 1e-4, "hall_voltage": r * 1e-4,
                       "hall_resistance": r + 800.0, "time": time})
    df.attrs.update(path="ret.h5", protocol={"name": "retention", "kind": "retention"},
                    sample={"id": "dev1", "type": "tilted"})
    return df


def test_retention_drift_per_decade_per_state():
    df = _retention_frame([-0.004, 0.002], [0.5, -0.3], np.random.default_rng(1))
    out = retention_drift(df, window=1.0)
    (s0, s1) = out["states"]
    assert s0["drift_per_decade"] == pytest.approx(-0.004, abs=3e-4)
    assert s1["drift_per_decade"] == pytest.approx(0.002, abs=3e-4)
    assert s0["drift_pct_window_per_decade"] == pytest.approx(100 * s0["drift_per_decade"])
    assert s0["decades"] == pytest.approx(math.log10(60), abs=0.01)
    assert out["unit"] == "ohm/decade"


def test_retention_report_log_time_no_offset_labels_and_percent_of_window(tmp_path, monkeypatch):
    saved = []
    orig = report._save
    monkeypatch.setattr(report, "_save", lambda fig, path: (saved.append(fig), orig(fig, path))[1])
    ret = analyze_run(_retention_frame([-0.004], [0.5], np.random.default_rng(2)))
    stair = analyze_run(_staircase_frame(np.random.default_rng(0)))
    report.write_report([stair, ret], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    w = stair.window["window"]
    b = ret.retention["states"][0]["drift_per_decade"]
    assert f"drift {b * 1e3:+.3g} ±" in md and "mΩ/decade" in md
    assert f"{100 * b / w:+.3g} % of the {w:.4g} Ω window per decade" in md
    assert (tmp_path / "rep" / "ret_drift.png").is_file()
    for fig in saved:
        fig.canvas.draw()
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                assert axis.get_offset_text().get_text() == "", "offset label (e.g. +8e2) on an axis"
    ret_figs = [f for f in saved if any(ax.get_xscale() == "log" for ax in f.axes)]
    assert len(ret_figs) == 2                     # the trace and the drift figure: time on a log axis
    for f in ret_figs:
        assert "time" in f.axes[0].get_xlabel()
        assert len(f.axes) == 1                   # no colour bar for a one-cycle run
    stair_trace = saved[0]
    assert len(stair_trace.axes) == 2             # many cycles: a colour bar with whole-cycle ticks
    ticks = stair_trace.axes[1].get_yticks()
    assert np.allclose(ticks, np.round(ticks))
