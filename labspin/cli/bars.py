"""Terminal progress bars for the training verbs: the library reports steps, the CLI draws them."""
from __future__ import annotations

import sys

import click


class StepBars:
    """A ``progress(label, step, steps)`` callback: one click progress bar per label (epoch).

    Use as a context manager so a bar left open by an error or Ctrl-C is closed.
    """

    def __init__(self) -> None:
        self._bar = None
        self._label: str | None = None

    def __call__(self, label: str, step: int, steps: int) -> None:
        if label != self._label:
            self.close()
            self._label = label
            self._bar = click.progressbar(length=steps, label=label, file=sys.stderr, show_eta=True)
            self._bar.__enter__()
        self._bar.update(step - self._bar.pos)
        if step >= steps:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self) -> "StepBars":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
