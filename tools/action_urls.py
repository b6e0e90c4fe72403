"""The public Globus action-provider URLs, in one place.

The tools put them in the flow definition (the Globus engine sends them to the
Flows service); the local engine maps each of them to a local
:class:`~flows.local.providers.base.ActionProvider`.
"""

from __future__ import annotations

__all__ = [
    "COMPUTE_V2_URL",
    "COMPUTE_V3_URL",
    "LEGACY_TRANSFER_URL",
    "SEARCH_INGEST_URL",
    "TRANSFER_URL",
]

#: Globus Transfer action provider: submit a transfer task.
TRANSFER_URL = "https://transfer.actions.globus.org/transfer"
#: Globus Compute action provider, version 3 (``endpoint_id`` + ``tasks``).
COMPUTE_V3_URL = "https://compute.actions.globus.org/v3"
#: Globus Compute action provider, version 2 (kept for older definitions).
COMPUTE_V2_URL = "https://compute.actions.globus.org"
#: Globus Search ingest action provider.
SEARCH_INGEST_URL = "https://actions.globus.org/search/ingest"
#: The older Transfer action provider URL (gladier's ``GlobusTransfer`` tool uses it),
#: with ``source_endpoint_id``/``destination_endpoint_id``/``transfer_items``.
LEGACY_TRANSFER_URL = "https://actions.globus.org/transfer/transfer"
