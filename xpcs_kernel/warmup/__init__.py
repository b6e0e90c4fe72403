"""Compile the kernels once (``xpcs-flows warmup``), so no user's run compiles.

:func:`warm_kernels` runs every numba kernel of one run on a few tiny frames,
filling numba's on-disk cache (``NUMBA_CACHE_DIR``); :mod:`.command` is the
click command that an install, a deploy or an endpoint's ``worker_init`` runs.
"""

from __future__ import annotations

from xpcs_kernel.warmup.kernels import DETECTOR_DTYPES, warm_kernels

__all__ = ["DETECTOR_DTYPES", "warm_kernels"]
