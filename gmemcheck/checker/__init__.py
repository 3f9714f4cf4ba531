"""Kernel-agnostic model checking: core values, explicit BFS, liveness on the state
graph, simulation, replay, trace files. Nothing here knows about kernels."""

from .core import (
    Action,
    EngineBug,
    Kind,
    ModelError,
    Outcome,
    Property,
    Result,
    SimpleModel,
    Step,
    Trace,
    Verdict,
)
from .explicit import Caps, Exploration, explore
from .replay import ReplayError, replay
from .run import CheckRun, check

__all__ = [
    "Action", "Caps", "CheckRun", "EngineBug", "Exploration", "Kind", "ModelError", "Outcome",
    "Property", "ReplayError", "Result", "SimpleModel", "Step", "Trace", "Verdict", "check",
    "explore", "replay",
]
