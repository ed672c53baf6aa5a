"""The `labspin` command: a thin shell over the Python API.

Each verb lives in its own module under `labspin.cli` and is imported only when used, so that
`labspin --version` or `labspin info` never pays for importing torch or Qt.
"""
from __future__ import annotations

import importlib
import sys

import click

from labspin import __version__
from labspin.errors import UserError
from labspin.cli.flags import message, use_flags
from labspin.extras import missing_extra_error

# verb -> "module:attribute"; each module defines one click command.
COMMANDS = {
    "sim": "labspin.cli.sim:sim",
    "run": "labspin.cli.run:run",
    "dry-run": "labspin.cli.run:dry_run",
    "info": "labspin.cli.run:info",
    "check": "labspin.cli.check:check",
    "analyze": "labspin.cli.analyze:analyze",
    "levels": "labspin.cli.analyze:levels",
    "evaluate": "labspin.cli.evaluate:evaluate",
    "train": "labspin.cli.evaluate:train",
    "finetune": "labspin.cli.finetune:finetune",
    "gui": "labspin.cli.gui:gui",
    "demo": "labspin.cli.demo:demo",
    "import": "labspin.cli.importer:import_",
    "fit": "labspin.cli.fit:fit",
    "sweep": "labspin.cli.sweep:sweep",
    "recipes": "labspin.cli.recipes:recipes",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return use_flags(getattr(importlib.import_module(module), attr))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labspin")
def cli() -> None:
    """labspin: spintronic synapse devices — measure, analyse, and evaluate as network weights."""


def _verb(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return "labspin " + next((a for a in args if not a.startswith("-")), "").strip()


def main(argv: list[str] | None = None) -> None:
    """Entry point: every user error becomes one line on stderr and exit status 2."""
    from labspin.sim_backend.errors import SimulatorInputError   # the simulator's UserError

    try:
        rv = cli.main(args=argv, prog_name="labspin", standalone_mode=False)
    except (UserError, SimulatorInputError) as exc:
        click.echo(f"labspin: error: {message(exc)}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("labspin: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors: one line, not click's three
        click.echo(f"labspin: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except ModuleNotFoundError as exc:     # an optional part (torch, Qt) not installed: which extra
        err = missing_extra_error(exc.name, _verb(argv))
        if err is None:
            raise
        click.echo(f"labspin: error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("labspin: interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
