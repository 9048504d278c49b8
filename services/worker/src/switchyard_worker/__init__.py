"""switchyard-worker: a supervised, autoscaled pool of warm Switchyard job consumers.

The command ``switchyard-worker`` is the product; this package also exports its settings
and the autoscaler's pure decision function, so that deployments and tests can reason about
scaling without running a pool.
"""

from __future__ import annotations

from ._autoscale import Decision, Observation, ScalePolicy, ScaleState, decide
from ._cli import main
from ._settings import SettingsError, WorkerSettings

__all__ = [
    "Decision",
    "Observation",
    "ScalePolicy",
    "ScaleState",
    "SettingsError",
    "WorkerSettings",
    "decide",
    "main",
]
