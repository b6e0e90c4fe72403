"""Globus API errors as our errors, with clear messages.

404 on a run is :class:`~flows.errors.GlobusRunNotFound` (on a flow
:class:`~flows.errors.FlowNotFound`), 401/403
:class:`~flows.errors.GlobusPermissionError`, anything else (5xx, network)
:class:`~flows.errors.GlobusServiceError`; each keeps the HTTP status, the
service's error code and request id.
"""

from __future__ import annotations

from typing import Any

import globus_sdk

from flows.errors import (
    FlowNotFound,
    GlobusPermissionError,
    GlobusRunNotFound,
    GlobusServiceError,
)
from xpcs_kernel.errors import XPCSFlowsError

__all__ = ["map_globus_error"]


def map_globus_error(
    exc: globus_sdk.GlobusError,
    *,
    operation: str,
    run_id: str | None = None,
    flow_id: str | None = None,
) -> XPCSFlowsError:
    """Our error for a globus-sdk error raised by ``operation``.

    Parameters
    ----------
    exc
        A :class:`~globus_sdk.GlobusAPIError` (the service answered) or another
        globus-sdk error (for example a network error: it did not).
    operation
        What was asked (``run_flow``, ``get_run``, ``update_flow`` ...).
    run_id, flow_id
        What the request was about, kept on the error.
    """
    if not isinstance(exc, globus_sdk.GlobusAPIError):
        return GlobusServiceError(
            f"Globus could not be reached or answered unreadably: {exc}",
            operation=operation,
            run_id=run_id,
            flow_id=flow_id,
        )
    status = exc.http_status
    code = None if exc.code in (None, "Error") else str(exc.code)
    request_id = getattr(exc, "request_id", None)
    detail = (exc.message or exc.text or "(no message)")[:500]
    if status == 404 and run_id is not None:
        return GlobusRunNotFound(run_id, request_id=request_id)
    kwargs: dict[str, Any] = {
        "operation": operation,
        "http_status": status,
        "code": code,
        "request_id": request_id,
        "run_id": run_id,
        "flow_id": flow_id,
    }
    if status == 404 and flow_id is not None:
        return FlowNotFound(
            f"no flow {flow_id} visible to you (deleted, or deployed by someone else): {detail}",
            **kwargs,
        )
    if status in (401, 403):
        return GlobusPermissionError(
            f"Globus refused ({status} {code or ''}): {detail}; log in again with "
            "`xpcs-flows login` (new consents may be needed), or ask the owner for access",
            **kwargs,
        )
    return GlobusServiceError(f"Globus answered {status} {code or ''}: {detail}", **kwargs)
