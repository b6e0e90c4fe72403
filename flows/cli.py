"""The ``xpcs-flows`` command line.

One click group; subcommands come from the areas that own them (the kernel's
``correlate``/``synth``, the demo, and later the flow, facility and watcher
commands). Errors of ours are printed as one clear line on stderr with a
non-zero exit code: 2 for usage and configuration errors, 1 for everything
else. Tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from xpcs_kernel import __version__
from xpcs_kernel.cli import correlate_command, synth_command
from xpcs_kernel.errors import ConfigurationError, UsageError, XPCSFlowsError

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "cli", "main"]

EXIT_FAILURE = 1
EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="xpcs-flows")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """XPCS correlation as Globus flows, on the facility that can do it soonest.

    Run `xpcs-flows demo` for a complete example on this machine.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


cli.add_command(correlate_command, "correlate")
cli.add_command(synth_command, "synth")


def _register_commands() -> None:
    from flows.demo import demo_command
    from flows.facility_commands import facilities_command, simulate_command
    from flows.flow_commands import catalog_command, flow_definition_command
    from flows.globus_commands import (
        deploy_command,
        login_command,
        logout_command,
        whoami_command,
    )
    from flows.run_commands import (
        cancel_command,
        list_command,
        logs_command,
        run_command,
        schedule_command,
        status_command,
    )
    from flows.watch_commands import retry_command, watch_command

    cli.add_command(demo_command, "demo")
    cli.add_command(facilities_command, "facilities")
    cli.add_command(simulate_command, "simulate")
    cli.add_command(login_command, "login")
    cli.add_command(logout_command, "logout")
    cli.add_command(whoami_command, "whoami")
    cli.add_command(deploy_command, "deploy")
    cli.add_command(flow_definition_command, "flow-definition")
    cli.add_command(catalog_command, "catalog")
    cli.add_command(run_command, "run")
    cli.add_command(status_command, "status")
    cli.add_command(logs_command, "logs")
    cli.add_command(cancel_command, "cancel")
    cli.add_command(list_command, "list")
    cli.add_command(schedule_command, "schedule")
    cli.add_command(watch_command, "watch")
    cli.add_command(retry_command, "retry")


_register_commands()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xpcs-flows`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rv = cli.main(args=args, prog_name="xpcs-flows", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILURE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except XPCSFlowsError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE if isinstance(exc, (UsageError, ConfigurationError)) else EXIT_FAILURE
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
