"""Terminal progress bar with ETA: a runner listener for `labspin run`.

Redraws at most ``refresh`` times a second on one line (``\\r``), so it costs nothing next to
the measurement; the ETA is the remaining points over the rate measured in this session.
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import IO, Any

import numpy as np

from labspin.formatting import clock


class ProgressBar:
    """Runner listener printing ``[label] recipe on device [#####.....] done/total  rate pts/s  ETA``.

    The device (the sample id) and the recipe are named so that a bar among several (the demo
    measures six runs) says what it is measuring; ``label`` names the caller's step.
    """

    def __init__(self, stream: IO[str] | None = None, refresh: float = 0.2, label: str = "") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.refresh = refresh
        self.label = label
        self.total = 0
        self.done = 0
        self._session = 0
        self._t0 = 0.0
        self._last = 0.0
        self.name = ""

    def on_start(self, info: Any) -> None:
        self.total = int(info.total_points)
        self.done = int(info.start_index)
        recipe = info.protocol.get("name") or "run"
        device = (getattr(info, "sample", None) or {}).get("id")
        self.name = " ".join(p for p in (self.label, recipe, f"on {device}" if device else "") if p)
        self._t0 = time.monotonic()
        self._draw(force=True)

    def on_points(self, block: dict[str, np.ndarray]) -> None:
        n = len(block["pulse_index"])
        self.done += n
        self._session += n
        self._draw()

    def on_end(self, status: str, error: str | None) -> None:
        self._draw(force=True)
        self.stream.write(f"  {status}\n")
        self.stream.flush()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        rate = self._session / elapsed
        left = self.total - self.done
        eta = left / rate if rate > 0 else float("inf")
        frac = self.done / self.total if self.total else 1.0
        width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 60))
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        return (f"{self.name} [{bar}] {self.done}/{self.total} {frac:6.1%} "
                f"{rate:8.0f} pts/s  ETA {clock(eta)}")

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.refresh:
            return
        self._last = now
        self.stream.write("\r" + self.line())
        self.stream.flush()
