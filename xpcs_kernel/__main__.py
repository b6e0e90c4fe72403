"""``python -m xpcs_kernel correlate|synth|warmup ...``: endpoints without the rest."""

from __future__ import annotations

import click

from xpcs_kernel import __version__
from xpcs_kernel.cli import correlate_command, synth_command
from xpcs_kernel.errors import ConfigurationError, UsageError, XPCSFlowsError
from xpcs_kernel.process_exit import exit_process
from xpcs_kernel.warmup.command import warmup_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="xpcs_kernel")
def kernel_cli() -> None:
    """XPCS correlation kernel (multi-tau, two-time, SAXS, fits)."""


kernel_cli.add_command(correlate_command)
kernel_cli.add_command(synth_command)
kernel_cli.add_command(warmup_command)


def main() -> int:
    try:
        kernel_cli.main(prog_name="python -m xpcs_kernel", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except XPCSFlowsError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2 if isinstance(exc, (UsageError, ConfigurationError)) else 1
    return 0


if __name__ == "__main__":
    exit_process(main())
