"""The status interface: facility states, outages, one status answer, the probe ABC.

A probe asks one source (a Globus Compute endpoint, a facility status API,
the descriptor's own maintenance calendar) about one facility. Every probe
has a timeout and a TTL cache, and a defined answer when its source cannot
be reached or answers nonsense: :attr:`FacilityState.UNKNOWN`, never ``up``.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace

from deployments.errors import StatusUnavailable
from deployments.state import FacilityState, FacilityStatus, Outage, parse_timestamp

__all__ = [
    "FacilityState",
    "FacilityStatus",
    "Outage",
    "StatusProbe",
    "parse_timestamp",
]


class StatusProbe(ABC):
    """Asks one source about one facility, with a timeout and a TTL cache.

    Subclasses implement :meth:`fetch`, which may raise
    :class:`~deployments.errors.StatusUnavailable`; :meth:`status` caches the
    answer for ``ttl`` seconds and turns that error into an ``unknown``
    status naming the reason. Other exceptions are bugs and propagate.

    Parameters
    ----------
    facility
        The deployment name the answer is about.
    timeout
        Seconds allowed for one request to the source.
    ttl
        Seconds an answer (or a failure) is reused before asking again.
    clock
        Returns the current POSIX time; injectable for tests and simulation.
    """

    #: The source kind, as written in descriptors (``kind = "..."``).
    kind: str = "abstract"

    def __init__(
        self,
        facility: str,
        *,
        timeout: float = 5.0,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.facility = facility
        self.timeout = timeout
        self.ttl = ttl
        self.clock = clock
        self._cached: FacilityStatus | None = None
        self._lock = threading.Lock()

    @abstractmethod
    def fetch(self) -> FacilityStatus:
        """Ask the source now (no cache).

        Raises
        ------
        StatusUnavailable
            When the source is unreachable, times out, or answers malformed data.
        """

    def status(self) -> FacilityStatus:
        """The cached answer if younger than ``ttl``, else a fresh one.

        Never raises :class:`StatusUnavailable`: an unreadable source gives
        an ``unknown`` status whose ``detail`` says why.
        """
        with self._lock:
            now = self.clock()
            if self._cached is not None and self._cached.age(now) < self.ttl:
                return self._cached
            try:
                answer = self.fetch()
            except StatusUnavailable as exc:
                answer = self.unknown(str(exc))
            self._cached = replace(answer, observed_at=now)
            return self._cached

    def unknown(self, detail: str) -> FacilityStatus:
        """An ``unknown`` answer from this probe."""
        return FacilityStatus(
            facility=self.facility,
            source=self.kind,
            state=FacilityState.UNKNOWN,
            observed_at=self.clock(),
            detail=detail,
        )

    def invalidate(self) -> None:
        """Forget the cached answer (the next :meth:`status` asks the source)."""
        with self._lock:
            self._cached = None
