"""Run the blocking Runner off the GUI thread and hand its events to Qt.

`on_start`/`on_end` become queued Qt signals (emitted from the runner thread, delivered in the
GUI thread). `on_points` blocks only go into a lock-free deque: the window drains it on a timer
(~25 Hz), so a fast run never floods the event loop with one redraw per block.
The runner's own pause/resume/abort are thread-safe; this class only forwards to them.
"""
from __future__ import annotations

import collections
import threading
import time
import traceback

from PySide6 import QtCore


class QtListener(QtCore.QObject):
    """A runner Listener whose events reach the GUI thread.

    `status_probe` (optional, called in the runner thread between blocks, at most every
    `probe_interval` s) reads instrument state without racing the runner for the VISA session.
    """

    started = QtCore.Signal(object)          # RunInfo
    ended = QtCore.Signal(str, object)       # status, error (str | None)
    probed = QtCore.Signal(object)           # whatever status_probe returned

    def __init__(self, status_probe=None, probe_interval: float = 0.5) -> None:
        super().__init__()
        self.blocks: collections.deque = collections.deque()
        self.status_probe = status_probe
        self.probe_interval = probe_interval
        self._next_probe = 0.0

    # Listener protocol (runner thread)
    def on_start(self, info) -> None:
        self.started.emit(info)

    def on_points(self, block: dict) -> None:
        self.blocks.append(block)
        if self.status_probe is not None and time.monotonic() >= self._next_probe:
            self._next_probe = time.monotonic() + self.probe_interval
            try:
                self.probed.emit(self.status_probe())
            except Exception:  # a status read must never disturb the run
                pass

    def on_end(self, status: str, error: str | None) -> None:
        self.ended.emit(status, error)

    # GUI thread
    def drain(self) -> list[dict]:
        """All blocks that arrived since the last drain, in order."""
        out = []
        while True:
            try:
                out.append(self.blocks.popleft())
            except IndexError:
                return out


class RunWorker(QtCore.QObject):
    """Owns the runner thread. `finished(status, error)` fires once the thread has returned."""

    finished = QtCore.Signal(str, object)

    def __init__(self, runner, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.status: str | None = None
        self.error: str | None = None
        # not a daemon: at interpreter exit the runner still finishes its shutdown (outputs off)
        self._thread = threading.Thread(target=self._main, name="labspin-runner", daemon=False)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        try:
            self.status = self.runner.run()
        except Exception as exc:  # the runner reports failures via on_end; this is the backstop
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        self.finished.emit(self.status or "failed", self.error)

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def pause(self) -> None:
        self.runner.pause()

    def resume(self) -> None:
        self.runner.resume()

    def abort(self) -> None:
        self.runner.abort()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the runner thread; True if it has ended."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
