"""The ``xpcs-flows`` command line: the click group (:mod:`flows.cli.app`) and one
module per command family (runs, facilities, Globus, flow definition, watcher,
demo), imported only when their command is used.
"""

from __future__ import annotations

from flows.cli.app import (
    EXIT_FAILURE,
    EXIT_USAGE,
    LAZY_COMMANDS,
    LazyGroup,
    cli,
    console_main,
    main,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "LAZY_COMMANDS",
    "LazyGroup",
    "cli",
    "console_main",
    "main",
]
