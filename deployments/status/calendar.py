"""The descriptor's own maintenance calendar as a status source.

Never unreachable: it reports ``down`` while a window is open and ``up``
otherwise, listing the windows that touch the next ``horizon`` seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deployments.maintenance import MaintenanceWindow
from deployments.status.base import FacilityState, FacilityStatus, StatusProbe

__all__ = ["CalendarProbe"]


class CalendarProbe(StatusProbe):
    """Status from the recurring and one-off windows written in a descriptor.

    Parameters
    ----------
    facility
        The deployment name.
    windows
        The descriptor's maintenance windows.
    horizon
        How far ahead (seconds) to list windows.
    **kwargs
        ``timeout``, ``ttl``, ``clock``: see :class:`StatusProbe`.
    """

    kind = "calendar"

    def __init__(
        self,
        facility: str,
        *,
        windows: Sequence[MaintenanceWindow],
        horizon: float = 2 * 86400.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("ttl", 0.0)
        super().__init__(facility, **kwargs)
        self.windows = tuple(windows)
        self.horizon = horizon

    def fetch(self) -> FacilityStatus:
        """List the windows in ``[now, now + horizon]``."""
        now = self.clock()
        outages = sorted(
            (o for w in self.windows for o in w.occurrences(now, now + self.horizon)),
            key=lambda o: o.start,
        )
        current = [o for o in outages if o.overlaps(now, now)]
        return FacilityStatus(
            facility=self.facility,
            source=self.kind,
            state=FacilityState.DOWN if current else FacilityState.UP,
            observed_at=now,
            detail=f"in maintenance: {current[0].description}"
            if current
            else "no maintenance now",
            outages=tuple(outages),
        )
