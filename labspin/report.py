"""Run reports: figures (PNG, Agg), CSV tables, summary.json and a report.md linking them.

What a protocol kind adds to its runs' report is its ``ReportSection`` (named in the kind's
registry entry, ``labspin.protocols.registry``); the shipped kinds' sections are below.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot global state), so the GUI and the
demo can call the same functions from any thread. ``compare_devices`` + ``plot_device_comparison``
are the side-by-side device view the demo reuses.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from labspin import __version__
from labspin.analysis import RunAnalysis, device_spread, retention_segments, set_window
from labspin.errors import UserError
from labspin.formatting import number as _fmt
from labspin.levels import to_jsonable
from labspin.outputs import prepare_output_dir

FORMAT = "labspin-analysis/1"
MAX_TRACE_POINTS = 200_000          # a scatter of more is slow and no more readable
MAX_HIST_STATES = 24                # beyond this (potdep: a level per pulse) show mean ± σ instead
DPI = 120


def _figure(size: tuple[float, float], *, right: float = 0.97, bottom: float = 0.12,
            wspace: float = 0.2) -> Figure:
    """A figure with fixed margins (constrained layout would double the drawing time)."""
    fig = Figure(figsize=size)
    w, h = size
    fig.subplots_adjust(left=0.75 / w, right=right, bottom=max(bottom, 0.55 / h), top=1 - 0.62 / h,
                        wspace=wspace)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    for ax in fig.axes:        # no "+8e2"-style offset labels: tick labels carry the real values
        for axis in (ax.xaxis, ax.yaxis):
            fmt = axis.get_major_formatter()
            if isinstance(fmt, ScalarFormatter):
                fmt.set_useOffset(False)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return Path(path)


def figure(size: tuple[float, float] = (8, 4.5)) -> Figure:
    """A figure in the report's style, for a kind's own ``ReportSection``."""
    return _figure(size)


def save(fig: Figure, path: str | os.PathLike) -> Path:
    """Save a figure as the report does (no offset tick labels, the report's dpi); its path."""
    return _save(fig, path)


def _ohm_scale(span: float) -> tuple[float, str]:
    """Display scale for R_H so tick labels stay short (Ω, or mΩ for windows under 0.1 Ω)."""
    return (1e3, "mΩ") if 0 < span < 0.1 else (1.0, "Ω")


_SIGNAL_NAMES = {"hall_resistance": "Hall resistance R$_H$", "resistance": "resistance R",
                 "conductance": "conductance G", "current": "read current I"}


def _signal_scale(a: RunAnalysis) -> tuple[float, str, str]:
    """(scale, unit, axis name) of the run's signal: R_H in Ω/mΩ, or what an import holds."""
    q, u = getattr(a, "quantity", "hall_resistance"), getattr(a, "unit", "ohm")
    if u == "ohm":
        scale, unit = _ohm_scale(a.window.get("window") or 0)
    else:
        scale, unit = 1.0, u.replace("u", "µ", 1) if u.startswith("u") else u
    return scale, unit, _SIGNAL_NAMES.get(q, q)


def _title(a: RunAnalysis) -> str:
    dev = a.device_id
    typ = a.device.get("type")
    t = f"{a.name} — device {dev}" + (f" ({typ})" if typ else "")
    if a.status != "completed":
        t += f"\n[{a.progress}]"
    return t


# --------------------------------------------------------------------------- per-run figures

def plot_trace(a: RunAnalysis, path: str | os.PathLike) -> Path:
    """R_H against pulse index, coloured by cycle (or as the run's kind draws it, e.g. a retention
    run against time on a log axis: its section's ``draw_trace``)."""
    d = a.data
    stride = max(1, int(math.ceil(len(d) / MAX_TRACE_POINTS)))
    scale, unit, sig = _signal_scale(a)
    y = d["hall_resistance"].to_numpy()[::stride] * scale
    c = d["cycle"].to_numpy()[::stride]
    fig = _figure((9, 4.5), right=0.99)
    ax = fig.add_subplot()
    if not section_of(a).draw_trace(a, fig, ax, y, stride):
        x = d["pulse_index"].to_numpy()[::stride]
        cycles = np.unique(c)
        sc = ax.scatter(x, y, c=c, s=4 if len(x) < 20_000 else 1, cmap="viridis", rasterized=True,
                        linewidths=0)
        if cycles.size > 1:         # one cycle: a colour bar would say nothing
            cb = fig.colorbar(sc, ax=ax, label="cycle", pad=0.01)
            cb.locator = MaxNLocator(nbins=6, integer=True)
            cb.update_ticks()
        ax.set_xlabel("pulse index")
    ax.set_ylabel(f"{sig} ({unit})")
    ax.set_title(_title(a) + (f"  (every {stride}th point)" if stride > 1 else ""), fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_retention(analyses: Sequence[RunAnalysis], path: str | os.PathLike) -> Path:
    """Drift figure: ΔR_H(t) of every retained state on a log time axis, with its log-linear fit
    and the drift per decade (Ω, and % of the window when the device's window is known)."""
    fig = _figure((8.5, 4.8), right=0.99)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab10"]
    i = 0
    for a in analyses:
        seg, t = retention_segments(a.data)
        r = a.data["hall_resistance"].to_numpy(float)
        for row in (a.retention or {}).get("states", []):
            m = (seg == row["state"]) & (t > 0)
            if not m.any():
                continue
            r0 = row["r_first"]
            col = cmap(i % 10)
            i += 1
            b = row["drift_per_decade"]
            label = f"{a.name} state {row['state']} (R$_H$ = {r0:.4g} Ω)"
            if b is not None:
                pct = row.get("drift_pct_window_per_decade")
                label += f": {b * 1e3:+.3g} mΩ/decade" + (f" ({pct:+.2g} % of window)" if pct is not None else "")
            ax.plot(t[m], (r[m] - r0) * 1e3, "o", ms=3, color=col, alpha=0.7, label=label)
            if b is not None:
                tt = np.geomspace(t[m].min(), t[m].max(), 50)
                x = np.log10(t[m])
                a0 = float(np.mean(r[m] - b * x))
                ax.plot(tt, (a0 + b * np.log10(tt) - r0) * 1e3, "-", color=col, lw=1.5)
    ax.set_xscale("log")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("time since the first read after the set pulse (s)")
    ax.set_ylabel("R$_H$ − R$_H$(first read) (mΩ)")
    ax.set_title("retention: drift per state, fit R$_H$ = a + b·log$_{10}$ t", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if i:
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_loop(a: RunAnalysis, path: str | os.PathLike) -> Path:
    """R_H(I) switching loop per cycle, with the midpoint and mean I_c+ / I_c−."""
    d = a.data
    scale, unit, sig = _signal_scale(a)
    fig = _figure((7, 5))
    ax = fig.add_subplot()
    cycles = d["cycle"].to_numpy()
    ucyc = np.unique(cycles)
    show = ucyc[np.linspace(0, ucyc.size - 1, min(ucyc.size, 20)).astype(int)]
    cmap = matplotlib.colormaps["viridis"]
    for i, cyc in enumerate(show):
        m = cycles == cyc
        ax.plot(d["pulse_current"].to_numpy()[m] * 1e3, d["hall_resistance"].to_numpy()[m] * scale,
                "-", lw=0.8, color=cmap(i / max(1, len(show) - 1)), alpha=0.8,
                label=f"cycle {cyc}" if i in (0, len(show) - 1) else None)
    loop = a.loop or {}
    if loop.get("midpoint") is not None:
        ax.axhline(loop["midpoint"] * scale, color="0.4", ls=":", lw=1, label="window midpoint")
    for key, lab, col in (("ic_plus", "I$_c^+$", "tab:red"), ("ic_minus", "I$_c^-$", "tab:blue")):
        st = loop.get(key) or {}
        if _finite(st.get("mean")):
            sd = st["std"] if _finite(st.get("std")) else 0.0
            ax.axvline(st["mean"] * 1e3, color=col, ls="--", lw=1.2,
                       label=f"{lab} = {st['mean'] * 1e3:.3g} ± {sd * 1e3:.2g} mA (n={st['n']})")
    ax.set_xlabel("pulse current (mA)")
    ax.set_ylabel(f"{sig} ({unit})")
    ax.set_title(_title(a), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_state_histograms(a: RunAnalysis, path: str | os.PathLike) -> Path:
    """Histogram of R_H at each state with its σ (mean ± σ per state when there are many states)."""
    st = a.states
    scale, unit, sig = _signal_scale(a)
    fig = _figure((9, 4.8))
    ax = fig.add_subplot()
    kept = set(a.distinguishable_states)
    if len(st) <= MAX_HIST_STATES:
        d = a.data
        lab = d["state"].to_numpy()
        r = d["hall_resistance"].to_numpy() * scale
        order = np.argsort(lab, kind="stable")
        bounds = np.searchsorted(lab[order], st["state"].to_numpy())
        ends = np.searchsorted(lab[order], st["state"].to_numpy(), side="right")
        cmap = matplotlib.colormaps["tab20" if len(st) > 10 else "tab10"]
        for i, row in enumerate(st.itertuples()):
            vals = r[order[bounds[i]:ends[i]]]
            h, edges, _ = ax.hist(vals, bins=30, color=cmap(i % cmap.N), alpha=0.75,
                                  histtype="stepfilled", edgecolor="k", linewidth=0.3)
            ax.annotate((f"{row.state}: σ={_fmt(row.std * 1e3)} mΩ" if a.unit == "ohm"
                         else f"{row.state}: σ={_fmt(row.std)} {unit}") + ("" if row.state in kept else " ✗"),
                        (row.mean * scale, h.max()), xytext=(0, 3), textcoords="offset points",
                        rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_ylabel("reads per bin")
        ax.margins(y=0.35)
        ax.set_xlabel(f"{sig} ({unit})")
    else:
        x = np.arange(len(st))
        ax.errorbar(x, st["mean"] * scale, yerr=st["std"] * scale, fmt="o", ms=3, capsize=2,
                    label="mean ± σ across cycles")
        ax.set_xlabel("level (sorted by mean)")
        ax.set_ylabel(f"{sig} ({unit})")
        ax.legend(fontsize=8)
    ax.set_title(f"{_title(a)}\n{len(st)} states from {a.state_source}; "
                 f"{a.distinguishable} distinguishable at k={a.k:g} (✗ = merged)", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_ctc_per_state(a: RunAnalysis, path: str | os.PathLike) -> Path:
    """CTC of each state (%) under the named definition, with the average."""
    st = a.states
    fig = _figure((8, 4.2))
    ax = fig.add_subplot()
    x = np.arange(len(st))
    ctc = st["ctc"].to_numpy() * 100
    ax.bar(x, np.nan_to_num(ctc), color="tab:blue", alpha=0.8, label=f"per state ({a.ctc_definition})")
    if a.ctc is not None:
        ax.axhline(a.ctc * 100, color="tab:red", ls="--", label=f"average = {a.ctc * 100:.3g} %")
    for xi, v in zip(x, ctc):
        if not np.isfinite(v):
            ax.annotate("skipped", (xi, 0), xytext=(0, 3), textcoords="offset points", ha="center",
                        rotation=90, fontsize=7, va="bottom")
    ax.set_xticks(x, [str(s) for s in st["state"]], fontsize=8 if len(st) <= 24 else 5)
    ax.set_xlabel("state (sorted by mean R$_H$)")
    ax.set_ylabel(f"CTC, {a.ctc_definition} definition (%)")
    ax.set_title(f"{_title(a)}\nCTC ({a.ctc_definition}): {a.ctc_note}", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.margins(y=0.15)
    ax.legend(fontsize=8, loc="upper right", ncols=2, framealpha=0.9)
    return _save(fig, path)


def plot_potdep(a: RunAnalysis, path: str | os.PathLike) -> Path:
    """LTP/LTD: mean R_H per pulse number with the exponential fits."""
    st = a.states.sort_values("state")
    scale, unit, sig = _signal_scale(a)
    fig = _figure((8, 4.5))
    ax = fig.add_subplot()
    ax.errorbar(st["state"], st["mean"] * scale, yerr=st["std"] * scale, fmt="o", ms=3, capsize=2,
                color="0.3", label="mean ± σ across cycles")
    for key, col in (("ltp", "tab:red"), ("ltd", "tab:blue")):
        f = (a.potdep or {}).get(key)
        if not f or f.get("A") is None:
            continue
        s0, s1 = f["steps"]
        p = np.arange(1, s1 - s0 + 2)
        y = f["y0"] + f["B"] * -np.expm1(-p / f["A"])
        ax.plot(np.arange(s0, s1 + 1), y * scale, color=col, lw=2,
                label=f"{key.upper()}: A = {f['A']:.3g} pulses, NL = {f['nonlinearity']:.2f}")
    asym = (a.potdep or {}).get("asymmetry")
    ax.set_xlabel("pulse number in cycle")
    ax.set_ylabel(f"{sig} ({unit})")
    ax.set_title(_title(a) + ("" if asym is None else f"\nasymmetry |NL_LTP − NL_LTD| = {asym:.2f}"),
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------- kind sections

class ReportSection:
    """What a protocol kind adds to each of its runs' report; the defaults add nothing.

    A kind names its section in its registry entry (``Protocol.report = "module:Class"``, see
    ``labspin.protocols.registry``); a run of a kind without one gets the generic report: trace,
    state histograms and CTC per state when it has states, the runs table, summary.json.
    """

    captions: dict[str, str] = {}        # figure key -> caption in report.md

    def prepare(self, analyses: Sequence[RunAnalysis]) -> None:
        """Once per report, before any figure, with every run in it (runs of other kinds too)."""

    def draw_trace(self, a: RunAnalysis, fig: Figure, ax: Any, y: np.ndarray, stride: int) -> bool:
        """Draw the run's trace (signal ``y``, every ``stride``-th point, already scaled) on ``ax``
        instead of the default signal vs pulse index; True if drawn."""
        return False

    def figures(self, a: RunAnalysis, out: Path, name: str) -> dict[str, str]:
        """Write the kind's figures into ``out`` (files named ``{name}_*.png``); key -> file name."""
        return {}

    def tables(self, a: RunAnalysis, out: Path, name: str) -> dict[str, str]:
        """Write the kind's tables (``{name}_*.csv``); key -> file name."""
        return {}

    def markdown(self, a: RunAnalysis) -> list[str] | None:
        """The kind's lines in the run's section of report.md (None: nothing to say)."""
        return None

    def summary(self, a: RunAnalysis) -> list[str]:
        """Parts of the run's one-line stdout summary (after the window)."""
        return []


_GENERIC = ReportSection()


def section_of(a: RunAnalysis) -> ReportSection:
    """The report section of the run's kind (from the protocol-kind registry)."""
    from labspin.protocols import registry

    entry = registry.get(a.kind)
    section = entry.report_section() if entry is not None else None
    return section if section is not None else _GENERIC


class LoopSection(ReportSection):
    """Switching loops: R_H(I) per cycle with I_c±, and the midpoint crossings as a table."""

    captions = {"loop": "switching loop R_H(I)"}

    def figures(self, a, out, name):
        return {"loop": plot_loop(a, out / f"{name}_loop.png").name}

    def tables(self, a, out, name):
        if a.crossings is None or not len(a.crossings):
            return {}
        a.crossings.to_csv(out / f"{name}_switching.csv", index=False)
        return {"switching": f"{name}_switching.csv"}

    def markdown(self, a):
        if not a.loop:
            return None
        out = []
        for key, lab in (("ic_plus", "I_c+ (up sweep)"), ("ic_minus", "I_c− (down sweep)")):
            st = a.loop.get(key) or {}
            if _finite(st.get("mean")):
                sd = st["std"] if _finite(st.get("std")) else 0.0
                out.append(f"- {lab}: {st['mean'] * 1e3:.4g} mA ± {sd * 1e3:.2g} mA "
                           f"over {st['n']} cycles")
        return out

    def summary(self, a):
        parts = []
        for key, lab in (("ic_plus", "Ic+"), ("ic_minus", "Ic-")):
            m = ((a.loop or {}).get(key) or {}).get("mean")
            if _finite(m):
                parts.append(f"{lab} {m * 1e3:.3g} mA")
        return parts


class PotDepSection(ReportSection):
    """Potentiation/depression: the LTP/LTD branches with their fits."""

    captions = {"potdep": "LTP/LTD"}

    def figures(self, a, out, name):
        return {"potdep": plot_potdep(a, out / f"{name}_potdep.png").name} if a.potdep else {}

    def markdown(self, a):
        if not a.potdep:
            return None
        out = []
        for key in ("ltp", "ltd"):
            f = a.potdep.get(key)
            if f and f.get("A") is not None:
                out.append(f"- {key.upper()}: A = {f['A']:.4g} pulses (A/N = {f['A_over_N']:.3g}), "
                           f"nonlinearity {f['nonlinearity']:.3f}")
        if a.potdep.get("asymmetry") is not None:
            out.append(f"- asymmetry |NL_LTP − NL_LTD| = {a.potdep['asymmetry']:.3f}")
        return out


class EnduranceSection(ReportSection):
    """Endurance: R_H of both states and the window against cycles (log axis), CTC per decade of
    cycles, and the cycles to failure."""

    captions = {"trace": "R_H of both states vs cycles (log)",
                "endurance": "window and CTC vs cycles (log)"}

    def draw_trace(self, a, fig, ax, y, stride):
        d = a.data
        cyc, step = d["cycle"].to_numpy()[::stride] + 1, d["step"].to_numpy()[::stride]
        for s, label in ((0, "after +I"), (1, "after −I")):
            m = step == s
            ax.plot(cyc[m], y[m], "o-", ms=2, lw=0.6, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("cycles + 1")
        ax.legend(fontsize=8)
        return True

    def figures(self, a, out, name):
        e = a.results.get("endurance")
        if not e:
            return {}
        from labspin.endurance import plot as plot_endurance
        path = plot_endurance(a.results["endurance_windows"], a.results["endurance_ctc"],
                              out / f"{name}_endurance.png", failure=e["cycles_to_failure"])
        return {"endurance": path.name}

    def tables(self, a, out, name):
        if not a.results.get("endurance"):
            return {}
        a.results["endurance_windows"].to_csv(out / f"{name}_windows.csv", index=False)
        a.results["endurance_ctc"].to_csv(out / f"{name}_ctc_vs_cycles.csv", index=False)
        return {"windows": f"{name}_windows.csv", "ctc_vs_cycles": f"{name}_ctc_vs_cycles.csv"}

    def markdown(self, a):
        e = a.results.get("endurance")
        if not e:
            return ["- no complete read cycle (a read after +I and one after −I) yet"]
        fail = (f"**failed at cycle {e['cycles_to_failure']}** ({e['verdict']}: window below "
                f"{e['min_window']:.2g} × the first for {e['patience']} read cycles)"
                if e["cycles_to_failure"] is not None else
                f"no failure in {e['last_cycle'] + 1} cycles (criterion: window below "
                f"{e['min_window']:.2g} × the first for {e['patience']} read cycles)")
        out = [f"- {e['read_cycles']} read cycles up to cycle {e['last_cycle']}; window "
               f"{e['first_window']:.4g} Ω at first, {e['last_window']:.4g} Ω at the last read "
               f"({100 * e['last_window_rel']:.3g} %); {fail}",
               "", "| cycles | reads | mean window (Ω) | CTC high (% of window) | CTC low (%) |",
               "|---|---|---|---|---|"]
        for r in a.results["endurance_ctc"].itertuples():
            out.append(f"| {r.cycle_from}–{r.cycle_to} | {r.reads} | {r.window:.4g} | "
                       f"{_fmt(r.ctc_high_pct)} | {_fmt(r.ctc_low_pct)} |")
        return out

    def summary(self, a):
        e = a.results.get("endurance")
        if not e:
            return []
        return [f"cycles to failure {e['cycles_to_failure']} ({e['verdict']})"
                if e["cycles_to_failure"] is not None else f"no failure in {e['last_cycle'] + 1} cycles"]


class RetentionSection(ReportSection):
    """Retention: the trace and the drift per state against log time, drift in % of the window."""

    captions = {"trace": "R_H vs time (log)", "drift": "retention drift per state, log time"}

    def prepare(self, analyses):
        """A retention run knows its drift, not the device's window: take the window from a run of
        the same device in the same report that has states (its staircase), so drift is also in %."""
        windows = {a.device_id: a.window["window"] for a in analyses
                   if not a.states.empty and len(a.states) >= 2 and a.window.get("window")}
        for a in analyses:
            if a.retention is not None:
                set_window(a.retention, windows.get(a.device_id))
                a.retention["window_source"] = ("states of a run of the same device in this report"
                                                if a.device_id in windows else None)

    def draw_trace(self, a, fig, ax, y, stride):
        fig.subplots_adjust(left=0.11)       # R_H tick labels without an offset are wide
        seg, t = retention_segments(a.data)
        seg, t = seg[::stride], t[::stride]
        m = t > 0
        for g in np.unique(seg):
            mg = m & (seg == g)
            ax.plot(t[mg], y[mg], "o-", ms=3, lw=0.8, label=f"state {g}")
        ax.set_xscale("log")
        ax.set_xlabel("time since the first read after the set pulse (s)")
        if np.unique(seg).size > 1:
            ax.legend(fontsize=8)
        return True

    def figures(self, a, out, name):
        return {"drift": plot_retention([a], out / f"{name}_drift.png").name} if a.retention else {}

    def markdown(self, a):
        if not a.retention:
            return None
        out = []
        w = a.retention.get("window")
        for row in a.retention["states"]:
            b = row["drift_per_decade"]
            if b is None:
                out.append(f"- state {row['state']}: too few reads for a drift fit")
                continue
            pct = row["drift_pct_window_per_decade"]
            out.append(f"- state {row['state']} (set {row['set_current'] * 1e3:.4g} mA, R_H {row['r_first']:.6g} Ω): "
                       f"drift {b * 1e3:+.3g} ± {row['drift_per_decade_std'] * 1e3:.2g} mΩ/decade over "
                       f"{row['decades']:.2g} decades ({row['t_first']:.3g}–{row['t_last']:.3g} s), "
                       + (f"{pct:+.3g} % of the {w:.4g} Ω window per decade" if pct is not None else
                          "% of window: analyse with a staircase run of the same device to get the window"))
        return out

    def summary(self, a):
        parts = []
        for row in (a.retention or {}).get("states", []):
            if row["drift_per_decade"] is not None:
                pct = row.get("drift_pct_window_per_decade")
                parts.append(f"state {row['state']} drift {row['drift_per_decade'] * 1e3:+.3g} mΩ/decade"
                             + (f" ({pct:+.3g} % of window)" if pct is not None else ""))
        return parts


# --------------------------------------------------------------------------- devices

def compare_devices(analyses: Sequence[RunAnalysis]) -> pd.DataFrame:
    """One row per device id: mean (and σ over its runs) of states, CTC, window, I_c±.

    Columns are SI / fractions: ``ctc`` 0.02 = 2 %, ``window`` in ohm, ``ic_*`` in A.
    """
    if not analyses:
        raise UserError("compare_devices: no analyses given")
    spread = device_spread(analyses)
    spread = spread.drop(index="all devices", errors="ignore")
    out = pd.DataFrame({
        "type": spread["type"], "runs": spread["runs"],
        "states": spread["states_mean"], "ctc": spread["ctc_mean"], "ctc_std": spread["ctc_std"],
        "window": spread["window_mean"], "window_std": spread["window_std"],
        "ic_plus": spread["ic_plus_mean"], "ic_minus": spread["ic_minus_mean"],
    })
    out["ctc_definition"] = ",".join(sorted({a.ctc_definition for a in analyses}))
    out["k"] = ",".join(sorted({f"{a.k:g}" for a in analyses}))
    out.index.name = "device"
    return out


def plot_device_comparison(table: pd.DataFrame | Sequence[RunAnalysis],
                           path: str | os.PathLike) -> Path:
    """Side by side: CTC (%, error bar = σ over runs) and distinguishable states per device."""
    if not isinstance(table, pd.DataFrame):
        table = compare_devices(table)
    names = [str(i) + (f"\n({t})" if isinstance(t, str) and t else "") for i, t in
             zip(table.index, table["type"])]
    x = np.arange(len(table))
    fig = _figure((max(6, 1.6 * len(table) + 3), 4.2), wspace=0.3, bottom=0.16)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.bar(x, table["ctc"] * 100, yerr=np.nan_to_num(table["ctc_std"] * 100), capsize=4,
            color="tab:orange", alpha=0.85)
    ax1.set_xticks(x, names, fontsize=8)
    defin = table["ctc_definition"].iloc[0] if "ctc_definition" in table else "window"
    ax1.set_ylabel(f"CTC, {defin} definition (%)")
    ax1.set_title("cycle-to-cycle variation", fontsize=10)
    ax1.grid(alpha=0.3, axis="y")
    ax2.bar(x, table["states"], color="tab:green", alpha=0.85)
    ax2.set_xticks(x, names, fontsize=8)
    k = table["k"].iloc[0] if "k" in table else "5"
    ax2.set_ylabel(f"distinguishable states (k = {k})")
    ax2.set_title("states", fontsize=10)
    ax2.grid(alpha=0.3, axis="y")
    for ax, vals, fmt in ((ax1, table["ctc"] * 100, lambda v: f"{v:.3g} %"),
                          (ax2, table["states"], lambda v: f"{v:.3g}")):
        for xi, v in zip(x, vals):
            ok = np.isfinite(v)
            ax.annotate(fmt(v) if ok else "n/a", (xi, v if ok else 0), xytext=(0, 2),
                        textcoords="offset points", ha="center", fontsize=8)
    fig.suptitle("device comparison", fontsize=11)
    return _save(fig, path)


# --------------------------------------------------------------------------- the report

def write_report(analyses: Sequence[RunAnalysis], out_dir: str | os.PathLike, *,
                 overwrite: bool = False) -> dict:
    """Write figures, CSVs, summary.json and report.md for ``analyses``; return the summary."""
    if not analyses:
        raise UserError("no run files to report on")
    out = prepare_output_dir(out_dir, overwrite=overwrite)
    names = _unique_names([a.name for a in analyses])
    for section in {type(sec): sec for sec in map(section_of, analyses)}.values():
        section.prepare(analyses)
    runs, sections = [], []
    for a, name in zip(analyses, names):
        section = section_of(a)
        figs: dict[str, str] = {}
        figs["trace"] = plot_trace(a, out / f"{name}_trace.png").name
        tables: dict[str, str] = {}
        if not a.states.empty:
            figs["states"] = plot_state_histograms(a, out / f"{name}_states.png").name
            figs["ctc"] = plot_ctc_per_state(a, out / f"{name}_ctc.png").name
            a.states.to_csv(out / f"{name}_states.csv", index=False)
            tables["states"] = f"{name}_states.csv"
        figs.update(section.figures(a, out, name))
        tables.update(section.tables(a, out, name))
        s = a.summary()
        s.update(name=name, figures=figs, tables=tables)
        runs.append(s)
        sections.append(_md_run(a, name, figs, tables, section))
    devices = None
    dev_md = ""
    if len({a.device_id for a in analyses}) > 1:
        table = compare_devices(analyses)
        table.to_csv(out / "devices.csv")
        device_spread(analyses).to_csv(out / "device_spread.csv")
        plot_device_comparison(table, out / "devices.png")
        devices = {"table": "devices.csv", "spread": "device_spread.csv", "figure": "devices.png",
                   "rows": table.reset_index().to_dict(orient="records")}
        dev_md = ("## Device to device\n\n![device comparison](devices.png)\n\n"
                  + _md_table(table.reset_index(), {"ctc": _pct, "ctc_std": _pct, "ic_plus": _ma, "ic_minus": _ma})
                  + "\n\nPer-device spread over run files (mean, std, CV): "
                    "[device_spread.csv](device_spread.csv), table: [devices.csv](devices.csv)\n")
    summary = {
        "format": FORMAT, "software_version": __version__,
        "ctc_definition": analyses[0].ctc_definition, "k": analyses[0].k,
        "runs": runs, "devices": devices,
    }
    (out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2) + "\n", encoding="utf-8")
    md = ["# labspin analysis report", "",
          f"CTC definition: **{analyses[0].ctc_definition}** — {analyses[0].ctc_note}  ",
          f"Distinguishable states: adjacent states ≥ k·(σ_a + σ_b)/2 apart, **k = {analyses[0].k:g}**, "
          "greedily from the lowest state.  ", "Machine-readable: [summary.json](summary.json)", "",
          "## Runs", "", _md_table(pd.DataFrame([_row(a, n) for a, n in zip(analyses, names)])), ""]
    if dev_md:
        md += [dev_md]
    md += sections
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return summary


def format_summary(analyses: Sequence[RunAnalysis]) -> str:
    """Short stdout summary: one line per run (states, CTC, window, I_c, progress)."""
    lines = []
    for a in analyses:
        parts = [f"{a.name}: {a.kind}", f"device {a.device_id}"]
        if not a.states.empty:
            parts.append(f"{len(a.states)} states, {a.distinguishable} distinguishable (k={a.k:g})")
        if a.ctc is not None:
            parts.append(f"CTC {a.ctc * 100:.3g} % ({a.ctc_definition})"
                         + (f", {a.ctc_without_reset * 100:.3g} % without the reset state"
                            if a.ctc_without_reset is not None else ""))
        parts.append(f"window {a.window['window']:.4g} {a.unit}")
        parts += section_of(a).summary(a)
        if a.status != "completed":
            parts.append(a.progress)
        lines.append(", ".join(parts))
    return "\n".join(lines)


# --------------------------------------------------------------------------- markdown helpers

def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and bool(np.isfinite(v))


def _pct(v: Any) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v * 100:.3g} %"


def _ma(v: Any) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v * 1e3:.4g} mA"


def _md_table(df: pd.DataFrame, fmt: dict | None = None) -> str:
    fmt = fmt or {}
    cols = list(df.columns)
    rows = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for rec in df.itertuples(index=False):
        rows.append("| " + " | ".join(fmt.get(c, _fmt)(v) for c, v in zip(cols, rec)) + " |")
    return "\n".join(rows)


def _row(a: RunAnalysis, name: str) -> dict:
    return {"run": name, "device": a.device_id, "kind": a.kind, "status": a.status,
            "points": f"{a.n_points}/{a.total_points if a.total_points is not None else '?'}",
            "states": len(a.states) if not a.states.empty else None,
            f"distinguishable (k={a.k:g})": a.distinguishable,
            f"CTC ({a.ctc_definition})": _pct(a.ctc) if a.ctc is not None else "—",
            "CTC without reset state": _pct(a.ctc_without_reset) if a.ctc_without_reset is not None else "—",
            f"window ({a.unit})": a.window.get("window")}


def _md_run(a: RunAnalysis, name: str, figs: dict, tables: dict, section: "ReportSection") -> str:
    out = [f"## {name}", "", f"Source: `{', '.join(a.sources)}` — {a.progress}"
           + (f" — error: {a.error}" if a.error else ""), ""]
    if a.stride > 1:
        from labspin.protocols import registry
        entry = registry.get(a.kind)
        hook = entry.analysis_function() if entry is not None else None
        skipped = (f" The {a.kind} analysis needs every point in memory and was not run."
                   if hook is not None and getattr(hook, "uses_points", True) else "")
        out += [f"Analysed streamed ({a.n_points} points): the state statistics use every point, "
                f"the figures every {a.stride}th.{skipped}", ""]
    captions = {"trace": "R_H vs pulse index", "states": "per-state histograms", "ctc": "CTC per state",
                **section.captions}
    for key, fn in figs.items():
        out += [f"![{captions.get(key, key)}]({fn})", ""]
    if not a.states.empty:
        out += [_md_table(a.states, {"ctc": _pct}), ""]
    lines = section.markdown(a)
    if lines is not None:
        out += lines + [""]
    if tables:
        out += ["Tables: " + ", ".join(f"[{v}]({v})" for v in tables.values()), ""]
    return "\n".join(out)


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}-{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out


# --------------------------------------------------------------------------- across runs

def plot_ic_vs_width(result: dict, path: str | os.PathLike) -> Path:
    """|I_c±| against ln(pulse width) per device, with the thermal-activation fit lines."""
    table = result["widths"]
    fig = _figure((7, 5))
    ax = fig.add_subplot()
    for i, (dev, g) in enumerate(table.groupby("device", sort=False)):
        col = matplotlib.colormaps["tab10"](i % 10)
        ax.errorbar(g["pulse_width"], g["ic_plus"] * 1e3, yerr=g["ic_plus_std"].fillna(0) * 1e3,
                    fmt="^", color=col, label=f"{dev}: I$_c^+$")
        ax.errorbar(g["pulse_width"], -g["ic_minus"] * 1e3, yerr=g["ic_minus_std"].fillna(0) * 1e3,
                    fmt="v", mfc="none", color=col, label=f"{dev}: −I$_c^-$")
        fit = (result["thermal_activation"].get(dev) or {}).get("half") or {}
        if fit.get("delta"):
            w = np.geomspace(g["pulse_width"].min() / 2, g["pulse_width"].max() * 2, 50)
            y = fit["I_c0"] * (1 - np.log(w / fit["tau0"]) / fit["delta"])
            ax.plot(w, y * 1e3, "-", color=col, lw=1,
                    label=f"{dev}: Δ = {fit['delta']:.3g}, I$_{{c0}}$ = {fit['I_c0'] * 1e3:.3g} mA")
    ax.set_xscale("log")
    ax.set_xlabel("pulse width (s)")
    ax.set_ylabel("switching current |I$_c$| (mA)")
    ax.set_title("I$_c$ vs pulse width: I$_c$ = I$_{c0}$(1 − ln(t$_p$/τ$_0$)/Δ)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, path)


def format_across_runs(result: dict) -> str:
    """Stdout lines: I_c± per width and the thermal-activation fit; the device-to-device table."""
    lines = []
    table = result["widths"]
    if table["pulse_width"].nunique() >= 2 if len(table) else False:
        lines.append(f"{'device':<14} {'width (s)':>10} {'Ic+ (mA)':>9} {'Ic- (mA)':>9} "
                     f"{'shift (mA)':>10} {'cycles':>6}")
        for r in table.itertuples():
            lines.append(f"{r.device:<14} {r.pulse_width:>10.3g} {r.ic_plus * 1e3:>9.4g} "
                         f"{r.ic_minus * 1e3:>9.4g} {r.shift * 1e3:>10.3g} {r.cycles:>6}")
    for dev, fits in result["thermal_activation"].items():
        for branch, lab in (("half", "(Ic+ - Ic-)/2"), ("plus", "Ic+"), ("minus", "|Ic-|")):
            f = fits[branch]
            if f.get("delta") is None:
                lines.append(f"{dev}: thermal activation from {lab}: {f.get('note')}")
                continue
            err = (lambda v, s: f"{v:.4g} ± {s:.2g}" if s is not None else f"{v:.4g}")
            lines.append(f"{dev}: thermal activation from {lab}: Δ = {err(f['delta'], f['delta_err'])}, "
                         f"I_c0 = {err(f['I_c0'] * 1e3, None if f['I_c0_err'] is None else f['I_c0_err'] * 1e3)} mA "
                         f"(τ0 = {f['tau0']:g} s, {f['n']} widths)")
    if result.get("devices") is not None:
        lines.append("device-to-device:")
        dev = result["devices"]
        lines.append(f"{'device':<14} {'runs':>4} {'window':>10} {'CTC':>8} {'states':>6} "
                     f"{'Ic+ (mA)':>9} {'Ic- (mA)':>9}")
        for name, r in dev.iterrows():
            lines.append(f"{str(name):<14} {int(r['runs']):>4} {_fmt(r['window_mean']):>10} "
                         f"{_pct(r['ctc_mean']):>8} {_fmt(r['states_mean']):>6} "
                         f"{_fmt(r['ic_plus_mean'] * 1e3):>9} {_fmt(r['ic_minus_mean'] * 1e3):>9}")
    return "\n".join(lines)


def write_across_runs(result: dict, out_dir: str | os.PathLike) -> list[str]:
    """Add the across-runs outputs (ic_vs_width.csv/.png, thermal_activation.json) to a report
    folder written by :func:`write_report`, with a section in its report.md."""
    out = Path(out_dir)
    written = []
    table = result["widths"]
    md = []
    if len(table) and table["pulse_width"].nunique() >= 2:
        table.to_csv(out / "ic_vs_width.csv", index=False)
        plot_ic_vs_width(result, out / "ic_vs_width.png")
        (out / "thermal_activation.json").write_text(
            json.dumps(to_jsonable(result["thermal_activation"]), indent=2) + "\n", encoding="utf-8")
        written += ["ic_vs_width.csv", "ic_vs_width.png", "thermal_activation.json"]
        md += ["## Switching current vs pulse width", "", "![I_c vs pulse width](ic_vs_width.png)", "",
               _md_table(table.drop(columns=["run"]), {c: _ma for c in table.columns if c.startswith(("ic", "shift"))}),
               ""]
        for dev, fits in result["thermal_activation"].items():
            f = fits["half"]
            if f.get("delta") is not None:
                md.append(f"- {dev}: Δ = {f['delta']:.4g} ± {_fmt(f['delta_err'])}, I_c0 = "
                          f"{f['I_c0'] * 1e3:.4g} mA (fit of (I_c+ − I_c−)/2, τ0 = {f['tau0']:g} s)")
        md.append("")
    if md:
        with open(out / "report.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(md) + "\n")
    return written
