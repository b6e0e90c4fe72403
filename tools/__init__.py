"""Gladier tool definitions of the XPCS flow (Transfer in, Compute correlation,
plots, publication, transfer back).

Each tool lives in its own module; compute functions are self-contained (they
import what they need inside their body) so they survive serialization to a
Globus Compute endpoint. Every Action state of a tool catches every error into
the flow's failure path (:mod:`tools._states`).
"""

from __future__ import annotations

from tools.correlate import BatchCorrelate, Correlate, xpcs_correlate
from tools.correlate_live import CorrelateLive, xpcs_correlate_live
from tools.plots import BatchPlots, Plots, xpcs_plots
from tools.publish import BatchPublish, Publish, xpcs_publish_metadata
from tools.transfer_back import TransferBack
from tools.transfer_in import BatchTransferIn, TransferIn

__all__: list[str] = [
    "BatchCorrelate",
    "BatchPlots",
    "BatchPublish",
    "BatchTransferIn",
    "Correlate",
    "CorrelateLive",
    "Plots",
    "Publish",
    "TransferBack",
    "TransferIn",
    "xpcs_correlate",
    "xpcs_correlate_live",
    "xpcs_plots",
    "xpcs_publish_metadata",
]
