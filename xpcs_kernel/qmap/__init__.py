"""The q-map: the :class:`QMap` partitions, its geometry (q from detector
geometry) and the APS q-map file.
"""

from __future__ import annotations

from xpcs_kernel.qmap.build import qmap_from_geometry
from xpcs_kernel.qmap.model import (
    QMap,
    read_qmap,
    write_qmap,
)

__all__ = [
    "QMap",
    "qmap_from_geometry",
    "read_qmap",
    "write_qmap",
]
