"""The one exception hierarchy of xpcs-flows.

Every error raised on purpose by any part of xpcs-flows derives from
:class:`XPCSFlowsError`. The hierarchy lives in the kernel package because the
kernel must import without any Globus package, and every other package of
ours may import the kernel.

Errors that mean "the caller asked for something invalid" (bad arguments, bad
configuration, bad input files) also derive from :class:`ValueError`, so code
that already catches ``ValueError`` keeps working.

Each subclass carries structured fields (the file, the key or offset, what was
expected and what was found) so that callers, logs and flow run records can
report them without parsing the message.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "ConfigurationError",
    "CorrelationError",
    "FitError",
    "FrameFormatError",
    "InputDataError",
    "QMapError",
    "ResultFileError",
    "UsageError",
    "XPCSFlowsError",
]


def _describe(
    message: str,
    *,
    path: str | os.PathLike[str] | None = None,
    key: str | None = None,
    offset: int | None = None,
    expected: str | None = None,
    found: str | None = None,
) -> str:
    parts: list[str] = []
    if path is not None:
        parts.append(f"{os.fspath(path)}")
    if key is not None:
        parts.append(f"[{key}]")
    if offset is not None:
        parts.append(f"at byte offset {offset}")
    where = " ".join(parts)
    text = f"{where}: {message}" if where else message
    if expected is not None:
        text += f" (expected {expected}"
        text += f", found {found})" if found is not None else ")"
    elif found is not None:
        text += f" (found {found})"
    return text


class XPCSFlowsError(Exception):
    """Root of every error raised on purpose by xpcs-flows."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (used in run records and ``--json`` output)."""
        fields = {
            k: (os.fspath(v) if isinstance(v, os.PathLike) else v)
            for k, v in vars(self).items()
            if k != "message" and not k.startswith("_")
        }
        return {"type": type(self).__name__, "message": self.message, **fields}


class UsageError(XPCSFlowsError, ValueError):
    """An argument or option has a value the function cannot accept.

    ``argument`` names the offending argument.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        text = f"{argument}: {message}" if argument else message
        super().__init__(text)
        self.argument = argument


class ConfigurationError(XPCSFlowsError, ValueError):
    """A configuration file or object is invalid.

    ``source`` is the file (or object) it came from, ``field`` the key at
    fault and ``expected`` what a valid value looks like.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | os.PathLike[str] | None = None,
        field: str | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        super().__init__(
            _describe(message, path=source, key=field, expected=expected, found=found)
        )
        self.source = os.fspath(source) if source is not None else None
        self.field = field
        self.expected = expected
        self.found = found


class InputDataError(XPCSFlowsError, ValueError):
    """An input data file (or array) is unreadable, truncated or inconsistent.

    ``path`` is the file, ``key`` the HDF5 dataset or record at fault,
    ``offset`` the byte offset for binary formats, ``expected`` and ``found``
    what should have been there and what was.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        key: str | None = None,
        offset: int | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        super().__init__(
            _describe(message, path=path, key=key, offset=offset, expected=expected, found=found)
        )
        self.path = os.fspath(path) if path is not None else None
        self.key = key
        self.offset = offset
        self.expected = expected
        self.found = found


class FrameFormatError(InputDataError):
    """Raw detector frames (HDF5, IMM, Rigaku, array) are invalid."""


class QMapError(InputDataError):
    """A q-map (file or in-memory) is invalid or does not fit the frames."""


class ResultFileError(InputDataError):
    """An APS result file is missing keys or has the wrong shapes."""


class CorrelationError(XPCSFlowsError):
    """The correlation cannot proceed (for example too few frames for a delay)."""


class FitError(XPCSFlowsError):
    """A model fit failed; ``bin_index`` names the q-bin when known."""

    def __init__(self, message: str, *, bin_index: int | None = None) -> None:
        super().__init__(message if bin_index is None else f"q-bin {bin_index}: {message}")
        self.bin_index = bin_index
