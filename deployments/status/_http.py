"""One JSON GET with a timeout, every failure turned into :class:`StatusUnavailable`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from deployments.errors import StatusUnavailable

__all__ = ["get_json", "join_url"]

_MAX_BYTES = 4 * 1024 * 1024


def join_url(base: str, path: str) -> str:
    """``base`` and ``path`` joined by exactly one slash."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def get_json(url: str, *, timeout: float, source: str) -> Any:
    """GET ``url`` and decode its JSON body.

    Raises
    ------
    StatusUnavailable
        On connection errors, timeouts, HTTP errors, oversized or non-JSON bodies.
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(_MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise StatusUnavailable(f"HTTP {exc.code}", source=source, url=url) from None
    except TimeoutError:
        raise StatusUnavailable(
            f"no answer within {timeout:g} s", source=source, url=url
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusUnavailable(f"unreachable: {reason}", source=source, url=url) from None
    if len(body) > _MAX_BYTES:
        raise StatusUnavailable("answer too large", source=source, url=url)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StatusUnavailable(f"malformed JSON: {exc}", source=source, url=url) from None
