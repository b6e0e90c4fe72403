"""torch for the backend tests: skipped where torch is absent, except in CI.

CI installs the CPU torch wheel and sets ``CI``; there a missing torch is a
failure, so the torch backend's tests always run in CI.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest


def require_torch() -> ModuleType:
    """``torch`` with two threads, or skip (fail when the ``CI`` variable is set)."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI is set but torch is not installed: the torch tests must run in CI")
        pytest.skip(
            "torch is not installed (pip install 'xpcs-flows[gpu]')", allow_module_level=True
        )
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return torch
