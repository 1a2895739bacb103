"""The `epochscope` command line: parses arguments and calls the library, nothing more."""

from __future__ import annotations

import importlib
import sys

import click

from epochscope import __version__
from epochscope.errors import one_line

# Each module under epochscope.commands defines `commands`, a list of click commands.
_COMMAND_MODULES = ("bundle", "collect", "analyze", "report", "site")


class _Group(click.Group):
    """Turns library errors into one line on stderr and exit code 1 (2 for usage errors)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("epochscope: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the CLI boundary
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"epochscope: error: {_one_line(exc)}", err=True)
            sys.exit(1)


def _one_line(exc: BaseException) -> str:
    return one_line(exc, hint=" (run with --debug for the traceback)")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="epochscope")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """epochscope: archive training runs as HDF5 bundles and publish them as static HTML."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"epochscope.commands.{_name}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"epochscope.commands.{_name}":
            raise
        continue
    for _command in _module.commands:
        main.add_command(_command)
