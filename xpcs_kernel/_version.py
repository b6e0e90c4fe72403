"""Single source of the package version (read by pyproject via setuptools)."""

from __future__ import annotations

__version__ = "0.1.0"
