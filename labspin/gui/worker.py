"""Run the blocking Runner off the GUI thread and hand its events to Qt.

`on_start`/`on_end` become queued Qt signals (emitted from the runner thread, delivered in the
GUI thread). `on_points` blocks only go into a lock-free deque: the window drains it on a timer
(~25 Hz), so a fast run never floods the event loop with one redraw per block.
The runner's own pause/resume/abort are thread-safe; this class only forwards to them.
"""
from __future__ import annotations

import collections
import gc
import threading
import time
import traceback

from PySide6 import QtCore
from pyqtgraph.util.garbage_collector import GarbageCollector


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


class GuiThreadCollector(GarbageCollector):
    """pyqtgraph's collector (automatic GC off, collections on a GUI-thread timer) for as long as
    any run is going. Otherwise a collection can start in the runner thread, destroy unreachable Qt
    objects there (a closed window's menus) and deadlock Qt against the GUI thread (seen: the runner
    thread waiting for the GIL inside QObject::~QObject, the GUI thread for that object's mutex)."""

    _holders = 0

    def __init__(self, interval: float = 0.5) -> None:
        if GuiThreadCollector._holders == 0:
            GuiThreadCollector._was_enabled = gc.isenabled()
        GuiThreadCollector._holders += 1
        super().__init__(interval=interval)
        self._active = True

    def stop(self) -> None:
        """Idempotent; the last holder restores automatic collection as it was."""
        if not self._active:
            return
        self._active = False
        self.timer.stop()
        GuiThreadCollector._holders -= 1
        if GuiThreadCollector._holders == 0 and GuiThreadCollector._was_enabled:
            gc.enable()


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
        """Start the runner thread (call from the GUI thread)."""
        self._collector = GuiThreadCollector()
        self.finished.connect(self._release_collector)   # queued: runs in the GUI thread
        self._thread.start()

    def _release_collector(self, *_) -> None:
        self._collector.stop()

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
        if self._thread.is_alive():
            return False
        self._collector.stop()
        return True
