"""The cross-facility simulation against the Balsam baselines: the scenario
model, the event engine, the oracle and our policy, and :func:`simulate`.
"""

from __future__ import annotations

from deployments.simulate.run import (
    POLICIES,
    SimulationResult,
    run_simulation,
    simulate,
)

__all__ = [
    "POLICIES",
    "SimulationResult",
    "run_simulation",
    "simulate",
]
