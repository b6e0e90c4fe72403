"""Synthetic XPCS datasets with a known answer (frames, q-map, spec)."""

from __future__ import annotations

from xpcs_kernel.synthetic.frames import (
    SyntheticDataset,
    SyntheticSpec,
    generate_frames,
    synthesize,
    synthesize_dataset,
    synthesize_qmap,
    write_synthetic,
)

__all__ = [
    "SyntheticDataset",
    "SyntheticSpec",
    "generate_frames",
    "synthesize",
    "synthesize_dataset",
    "synthesize_qmap",
    "write_synthetic",
]
