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
    # steps and actions this value wraps: its implementation receives the one it
    # replaces (see Kernel and GmemModel), so it may share them with another value
    wraps: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"{self._axis}={self.value}"

    _axis: str = ""
    # step -> its symbolic twin (see TWINNABLE), for the Z3 engines
    symbolic: dict[str, Callable[..., Any]] = field(default_factory=dict)


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
# who defined a step or action under a new name (absent: built-in)
STEP_ORIGIN: dict[str, str] = {}
ACTION_ORIGIN: dict[str, str] = {}
# action name -> [(wrapper builder(k, prev) -> Action | None, origin)], applied in order
ACTION_WRAPPERS: dict[str, list[tuple[Callable[[Any, Any], Any], str]]] = {}


@dataclass(frozen=True)
class Thread:
    """A thread of the system: its program counter is the field ``pc`` (a ``thread``
    field, declared with it); its actions are the ones added with ``thread=name``."""

    name: str
    doc: str
    pc: str
    origin: str = "built-in"


@dataclass(frozen=True)
class Lock:
    """A lock: the field ``field`` holds the name of the thread holding it, or ""."""

    name: str
    doc: str
    field: str
    origin: str = "built-in"


THREADS: dict[str, Thread] = {}
LOCKS: dict[str, Lock] = {}


@dataclass(frozen=True)
class Choice:
    """A documented nondeterministic choice a step makes with ``w.choose(name)``: every
    action in ``actions`` gets one more argument ``name`` over ``values`` (the first is
    the ordinary outcome), so each outcome is a separate labelled step that replays."""

    name: str
    values: tuple[Any, ...]
    doc: str
    actions: tuple[str, ...]
    origin: str = "built-in"
    when: Callable[[Any], bool] | None = None  # the designs that have it (None: all)


CHOICES: dict[str, Choice] = {}


# The steps whose symbolic twin a plug-in may supply, with the twin's signature: the Z3
# encoding calls the twin where it would run the step. ``w`` is the symbolic work
# (gmemcheck.symbolic.work.SW), ``failed[p]`` a Z3 Bool per page position.
TWINNABLE: dict[str, str] = {
    "rmp_make_shared_failed": "twin(k, w, failed): in one sev_gmem_invalidate, failed[p] "
                              "says rmp_make_shared of page position p failed (every page "
                              "of a 2M entry for a 2M update); the built-in twin does "
                              "nothing (WARN_ONCE)",
    "extra_refs": "twin(k, s, prev, lo, hi) -> Z3 Bool: some reference to a folio on "
                  "[lo, hi) beyond the page cache's and the caller's (the step's count > 0); "
                  "s reads the symbolic state, prev(lo, hi) is the built-in form; a twin "
                  "of a wrapping value receives it as prev, like the step",
}
# twinnable steps whose wrapping replacement (wraps=True) may take a twin too
WRAPPED_TWINS = frozenset({"extra_refs"})


class ConflictError(ValueError):
    """Two selected axis values replace the same step or action, neither wrapping."""


def origin_name(origin: str) -> str:
    """How a message names an origin: the plug-in file as given, or "built-in"."""
    if origin == "built-in":
        return "built-in"
    from ..plugins import LOADED

    return LOADED[origin]["file"] if origin in LOADED else origin


def axis(name: str, doc: str, source: str, kind: str = "choice",
         options: tuple[str, ...] = (), origin: str = "built-in") -> Axis:
    if name in AXES:
        raise ValueError(f"axis {name!r} is already defined")
    a = Axis(name, doc, source, kind, options=options, origin=origin)
    AXES[name] = a
    return a


def value(axis_name: str, value_name: str, doc: str, source: str = "",
          steps: dict[str, StepFn] | None = None,
          actions: dict[str, ActionBuilder] | None = None, origin: str = "built-in",
          wraps: bool | tuple[str, ...] | frozenset[str] = False,
          symbolic: dict[str, Callable[..., Any]] | None = None) -> AxisValue:
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
    supplied = set(steps or {}) | set(actions or {})
    if wraps is True:
        wrapped = frozenset(supplied)
    elif wraps is False:
        wrapped = frozenset()
    else:
        wrapped = frozenset(wraps)
        unknown = wrapped - supplied
        if unknown:
            raise ValueError(f"value {axis_name}={value_name}: wraps {sorted(unknown)[0]!r}, "
                             "which it does not supply")
    for s in symbolic or {}:
        if s not in (steps or {}):
            raise ValueError(f"value {axis_name}={value_name}: a symbolic twin of step {s!r}, "
                             "which it does not replace")
        if s not in TWINNABLE:
            raise ValueError(f"value {axis_name}={value_name}: step {s!r} cannot take a "
                             f"symbolic twin (only {', '.join(TWINNABLE)})")
        if s in wrapped and s not in WRAPPED_TWINS:
            raise ValueError(f"value {axis_name}={value_name}: a wrapping step ({s!r}) "
                             "cannot take a symbolic twin")
    v = AxisValue(value_name, doc, source, dict(steps or {}), dict(actions or {}), origin,
                  wrapped, axis_name, dict(symbolic or {}))
    a.values[value_name] = v
    return v


def step(name: str, doc: str, origin: str = "built-in") -> Callable[[StepFn], StepFn]:
    """Register the default implementation of a named step."""
    def deco(fn: StepFn) -> StepFn:
        add_step(name, fn, doc, origin)
        return fn
    return deco


def add_step(name: str, fn: StepFn, doc: str, origin: str = "built-in") -> None:
    if not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"step {name!r}: not a valid step name")
    if name in BASE_STEPS:
        who = origin_name(STEP_ORIGIN.get(name, "built-in"))
        raise ValueError(f"step {name!r} is already defined ({who})")
    BASE_STEPS[name] = fn
    STEP_DOCS[name] = doc
    if origin != "built-in":
        STEP_ORIGIN[name] = origin


def action(name: str, origin: str = "built-in") -> Callable[[ActionBuilder], ActionBuilder]:
    """Register the builder of an action (returns None when a design lacks it)."""
    def deco(fn: ActionBuilder) -> ActionBuilder:
        if name in ACTION_BUILDERS:
            raise ValueError(f"action {name!r} is already defined "
                             f"({origin_name(ACTION_ORIGIN.get(name, 'built-in'))})")
        ACTION_BUILDERS[name] = fn
        if origin != "built-in":
            ACTION_ORIGIN[name] = origin
        return fn
    return deco


def wrap_action(name: str, wrapper: Callable[[Any, Any], Any], origin: str) -> None:
    """``wrapper(k, prev)`` builds the action from ``prev``, the one it would otherwise
    be (an :class:`Action` or None), for every design."""
    if name not in ACTION_BUILDERS:
        raise ValueError(f"wraps unknown action {name!r}")
    ACTION_WRAPPERS.setdefault(name, []).append((wrapper, origin))
