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
    "FlowInputError",
    "FlowNotFound",
    "GlobusPermissionError",
    "GlobusRunNotFound",
    "GlobusServiceError",
    "JSONPathError",
    "LaunchCancelled",
    "LoginRequired",
    "RunNotFound",
    "RunWaitTimeout",
    "WatchLedgerEntryNotFound",
    "WatcherAlreadyRunning",
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


class LaunchCancelled(XPCSFlowsError):
    """A launch held client-side (deferred past a planned window) was cancelled.

    Nothing was sent to ``facility``. ``start_after`` is the POSIX time the
    hold was waiting for.
    """

    def __init__(self, dataset: str, *, facility: str, start_after: float) -> None:
        super().__init__(
            f"held launch of {dataset!r} for {facility} cancelled before anything was sent"
        )
        self.dataset = dataset
        self.facility = facility
        self.start_after = start_after


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


class GlobusServiceError(XPCSFlowsError):
    """A Globus service refused or failed a request (or could not be reached).

    ``operation`` names what we asked (``run_flow``, ``create_flow`` ...),
    ``http_status`` and ``code`` are the service's answer (``None`` when it was
    not reached), ``request_id`` its request id, ``run_id``/``flow_id`` what
    the request was about.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        run_id: str | None = None,
        flow_id: str | None = None,
    ) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.http_status = http_status
        self.code = code
        self.request_id = request_id
        self.run_id = run_id
        self.flow_id = flow_id


class GlobusPermissionError(GlobusServiceError, PermissionError):
    """Globus answered 401/403: missing consent, expired login or no permission."""


class FlowNotFound(GlobusServiceError, LookupError):
    """The Flows service has no flow ``flow_id`` visible to this identity (404)."""


class GlobusRunNotFound(RunNotFound):
    """The Flows service has no run ``run_id`` visible to this identity (404)."""

    def __init__(self, run_id: str, *, request_id: str | None = None) -> None:
        super().__init__(run_id)
        self.message = (
            f"no Globus flow run with id {run_id!r} is visible to you "
            "(wrong id, or you are not its owner, monitor or manager)"
        )
        self.args = (self.message,)
        self.request_id = request_id


class LoginRequired(XPCSFlowsError):
    """No usable Globus tokens, and no way to log in here (not a terminal).

    ``resource_server`` names the service the tokens were for.
    """

    def __init__(self, message: str, *, resource_server: str | None = None) -> None:
        super().__init__(message)
        self.resource_server = resource_server


class WatcherAlreadyRunning(XPCSFlowsError):
    """Another watcher already watches ``directory`` with the same ledger.

    ``lock_path`` is the lock file it holds (released when that process ends,
    even by ``kill -9``).
    """

    def __init__(self, directory: str, *, lock_path: str) -> None:
        super().__init__(
            f"another xpcs-flows watcher already watches {directory} (lock {lock_path})"
        )
        self.directory = directory
        self.lock_path = lock_path


class WatchLedgerEntryNotFound(XPCSFlowsError, LookupError):
    """The watcher ledger has no entry for ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__(f"the watcher ledger has no entry for {path}")
        self.path = path


class FlowInputError(XPCSFlowsError, ValueError):
    """Flow input is invalid; ``pointer`` is the JSON pointer of the field at fault.

    ``expected`` says what a valid value looks like, ``found`` what was there
    (``None`` when the field is missing).
    """

    def __init__(
        self, message: str, *, pointer: str, expected: str, found: str | None = None
    ) -> None:
        text = f"{pointer or '/'}: {message} (expected {expected}"
        text += f", found {found})" if found is not None else ")"
        super().__init__(text)
        self.pointer = pointer
        self.expected = expected
        self.found = found
