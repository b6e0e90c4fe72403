"""Local action providers: the extension point of the local engine.

An :class:`ActionProvider` serves one Globus action URL. The engine resolves
the state's ``Parameters`` into a body, calls :meth:`ActionProvider.run` in a
worker thread and waits at most ``WaitTime`` seconds. A provider

* returns an :class:`~flows.local.records.ActionResult` (SUCCEEDED or FAILED,
  with the reason in ``details["error"]``);
* raises :func:`unable_to_run` (an :class:`~flows.errors.ActionError` with
  code ``ActionUnableToRun``) when the request itself is unacceptable (a
  missing field, an unknown collection or function), as a Globus provider
  rejects a request;
* any other exception is reported as ``ActionFailedException`` with its type
  and message: never as success.

Providers must be idempotent: a resumed run re-runs an action that was in
flight when its process died.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flows.errors import ActionError
from flows.local.records import ActionContext, ActionResult
from xpcs_kernel.errors import UsageError

__all__ = ["ActionProvider", "FunctionProvider", "provider_map", "require", "unable_to_run"]


def unable_to_run(message: str) -> ActionError:
    """An ``ActionUnableToRun`` error to raise from a provider."""
    return ActionError(message, code="ActionUnableToRun")


def require(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``body[key]``, checked to be of ``kind``; raises ``ActionUnableToRun`` otherwise."""
    if key not in body:
        raise unable_to_run(f"request body lacks required field {key!r}")
    value = body[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise unable_to_run(f"field {key!r} must be {names}, found {type(value).__name__}")
    return value


class ActionProvider(ABC):
    """Runs the actions of one action URL on this machine."""

    #: The Globus action URL this provider serves.
    url: str

    @abstractmethod
    def run(self, body: Mapping[str, Any], *, context: ActionContext) -> ActionResult:
        """Run one action to completion.

        Parameters
        ----------
        body
            The resolved ``Parameters`` of the Action state (the request body
            the Globus provider would receive).
        context
            Run id, state name, action id, deadline and a cancellation event.

        Returns
        -------
        ActionResult
            SUCCEEDED with the provider's details, or FAILED with the reason.
        """


class FunctionProvider(ActionProvider):
    """A Python callable as a provider (tests, fault injection, small local actions).

    ``func(body, context)`` returns an :class:`ActionResult`, or a mapping
    taken as the ``details`` of a SUCCEEDED result; it may raise
    :func:`unable_to_run` or any exception (reported as a failed action).
    """

    def __init__(
        self,
        url: str,
        func: Callable[[Mapping[str, Any], ActionContext], ActionResult | Mapping[str, Any]],
    ) -> None:
        self.url = url
        self.func = func

    def run(self, body: Mapping[str, Any], *, context: ActionContext) -> ActionResult:
        """Call the function and wrap a plain mapping as SUCCEEDED."""
        result = self.func(body, context)
        if isinstance(result, ActionResult):
            return result
        if isinstance(result, Mapping):
            return ActionResult.succeeded(result)
        raise TypeError(
            f"provider function for {self.url} returned {type(result).__name__},"
            " not an ActionResult or a mapping"
        )

    def __repr__(self) -> str:
        return f"FunctionProvider({self.url!r}, {getattr(self.func, '__name__', self.func)!r})"


def provider_map(providers: Iterable[ActionProvider]) -> dict[str, ActionProvider]:
    """``{provider.url: provider}``; two providers for one URL are an error."""
    mapping: dict[str, ActionProvider] = {}
    for provider in providers:
        if provider.url in mapping:
            raise UsageError(f"two providers for {provider.url}", argument="providers")
        mapping[provider.url] = provider
    return mapping
