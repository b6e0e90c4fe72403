"""The command-line skeleton: help, version, error reporting and exit codes."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from flows.cli import app as cli_module
from xpcs_kernel import __version__
from xpcs_kernel.errors import CorrelationError, UsageError


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_module.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"xpcs-flows, version {__version__}"


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_module.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("correlate", "synth", "demo"):
        assert command in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_module.main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code"), [(UsageError("bad", argument="x"), 2), (CorrelationError("boom"), 1)]
)
def test_our_errors_become_one_line_and_exit_code(
    error: Exception,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    @click.command()
    def explode() -> None:
        raise error

    monkeypatch.setitem(cli_module.cli.commands, "explode", explode)
    assert cli_module.main(["explode"]) == code
    err = capsys.readouterr().err
    assert err.strip() == f"error: {error}"
    assert "Traceback" not in err


def test_console_script_runs_as_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli.app", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_console_main_keeps_output_and_exit_code() -> None:
    """The console entry ends the process quickly (exit_process) without losing output."""
    script = (
        "import sys; from flows.cli import console_main; sys.argv[1:] = {args!r}; console_main()"
    )
    ok = subprocess.run(
        [sys.executable, "-c", script.format(args=["--version"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0
    assert __version__ in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-c", script.format(args=["no-such-command"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "no-such-command" in bad.stderr


def test_correlate_help_imports_no_numerics() -> None:
    # `correlate --help` answers at once: no numba, scipy, h5py, torch or rich import
    code = (
        "import sys\n"
        "from flows.cli.app import main\n"
        "code = main(['correlate', '--help'])\n"
        "heavy = ('numba', 'scipy', 'h5py', 'torch', 'rich')\n"
        "print('EXIT', code, 'LOADED', *[m for m in heavy if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: " in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "EXIT 0 LOADED"
