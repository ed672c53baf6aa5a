"""A library `FieldError` names its field as the API spells it; the CLI shows the flag instead.

The field of an error raised inside a command is looked up among that command's options (click
names an option after its keyword: `--batch-size` is `batch_size`), so `labspin evaluate` prints
``--observer: unknown 'x' ...`` where the library said ``observer: unknown 'x' ...``. A field held
by a file (the error's `where`: a recipe, a station file) is no option and keeps its name.
"""
from __future__ import annotations

import click

from labspin.errors import FieldError


# API fields whose option has another name
OPTION_OF = {"allow_devices": "pool_devices", "ctc_definition": "ctc"}


def flag_for(command: click.Command, key: str) -> str | None:
    """The long flag of ``command``'s option for field ``key``: named so by click ("batch_size"
    -> "--batch-size") or spelt so ("column" -> "--column", whose keyword is `columns`)."""
    key = OPTION_OF.get(key, key)
    for p in command.params:
        if isinstance(p, click.Option) and (p.name == key or "--" + key.replace("_", "-") in p.opts):
            longs = [o for o in p.opts if o.startswith("--")]
            return (longs or p.opts)[0]
    return None


class FlagContext(click.Context):
    """The context of a labspin command: a `FieldError` from its callback learns the flag."""

    def invoke(self, callback, /, *args, **kwargs):
        try:
            return super().invoke(callback, *args, **kwargs)
        except FieldError as exc:
            if getattr(exc, "flag", None) is None and exc.where is None and self.command is not None:
                exc.flag = flag_for(self.command, exc.key)
            raise


def use_flags(command: click.Command) -> click.Command:
    """Give ``command`` (and a group's subcommands) the context that maps fields to flags."""
    command.context_class = FlagContext
    for sub in getattr(command, "commands", {}).values():
        use_flags(sub)
    return command


def message(exc: Exception) -> str:
    """The one line the CLI prints: a field error names the flag the user typed, if any."""
    flag = getattr(exc, "flag", None)
    return exc.render(flag) if isinstance(exc, FieldError) and flag else str(exc)
