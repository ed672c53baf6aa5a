"""The error types that the CLI turns into a single line and exit status 2 (and the GUI into a
red note next to the widget at fault).

A library error about one field is a `FieldError`: it carries the field's `key` as the Python
API spells it ("observer", "sim", "hall_mode", "parameters.cycles") and the `reason`, never a
CLI flag. The CLI shows the key as the flag the user typed (`labspin.cli.flags`), the GUI marks
the widget that edits it (`labspin.gui.validation`); nobody parses the message.
"""
from __future__ import annotations

import copy


class UserError(Exception):
    """Bad input from the user: a file, field or value that cannot be used.

    The message names the file/field and the reason, fits on one line, and is shown
    without a traceback.
    """

    key: str | None = None      # the field at fault, when the error is about one (FieldError)


class FieldError(UserError):
    """One field's value is wrong: ``"[where: ]key: reason"``.

    ``key`` is the field's API name (a keyword argument, "parameters.<name>" of a recipe,
    a dotted station-file key); ``where`` names the file that holds the field, if one does
    (then the key is that file's, not a command-line option, whatever its name).
    """

    def __init__(self, key: str, reason: str, where: str | None = None) -> None:
        self.key = key
        self.reason = reason
        self.where = where
        super().__init__(self.render(key))

    def render(self, name: str) -> str:
        """The one-line message with the field called ``name`` (the CLI passes its flag)."""
        return f"{self.where}: {name}: {self.reason}" if self.where else f"{name}: {self.reason}"

    def replace(self, *, reason: str | None = None, where: str | None = None) -> "FieldError":
        """The same field error with another reason or file (a caller adds what it knows)."""
        err = copy.copy(self)
        err.reason = self.reason if reason is None else reason
        err.where = self.where if where is None else where
        err.args = (err.render(err.key),)
        return err

    def __reduce__(self):  # pickles across processes (dask workers), whose __init__ takes no message
        return (_rebuild, (type(self), self.__dict__.copy(), self.args))


def _rebuild(cls: type, state: dict, args: tuple) -> FieldError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class OutputExists(FieldError):
    """An output is there and may not be replaced: the ``overwrite`` field would allow it.

    ``"<path>: <what> (use overwrite<then>)"``; the CLI writes ``--overwrite``, the GUI marks its
    Overwrite box."""

    def __init__(self, path, what: str = "output exists", then: str = "") -> None:
        self.path, self.what, self.then = str(path), what, then
        super().__init__("overwrite", f"{self.path}: {what}")

    def render(self, name: str) -> str:
        return f"{self.path}: {self.what} (use {name}{self.then})"
