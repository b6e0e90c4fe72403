"""``xpcs-flows run --live [--idle S]``: the options of a live run and its one refusal.

Kept apart from :mod:`flows.cli.run` so that the command only gains a
decorator and a call: :func:`live_options` adds the options,
:func:`follow_settings` turns them into ``launch(live=..., follow=...)``
arguments, :func:`refuse_no_live_facility` reports a live launch that no
facility can follow (a configuration matter: exit 2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import click

from deployments import NoFacilityAvailable
from xpcs_kernel.errors import UsageError

__all__ = ["follow_settings", "live_lines", "live_options", "refuse_no_live_facility"]

F = TypeVar("F", bound=Callable[..., Any])

#: The exit code of a usage or configuration error.
_EXIT_USAGE = 2


def live_options(command: F) -> F:
    """Add ``--live`` and ``--idle``."""
    command = click.option(
        "--idle",
        type=click.FloatRange(min=0),
        default=None,
        help="With --live: the file is complete after this many seconds without a frame [10].",
    )(command)
    return click.option(
        "--live",
        is_flag=True,
        help="RAW is still being written: follow it (where the endpoint reads the beamline "
        "storage) and publish once complete (its .done marker, or --idle s without a frame).",
    )(command)


def follow_settings(live: bool, idle: float | None) -> dict[str, Any] | None:
    """The ``follow`` argument of :func:`flows.launch.launch` (``None`` unless live).

    Raises
    ------
    UsageError
        ``--idle`` without ``--live``.
    """
    if not live:
        if idle is not None:
            raise UsageError("--idle is for a live run (--live)", argument="--idle")
        return None
    return {} if idle is None else {"idle": idle}


def refuse_no_live_facility(exc: NoFacilityAvailable) -> NoReturn:
    """Report that no facility can follow the file, and exit 2."""
    click.echo(f"error: {exc}", err=True)
    click.echo(
        "  a live run needs a facility with capabilities.reads_beamline_storage = true",
        err=True,
    )
    raise click.exceptions.Exit(_EXIT_USAGE) from None


def live_lines(progress: Mapping[str, Any] | None) -> list[str]:
    """``status`` lines of a live run's g2 so far (``Run.to_dict()["live_progress"]``)."""
    if not progress:
        return []
    state = "final" if progress["complete"] else "so far (live)"
    lines = [f"  g2 {state}: {progress['frames']} frames in {progress['result']}"]
    longest = progress["longest_delay_s"]
    for b, (first, last) in enumerate(
        zip(progress["g2_first_delay"], progress["g2_longest_delay"], strict=True)
    ):
        lines.append(
            f"    bin {b}: g2 {first:.4f} at the first delay, {last:.4f} at {longest:.3g} s"
        )
    return lines
