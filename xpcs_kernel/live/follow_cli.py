"""The ``--follow`` options of ``correlate`` and what they run.

Kept apart from :mod:`xpcs_kernel.cli` so that the command only gains a
decorator and one branch; the follower itself is imported when used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["follow_options", "run_follow"]

F = TypeVar("F", bound=Callable[..., Any])


def follow_options(command: F) -> F:
    """Add ``--follow``, ``--idle``, ``--update``, ``--done-marker`` and ``--checkpoint``."""
    options = [
        click.option(
            "--follow",
            is_flag=True,
            help="RAW is still being written: correlate the frames as they arrive.",
        ),
        click.option(
            "--idle",
            type=click.FloatRange(min=0),
            default=10.0,
            show_default=True,
            help="With --follow: end when no frame arrived for this many seconds.",
        ),
        click.option(
            "--update",
            type=click.FloatRange(min=0),
            default=2.0,
            show_default=True,
            help="With --follow: replace the result with the results so far this often (s).",
        ),
        click.option(
            "--done-marker",
            default=".done",
            show_default=True,
            help="With --follow: end once RAW + this suffix exists ('' for none).",
        ),
        click.option(
            "--checkpoint",
            type=click.FloatRange(min=0),
            default=30.0,
            show_default=True,
            help="With --follow: save the state for a restart this often (s; 0: every update).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_follow(
    raw: Path,
    qmap: Path,
    output: Path,
    options: Any,
    *,
    quiet: bool,
    idle: float,
    update: float,
    done_marker: str,
    checkpoint: float,
) -> Any:
    """Run :func:`~xpcs_kernel.live.follow.follow_file`, reporting updates on stderr."""
    from xpcs_kernel.live.follow import FollowConfig, FollowUpdate, follow_file

    config = FollowConfig(
        idle=idle, update=update, done_marker=done_marker or None, checkpoint=checkpoint
    )

    def report(event: FollowUpdate) -> None:
        state = "final" if event.complete else "so far"
        click.echo(f"{output}: {event.frames} frames ({state})", err=True)

    return follow_file(
        raw, qmap, output, options=options, config=config, on_update=None if quiet else report
    )
