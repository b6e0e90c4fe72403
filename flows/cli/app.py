"""The ``xpcs-flows`` command line.

One click group; subcommands come from the areas that own them (the kernel's
``correlate``/``synth``, the demo, runs, facilities, Globus, the watcher) and
are imported only when used. Errors of ours are printed as one clear line on stderr with a
non-zero exit code: 2 for usage and configuration errors, 1 for everything
else. Tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import click

from xpcs_kernel import __version__
from xpcs_kernel.errors import ConfigurationError, UsageError, XPCSFlowsError
from xpcs_kernel.process_exit import exit_process

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "LAZY_COMMANDS",
    "LazyGroup",
    "cli",
    "main",
    "one_line_usage_error",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2


#: Subcommand name -> "module:attribute". Commands are imported when used, so
#: ``xpcs-flows correlate`` does not pay for the Globus SDKs or the watcher.
LAZY_COMMANDS: dict[str, str] = {
    "correlate": "xpcs_kernel.cli:correlate_command",
    "synth": "xpcs_kernel.cli:synth_command",
    "warmup": "xpcs_kernel.warmup.command:warmup_command",
    "demo": "flows.cli.demo:demo_command",
    "facilities": "flows.cli.facility:facilities_command",
    "simulate": "flows.cli.facility:simulate_command",
    "login": "flows.cli.globus:login_command",
    "logout": "flows.cli.globus:logout_command",
    "whoami": "flows.cli.globus:whoami_command",
    "deploy": "flows.cli.globus:deploy_command",
    "flow-definition": "flows.cli.flow:flow_definition_command",
    "catalog": "flows.cli.flow:catalog_command",
    "run": "flows.cli.run:run_command",
    "status": "flows.cli.run:status_command",
    "logs": "flows.cli.run:logs_command",
    "cancel": "flows.cli.run:cancel_command",
    "list": "flows.cli.run:list_command",
    "schedule": "flows.cli.run:schedule_command",
    "watch": "flows.cli.watch:watch_command",
    "retry": "flows.cli.watch:retry_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy_commands:
            return command
        module_name, attribute = self.lazy_commands[cmd_name].split(":")
        loaded = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        self.add_command(loaded, cmd_name)
        return loaded


@click.group(
    cls=LazyGroup,
    lazy_commands=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", "-V", prog_name="xpcs-flows")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """XPCS correlation as Globus flows, on the facility that can do it soonest.

    Run `xpcs-flows demo` for a complete example on this machine.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def one_line_usage_error(exc: click.UsageError) -> str:
    """``error: <what was wrong> (see `xpcs-flows CMD --help`)`` on one line."""
    message = " ".join(exc.format_message().split())
    command = exc.ctx.command_path if exc.ctx is not None else "xpcs-flows"
    return f"error: {message} (see `{command} --help`)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xpcs-flows`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rv = cli.main(args=args, prog_name="xpcs-flows", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILURE
    except click.UsageError as exc:  # a missing file, a bad option: one line, not the usage block
        click.echo(one_line_usage_error(exc), err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except XPCSFlowsError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE if isinstance(exc, (UsageError, ConfigurationError)) else EXIT_FAILURE
    return rv if isinstance(rv, int) else 0


def console_main() -> NoReturn:
    """The ``xpcs-flows`` console script: :func:`main`, then a quick process exit."""
    exit_process(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
