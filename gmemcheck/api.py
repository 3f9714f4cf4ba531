"""The supported extension API for plug-ins (``--plugin FILE`` or ``plugins = [...]`` in
a preset). A plug-in is an ordinary Python file that imports from this module only.

What a plug-in can do:

* ``add_value(axis, value, doc, steps={...}, actions={...})``: a new value for an
  existing choice axis, supplying replacements for named steps (``step_names()``) and/or
  whole actions (``action_names()``);
* ``add_axis(name, doc, values={value: (doc, steps, actions)})``: a new choice axis; a
  preset that does not name it gets its first value;
* ``add_property(name, factory)``: a new property; ``factory(model)`` returns a
  :class:`Property` or None when it does not apply to the model's design.

A step function takes the kernel context ``k`` (``k.axes``, ``k.N``, ``k.P``, ``k.snp``
and every other step as ``k.<step>(...)``) and a :class:`Work` (the state being
changed: ``w.get(field)``, ``w.arr(field)`` for a mutable array, ``w.put(field, value)``,
``w.event(text)`` for the trace). It must be deterministic and change only fields that
the calling action ``modifies``; the loader checks both.

The built-in axis values are registered through the same ``add_value``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .checker.core import Action, Kind, Outcome, Property
from .model import registry as _registry
from .model.state import (
    CONTENT_NAMES,
    DATA,
    HOST_WRITE_FAULTS,
    NPT_4K,
    NPT_HUGE,
    NPT_NONE,
    RMP_2M,
    RMP_4K,
    RMP_PF,
    RMP_SHARED,
    STALE,
    ZERO,
    GmemState,
)
from .model.work import Work

__all__ = [
    "Action", "CONTENT_NAMES", "DATA", "GmemState", "HOST_WRITE_FAULTS", "Kind", "NPT_4K",
    "NPT_HUGE", "NPT_NONE", "Outcome", "Property", "RMP_2M", "RMP_4K", "RMP_PF",
    "RMP_SHARED", "STALE", "Work", "ZERO", "action_names", "add_axis", "add_property",
    "add_value", "axis_values", "step_names",
]

_origin = "built-in"


def _set_origin(origin: str) -> None:
    global _origin
    _origin = origin


def step_names() -> dict[str, str]:
    """Every replaceable step, with what its default implementation does."""
    return dict(_registry.STEP_DOCS)


def action_names() -> list[str]:
    return list(_registry.ACTION_BUILDERS)


def axis_values() -> dict[str, list[str]]:
    return {n: list(a.values) if a.kind == "choice" else [a.kind]
            for n, a in _registry.AXES.items()}


def add_value(axis: str, value: str, doc: str, source: str = "",
              steps: dict[str, Callable[..., Any]] | None = None,
              actions: dict[str, Callable[[Any], Action | None]] | None = None) -> None:
    _registry.value(axis, value, doc, source, steps, actions, origin=_origin)


def add_axis(name: str, doc: str, values: dict[str, tuple[str, dict[str, Any], dict[str, Any]]],
             source: str = "") -> None:
    if not values:
        raise ValueError(f"axis {name!r} needs at least one value")
    _registry.axis(name, doc, source or _origin, origin=_origin)
    for v, (vdoc, steps, actions) in values.items():
        _registry.value(name, v, vdoc, "", steps, actions, origin=_origin)


def add_property(name: str, factory: Callable[[Any], Property | None]) -> None:
    from . import properties

    properties.register(name, factory, _origin)
