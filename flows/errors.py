"""Errors raised by the ``flows`` package (the local engine and its providers).

Every class derives from :class:`~xpcs_kernel.errors.XPCSFlowsError` and carries
structured fields (the state, the field, the run id, the action URL) so that run
records and ``--json`` output can report them without parsing messages.
"""

from __future__ import annotations

from xpcs_kernel.errors import XPCSFlowsError

__all__ = [
    "ActionError",
    "ExpressionError",
    "FlowDefinitionError",
    "JSONPathError",
    "RunNotFound",
    "RunWaitTimeout",
]


class FlowDefinitionError(XPCSFlowsError, ValueError):
    """A flow definition is invalid.

    ``state`` names the state at fault (``None`` for top-level problems) and
    ``field`` the offending field (``StartAt``, ``Next``, ``Parameters`` ...).
    """

    def __init__(
        self, message: str, *, state: str | None = None, field: str | None = None
    ) -> None:
        where = ".".join(p for p in (state, field) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.state = state
        self.field = field


class JSONPathError(XPCSFlowsError, ValueError):
    """A JSONPath is malformed, or names something absent from the run state.

    ``path`` is the JSONPath text.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"JSONPath {path!r}: {message}")
        self.path = path
        self.reason = message


class ExpressionError(XPCSFlowsError, ValueError):
    """A ``.=`` expression is not in the supported subset, or failed to evaluate.

    ``expression`` is the expression text.
    """

    def __init__(self, message: str, *, expression: str) -> None:
        super().__init__(f"expression {expression!r}: {message}")
        self.expression = expression
        self.reason = message


class RunNotFound(XPCSFlowsError, LookupError):
    """No run with ``run_id`` exists in the local run store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no local flow run with id {run_id!r}")
        self.run_id = run_id


class RunWaitTimeout(XPCSFlowsError, TimeoutError):
    """A run did not reach a final status within ``timeout`` seconds (it is still ACTIVE)."""

    def __init__(self, run_id: str, timeout: float) -> None:
        super().__init__(f"flow run {run_id} still ACTIVE after {timeout:g} s")
        self.run_id = run_id
        self.timeout = timeout


class ActionError(XPCSFlowsError):
    """An action failed, timed out or could not be run.

    ``code`` is the Globus Flows error name (``ActionUnableToRun``,
    ``ActionFailedException``, ``ActionTimeout``), ``state`` the Action state
    and ``action_url`` the provider's URL.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        state: str | None = None,
        action_url: str | None = None,
    ) -> None:
        where = f"state {state}: " if state else ""
        super().__init__(f"{where}{code}: {message}")
        self.code = code
        self.state = state
        self.action_url = action_url
        self.cause = message
