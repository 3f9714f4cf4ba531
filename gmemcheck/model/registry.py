"""Design axes, their values, and the named steps each value supplies.

A design is one value per axis. A *choice* axis value may supply replacements for
named **steps** (inner kernel functions such as ``sev_gmem_invalidate`` or
``kvm_gmem_prepare_folio``, called by the actions) and for whole **actions**. The
built-in values are registered here by the model modules; a plug-in
(:mod:`gmemcheck.plugins`) registers more through the same calls, so the built-in
designs exercise the extension API.

*bool* and *set* axes are plain parameters that the steps read from the kernel
context; they have no step overrides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

StepFn = Callable[..., Any]
ActionBuilder = Callable[[Any], Any]  # Kernel -> Action | None


@dataclass
class AxisValue:
    value: str
    doc: str
    source: str = ""
    steps: dict[str, StepFn] = field(default_factory=dict)
    actions: dict[str, ActionBuilder] = field(default_factory=dict)
    origin: str = "built-in"


@dataclass
class Axis:
    name: str
    doc: str
    source: str
    kind: str = "choice"          # choice | bool | set
    values: dict[str, AxisValue] = field(default_factory=dict)
    options: tuple[str, ...] = ()  # for set axes
    origin: str = "built-in"

    def describe_values(self) -> str:
        if self.kind == "bool":
            return "true | false"
        if self.kind == "set":
            return "list of: " + ", ".join(self.options)
        return " | ".join(self.values)


AXES: dict[str, Axis] = {}
BASE_STEPS: dict[str, StepFn] = {}
STEP_DOCS: dict[str, str] = {}
ACTION_BUILDERS: dict[str, ActionBuilder] = {}


def axis(name: str, doc: str, source: str, kind: str = "choice",
         options: tuple[str, ...] = (), origin: str = "built-in") -> Axis:
    if name in AXES:
        raise ValueError(f"axis {name!r} is already defined")
    a = Axis(name, doc, source, kind, options=options, origin=origin)
    AXES[name] = a
    return a


def value(axis_name: str, value_name: str, doc: str, source: str = "",
          steps: dict[str, StepFn] | None = None,
          actions: dict[str, ActionBuilder] | None = None, origin: str = "built-in"
          ) -> AxisValue:
    a = AXES.get(axis_name)
    if a is None:
        raise ValueError(f"unknown axis {axis_name!r}")
    if a.kind != "choice":
        raise ValueError(f"axis {axis_name!r} is a {a.kind} axis: it takes no new values")
    if value_name in a.values:
        raise ValueError(f"axis {axis_name!r} already has a value {value_name!r}")
    for s in steps or {}:
        if s not in BASE_STEPS:
            raise ValueError(f"value {axis_name}={value_name}: unknown step {s!r}")
    for act in actions or {}:
        if act not in ACTION_BUILDERS:
            raise ValueError(f"value {axis_name}={value_name}: unknown action {act!r}")
    v = AxisValue(value_name, doc, source, dict(steps or {}), dict(actions or {}), origin)
    a.values[value_name] = v
    return v


def step(name: str, doc: str) -> Callable[[StepFn], StepFn]:
    """Register the default implementation of a named step."""
    def deco(fn: StepFn) -> StepFn:
        if name in BASE_STEPS:
            raise ValueError(f"step {name!r} is already defined")
        BASE_STEPS[name] = fn
        STEP_DOCS[name] = doc
        return fn
    return deco


def action(name: str) -> Callable[[ActionBuilder], ActionBuilder]:
    """Register the builder of a built-in action (returns None when a design lacks it)."""
    def deco(fn: ActionBuilder) -> ActionBuilder:
        if name in ACTION_BUILDERS:
            raise ValueError(f"action {name!r} is already defined")
        ACTION_BUILDERS[name] = fn
        return fn
    return deco
