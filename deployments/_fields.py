"""Typed access to one TOML table, with errors that name the file and the field.

Every read records the key; :meth:`Fields.finish` then refuses keys nobody
read, so that a misspelt field is an error rather than a silent default.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from xpcs_kernel.errors import ConfigurationError

__all__ = ["PLACEHOLDER_PREFIX", "Fields"]

#: Values that start with this prefix are explicit placeholders that the user
#: must replace; the rest of the string says what to put there.
PLACEHOLDER_PREFIX = "FILL-ME"


class Fields:
    """A view of one table of a descriptor.

    Parameters
    ----------
    data
        The table as parsed by :mod:`tomllib`.
    source
        The file (or other origin) the table came from, used in errors.
    prefix
        The dotted path of this table inside the file (``""`` for the top).
    """

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str = "") -> None:
        self.data = data
        self.source = source
        self.prefix = prefix
        self._read: set[str] = set()

    def where(self, key: str) -> str:
        """The dotted field name of ``key`` inside the file."""
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(
        self, key: str, message: str, *, expected: str | None = None, found: Any = None
    ) -> ConfigurationError:
        """A :class:`ConfigurationError` naming this file and ``key``."""
        return ConfigurationError(
            message,
            source=self.source,
            field=self.where(key),
            expected=expected,
            found=None if found is None else repr(found),
        )

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self._read.add(key)
        if key not in self.data:
            if required:
                raise self.error(key, "required field is missing")
            return default
        value = self.data[key]
        if isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX):
            hint = value[len(PLACEHOLDER_PREFIX) :].lstrip(" :-")
            raise self.error(key, f"placeholder not filled in: {hint}")
        return value

    def string(self, key: str, default: str | None = None, *, required: bool = True) -> str:
        """A non-empty string."""
        value = self._get(key, default, required and default is None)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "must be a non-empty string", expected="a string", found=value)
        return value

    def optional_string(self, key: str) -> str | None:
        """A non-empty string, or ``None`` when absent."""
        if key not in self.data:
            self._read.add(key)
            return None
        return self.string(key)

    def uuid(self, key: str, *, required: bool = True) -> str | None:
        """A UUID, returned in canonical lower-case form."""
        if not required and key not in self.data:
            self._read.add(key)
            return None
        value = self.string(key)
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise self.error(key, "not a UUID", expected="a UUID", found=value) from None

    def number(
        self, key: str, default: float | None = None, *, minimum: float = 0.0, strict: bool = False
    ) -> float:
        """A number ``>= minimum`` (``> minimum`` when ``strict``)."""
        value = self._get(key, default, default is None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, "must be a number", expected="a number", found=value)
        if value < minimum or (strict and value == minimum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise self.error(key, "out of range", expected=bound, found=value)
        return float(value)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0) -> int:
        """An integer ``>= minimum``."""
        value = self._get(key, default, default is None)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer", expected="an integer", found=value)
        if value < minimum:
            raise self.error(key, "out of range", expected=f">= {minimum}", found=value)
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        """``true`` or ``false``."""
        value = self._get(key, default, default is None)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false", expected="a boolean", found=value)
        return value

    def strings(self, key: str, default: list[str] | None = None) -> list[str]:
        """A list of non-empty strings."""
        value = self._get(key, default, default is None)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "must be a list of strings", found=value)
        for v in value:
            if v.startswith(PLACEHOLDER_PREFIX):
                raise self.error(
                    key, f"placeholder not filled in: {v[len(PLACEHOLDER_PREFIX) :].lstrip(' :-')}"
                )
        return list(value)

    def table(self, key: str, *, required: bool = True) -> Fields | None:
        """A sub-table, or ``None`` when absent and not required."""
        value = self._get(key, None, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a table", expected="a TOML table", found=value)
        return Fields(value, self.source, self.where(key))

    def tables(self, key: str) -> list[Fields]:
        """An array of tables (``[[key]]``); empty when absent."""
        value = self._get(key, [], False)
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.error(key, "must be an array of tables", expected="[[...]] entries")
        return [Fields(v, self.source, f"{self.where(key)}[{i}]") for i, v in enumerate(value)]

    def mark(self, key: str) -> None:
        """Record ``key`` as read (for values checked by the caller)."""
        self._read.add(key)

    def finish(self) -> None:
        """Refuse keys that were never read (misspelt or unsupported fields)."""
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            raise self.error(
                unknown[0], "unknown field", expected="one of " + ", ".join(sorted(self._read))
            )
