"""Live plot widgets fed from memory, never from the run file.

The runner's blocks are appended to growing numpy buffers (amortised O(1) appends); the plots
redraw from views of those buffers on a timer, so redraw cost does not depend on how many blocks
arrived. R_H vs pulse index uses clip-to-view + peak downsampling (a 1e6-point run stays fluid);
curves are split into a few contiguous colour groups of cycles (early → late), so no curve needs
NaN separators and each group is one fast line.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from labspin.schema import COLUMNS     # stdlib-only: plots work without the store
N_GROUPS = 8          # colour groups of cycles
LOOP_POINTS = 4_000   # R_H vs I shows the most recent pulses only (a loop plot is not downsamplable)
HIST_BINS = 120
MAX_STATE_HISTS = 16  # per-step histograms above this many distinct steps collapse to one


class ColumnBuffer:
    """Growing per-column numpy arrays with capacity doubling (append is amortised O(1))."""

    def __init__(self, columns: tuple[str, ...] = COLUMNS, capacity: int = 4096) -> None:
        self.columns = columns
        self.n = 0
        self._data = {c: np.empty(capacity, dtype=np.float64) for c in columns}

    def clear(self) -> None:
        self.n = 0

    def append(self, block: dict) -> None:
        m = len(np.asarray(block[self.columns[0]]))
        if m == 0:
            return
        need = self.n + m
        cap = len(next(iter(self._data.values())))
        if need > cap:
            new_cap = max(need, 2 * cap)
            for c, arr in self._data.items():
                grown = np.empty(new_cap, dtype=np.float64)
                grown[: self.n] = arr[: self.n]
                self._data[c] = grown
        for c in self.columns:
            if c in block:
                self._data[c][self.n:need] = np.asarray(block[c], dtype=np.float64)
            else:
                self._data[c][self.n:need] = np.nan
        self.n = need

    def __getitem__(self, column: str) -> np.ndarray:
        return self._data[column][: self.n]

    def __len__(self) -> int:
        return self.n


def group_colours(n: int = N_GROUPS) -> list:
    """Perceptually ordered colours, early cycles dark blue → late cycles yellow."""
    cmap = pg.colormap.get("viridis")
    return [cmap.map(0.1 + 0.85 * k / max(1, n - 1), mode="qcolor") for k in range(n)]


def _plot(title: str, xlabel: str, xunit: str | None, ylabel: str, yunit: str | None) -> pg.PlotWidget:
    w = pg.PlotWidget(background="w")
    w.setTitle(title, color="k", size="10pt")
    w.setLabel("bottom", xlabel, units=xunit)
    w.setLabel("left", ylabel, units=yunit)
    w.showGrid(x=True, y=True, alpha=0.25)
    for ax in ("left", "bottom"):
        w.getAxis(ax).setTextPen("k")
        w.getAxis(ax).setPen(pg.mkPen("#555"))
    return w


class LivePlots(QtWidgets.QWidget):
    """R_H vs pulse index (coloured by cycle group), R_H vs pulse current, per-state histogram.

    Feed with `append(block)` (cheap: copies into buffers) and call `refresh()` from a timer;
    `set_data(frame_or_dict)` replaces everything (run browser).
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.buffer = ColumnBuffer()
        self.cycles_hint: int | None = None   # total cycles if the protocol says, for group sizes
        self._dirty = False
        self._hist_due = 0.0
        self._colours = group_colours()
        self.index_plot = _plot("R_H vs pulse index", "pulse index", None, "R_H", "Ω")
        self.loop_plot = _plot("R_H vs pulse current (latest pulses)", "pulse current", "A", "R_H", "Ω")
        self.hist_plot = _plot("R_H histogram per state (step)", "R_H", "Ω", "count", None)
        pi = self.index_plot.getPlotItem()
        pi.setClipToView(True)
        pi.setDownsampling(auto=True, mode="peak")
        self.index_legend = pi.addLegend(offset=(-10, 10), labelTextColor="k", brush=(255, 255, 255, 200))
        self.index_curves: list[pg.PlotDataItem] = []
        self._legend_labels: list[str] = []
        self._drawn: list = [None] * N_GROUPS   # per group: the slice last handed to the curves
        self._hist: dict | None = None          # incremental histogram state (see _draw_hist)
        self.loop_curves: list[pg.PlotDataItem] = []
        for k, col in enumerate(self._colours):
            c = pi.plot([], [], pen=pg.mkPen(col, width=1), skipFiniteCheck=True)
            self.index_curves.append(c)
            lc = self.loop_plot.plot([], [], pen=pg.mkPen(col, width=1), skipFiniteCheck=True)
            self.loop_curves.append(lc)
        self.hist_curves: list[pg.PlotDataItem] = []
        self.hist_legend = self.hist_plot.getPlotItem().addLegend(offset=(-10, 10), labelTextColor="k",
                                                                  brush=(255, 255, 255, 200))
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(self.index_plot)
        bottom = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        bottom.addWidget(self.loop_plot)
        bottom.addWidget(self.hist_plot)
        split.addWidget(bottom)
        split.setSizes([360, 300])
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    # -- data in -------------------------------------------------------------------------------
    def clear(self, cycles_hint: int | None = None) -> None:
        self.buffer.clear()
        self._drawn = [None] * N_GROUPS
        self._hist = None
        self.cycles_hint = cycles_hint
        self._dirty = True
        self._hist_due = 0.0
        self._legend_labels = None
        self.refresh(force_hist=True)

    def set_span(self, total_points: int | None) -> None:
        """Fix the pulse-index axis to [0, total_points] for a live run (None: autorange).

        A fixed x range keeps the old curves' downsampled display caches valid while points
        arrive, so a frame costs the newest group only; the user can still zoom and pan.
        """
        vb = self.index_plot.getPlotItem().getViewBox()
        if total_points:
            vb.setXRange(0, total_points, padding=0.01)
            vb.enableAutoRange(x=False, y=True)
        else:
            vb.enableAutoRange(x=True, y=True)

    def append(self, block: dict) -> None:
        self.buffer.append(block)
        self._dirty = True

    def set_data(self, data, cycles_hint: int | None = None) -> None:
        """Replace all data (a pandas DataFrame or dict of columns) and redraw."""
        self.buffer.clear()
        self._drawn = [None] * N_GROUPS
        self._hist = None
        self.cycles_hint = cycles_hint
        cols = {c: np.asarray(data[c]) for c in COLUMNS if c in data}
        if cols:
            self.buffer.append(cols)
        self._dirty = True
        self.refresh(force_hist=True)

    @property
    def n_points(self) -> int:
        return len(self.buffer)

    def plotted_points(self) -> int:
        """Points currently handed to the R_H-vs-index curves (what the tests watch grow)."""
        total = 0
        for c in self.index_curves:
            x, _ = c.getOriginalDataset()
            total += 0 if x is None else len(x)
        return total

    # -- drawing -------------------------------------------------------------------------------
    def _group_bounds(self) -> list[tuple[int, int, int, int]]:
        """Contiguous index ranges [(i0, i1, cycle_lo, cycle_hi)] for each colour group."""
        n = len(self.buffer)
        if n == 0:
            return []
        cyc = self.buffer["cycle"]
        c_last = int(np.nanmax(cyc[-1:])) if n else 0
        total = max(self.cycles_hint or 0, c_last + 1, 1)
        per = max(1, math.ceil(total / N_GROUPS))
        bounds = []
        for g in range(N_GROUPS):
            lo, hi = g * per, (g + 1) * per - 1
            # cycles are non-decreasing along the run: searchsorted finds the contiguous range
            i0 = int(np.searchsorted(cyc, lo, side="left"))
            i1 = int(np.searchsorted(cyc, hi, side="right"))
            bounds.append((i0, i1, lo, hi))
        return bounds

    def refresh(self, force_hist: bool = False) -> None:
        """Redraw from the buffers if anything arrived since the last redraw."""
        if not self._dirty and not force_hist:
            return
        self._dirty = False
        idx = self.buffer["pulse_index"]
        rh = self.buffer["hall_resistance"]
        cur = self.buffer["pulse_current"]
        n = len(idx)
        bounds = self._group_bounds()
        loop_from = max(0, n - LOOP_POINTS)
        labels = []
        for g, curve in enumerate(self.index_curves):
            if g < len(bounds) and bounds[g][1] > bounds[g][0]:
                i0, i1, lo, hi = bounds[g]
                labels.append(f"cycle {lo}" if hi == lo else f"cycles {lo}–{hi}")
            else:
                i0 = i1 = 0
            j0 = min(max(i0, loop_from), i1)
            # only curves whose slice changed get new data (usually just the newest group):
            # re-setting unchanged curves would redo their downsampling every frame
            key = (i0, i1, j0, id(self.buffer["pulse_index"].base))
            if self._drawn[g] == key:
                continue
            self._drawn[g] = key
            curve.setData(idx[i0:i1], rh[i0:i1], skipFiniteCheck=True)
            self.loop_curves[g].setData(cur[j0:i1], rh[j0:i1], skipFiniteCheck=True)
        if labels != self._legend_labels:  # rebuilding the legend is slow: only when groups change
            self._legend_labels = labels
            self.index_legend.clear()
            for curve, label in zip(self.index_curves, labels):
                self.index_legend.addItem(curve, label)
        now = QtCore.QDateTime.currentMSecsSinceEpoch() / 1000.0
        if force_hist or now >= self._hist_due:
            self._hist_due = now + 0.5  # the histogram is O(N): refresh it at 2 Hz
            self._draw_hist()

    def _draw_hist(self) -> None:
        """Per-step histograms, updated incrementally.

        Counts live in a (step × bin) table over fixed edges; new points are added with one
        bincount. Only when a point falls outside the edges (or a new step appears) is the
        table rebuilt from all points, with 5 % headroom so that this stays rare.
        """
        n = len(self.buffer)
        h = self._hist
        if h is not None and h["n"] <= n:
            rh = self.buffer["hall_resistance"][h["n"]:]
            st = self.buffer["step"][h["n"]:]
            ok = np.isfinite(rh) & np.isfinite(st)
            rh, st = rh[ok], st[ok].astype(np.int64)
            inside = (len(rh) == 0 or (rh.min() >= h["lo"] and rh.max() <= h["hi"]
                                       and st.min() >= h["smin"] and st.max() < h["smin"] + len(h["counts"])))
            if inside:
                if len(rh):
                    self._hist_add(h, rh, st)
                h["n"] = n
            else:
                h = None
        if h is None:
            rh = self.buffer["hall_resistance"]
            st = self.buffer["step"]
            ok = np.isfinite(rh) & np.isfinite(st)
            rh, st = rh[ok], st[ok].astype(np.int64)
            if len(rh) == 0:
                self._hist = None
                self._set_hist_curves(())
                return
            lo, hi = float(rh.min()), float(rh.max())
            pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo) * 1e-6, 1e-9)
            smin, smax = int(st.min()), int(st.max())
            h = {"lo": lo - pad, "hi": hi + pad, "smin": smin, "n": n,
                 "counts": np.zeros((smax - smin + 1, HIST_BINS), dtype=np.int64)}
            self._hist_add(h, rh, st)
            self._hist = h
        counts = h["counts"]
        present = np.flatnonzero(counts.sum(axis=1))
        edges = np.linspace(h["lo"], h["hi"], HIST_BINS + 1)
        if len(present) <= MAX_STATE_HISTS:
            rows = [counts[k] for k in present]
            keys = tuple(f"step {int(k) + h['smin']}" for k in present)
        else:
            rows = [counts.sum(axis=0)]
            keys = (f"all ({len(present)} steps)",)
        self._set_hist_curves(keys)
        for c, row in zip(self.hist_curves, rows):
            c.setData(edges, row)

    @staticmethod
    def _hist_add(h: dict, rh: np.ndarray, st: np.ndarray) -> None:
        nb = HIST_BINS
        bins = np.clip(((rh - h["lo"]) * (nb / (h["hi"] - h["lo"]))).astype(np.int64), 0, nb - 1)
        flat = (st - h["smin"]) * nb + bins
        h["counts"] += np.bincount(flat, minlength=h["counts"].size).reshape(h["counts"].shape)

    def _set_hist_curves(self, keys: tuple) -> None:
        if keys == getattr(self, "_hist_keys", None):
            return
        self._hist_keys = keys
        for c in self.hist_curves:
            self.hist_plot.removeItem(c)
        self.hist_curves.clear()
        self.hist_legend.clear()
        cmap = pg.colormap.get("turbo") if "turbo" in pg.colormap.listMaps() else pg.colormap.get("viridis")
        for k, key in enumerate(keys):
            col = (cmap.map(0.05 + 0.9 * k / max(1, len(keys) - 1), mode="qcolor") if len(keys) > 1
                   else pg.mkColor("#1f4e9c"))
            fill = pg.mkColor(col)
            fill.setAlpha(110)
            c = self.hist_plot.plot([0, 1], [0], stepMode="center", fillLevel=0,
                                    pen=pg.mkPen(col, width=1), brush=fill)
            self.hist_curves.append(c)
            if len(keys) <= 6 or k in (0, len(keys) - 1):
                self.hist_legend.addItem(c, key)
