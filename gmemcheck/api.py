"""The supported extension API for plug-ins (``--plugin FILE`` or ``plugins = [...]`` in
a preset). A plug-in is an ordinary Python file that imports from this module only.
docs/api.md gives a one-line contract for every name exported here.

What a plug-in can do:

* ``add_value(axis, value, doc, steps={...}, actions={...}, wraps=False)``: a new value
  for an existing choice axis, supplying replacements for named steps (``step_names()``)
  and/or whole actions (``action_names()``). With ``wraps=True`` (or a tuple of names)
  each replacement receives the implementation it replaces: a step as
  ``fn(k, prev, *args)``, an action builder as ``builder(k, prev_action)``;
* ``add_axis(name, doc, values={value: (doc, steps, actions)})``: a new choice axis; a
  preset that does not name it gets its first value;
* ``add_property(name, factory)``: a new property; ``factory(model)`` returns a
  :class:`Property` or None when it does not apply to the model's design;
* ``add_field(name, kind, domain=..., initial=...)``: new state (``page``, ``region``,
  ``scalar`` or ``thread`` field) with its domain, initial value and rendering;
* ``add_thread``, ``add_lock``: a thread with its own program counter, a lock with
  ``w.acquire``/``w.release`` (a lock-order deadlock is found by ``no-deadlock``);
* ``add_action(name, builder)``: a new action (``builder(k)`` returns an :class:`Action`,
  usually made with :func:`make`, or None when the design lacks it); with ``wraps=True``
  the builder extends an existing action in every design;
* ``add_step(name, fn, doc)``: a new named step that axis values may replace;
* ``add_choice(name, values, doc, actions=[...])``: a documented nondeterministic choice
  that steps read with ``w.choose(name)``; it becomes an argument of those actions.

A step function takes the kernel context ``k`` (``k.axes``, ``k.N``, ``k.P``, ``k.snp``
and every other step as ``k.<step>(...)``) and a :class:`Work` (the state being
changed: ``w.get(field)``, ``w.arr(field)`` for a mutable array, ``w.put(field, value)``,
``w.event(text)`` for the trace). It must be deterministic and change only fields that
the calling action ``modifies``; the loader checks both, and that plug-in fields stay in
their domains.

The built-in axis values, fields and actions are registered through the same calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .checker.core import Action, Kind, Outcome, Property
from .model import actions as _actions
from .model import registry as _registry
from .model import state as _state
from .model.actions import (
    FREEING,
    PAGECACHE,
    RMP,
    bools,
    can_fail_huge,
    punch_ranges,
    vmm_in,
)
from .model.gmem import EEXIST, EINVAL, EIO, content_is_stale, huge_attempt
from .model.hugetlb import merge, safe_refcount, unmap_host
from .model.kvm import attrs_mixed, stale_inflight_fault, zap
from .model.mm import (
    EAGAIN,
    ENOMEM,
    buddy_pieces,
    frames_free,
    free_frames,
    held_at,
    put_extra_ref,
    span_at,
    split_to_order0,
    w_state,
)
from .model.registry import Choice, Lock, Thread
from .model.snp import (
    adjust_direct_map,
    fault,
    host_write,
    psmash,
    rmp_make_private,
    rmp_make_shared,
    rmpupdate,
)
from .model.state import (
    CONTENT_NAMES,
    DATA,
    HOST_GUP,
    HOST_MAPPED,
    HOST_NAMES,
    HOST_NONE,
    HOST_PINNED,
    HOST_WRITE_FAULTS,
    NPT_4K,
    NPT_HUGE,
    NPT_NAMES,
    NPT_NONE,
    OP_POPULATE,
    OP_PUNCH,
    PUNCH_BEGUN,
    PUNCH_TRUNCATED,
    PUNCH_UNPREPARED,
    RMP_2M,
    RMP_4K,
    RMP_NAMES,
    RMP_PF,
    RMP_SHARED,
    RMPUPDATE_LIVELOCK,
    STALE,
    TD_POISON,
    USER_RMP_PF,
    ZERO,
    Field,
    GmemState,
    folio_heads,
    folio_span,
    held_span,
)
from .model.work import Work

__all__ = [
    "Action", "CONTENT_NAMES", "Choice", "DATA", "EAGAIN", "EEXIST", "EINVAL", "EIO",
    "ENOMEM", "FREEING", "Field", "GmemState", "HOST_GUP", "HOST_MAPPED", "HOST_NAMES",
    "HOST_NONE", "HOST_PINNED", "HOST_WRITE_FAULTS", "Kind", "Lock", "NPT_4K", "NPT_HUGE",
    "NPT_NAMES", "NPT_NONE", "OP_POPULATE", "OP_PUNCH", "Outcome", "PAGECACHE", "PUNCH_BEGUN",
    "PUNCH_TRUNCATED", "PUNCH_UNPREPARED", "Property", "RMP", "RMPUPDATE_LIVELOCK", "RMP_2M",
    "RMP_4K", "RMP_NAMES", "RMP_PF", "RMP_SHARED", "STALE", "TD_POISON", "Thread",
    "USER_RMP_PF", "Work", "ZERO", "action_names", "add_action", "add_axis", "add_choice",
    "add_field", "add_lock", "add_property", "add_step", "add_thread", "add_value",
    "extend_action", "sym_region", "sym_set", "twinnable_steps", "SYM_NOTHING", "sym_eq",
    "sym_in", "sym_lock_free", "sym_invalidate_lock_exclusive", "sym_put_extra_ref",
    "sym_between", "z3",  # noqa: F822 (z3 comes from the module's __getattr__, lazily)
    "adjust_direct_map", "attrs_mixed", "axis_values", "bools", "buddy_pieces",
    "can_fail_huge", "content_is_stale", "fault", "field_names", "folio_heads",
    "folio_span", "frames_free", "free_frames", "held_at", "held_span", "host_write",
    "huge_attempt", "lock_free", "lock_holder", "make", "merge", "psmash", "punch_ranges",
    "put_extra_ref", "rmp_make_private", "rmp_make_shared", "rmpupdate", "safe_refcount",
    "span_at", "split_to_order0", "stale_inflight_fault", "step_names", "thread_names",
    "unmap_host", "vmm_in", "w_state", "zap",
]

_origin = "built-in"


def __getattr__(name: str) -> Any:
    # ``from gmemcheck.api import z3``: the z3 module for a plug-in's Z3 forms, imported
    # only when a plug-in asks (the explicit engine never loads it)
    if name == "z3":
        import z3

        return z3
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _set_origin(origin: str) -> None:
    global _origin
    _origin = origin


def make(k: Any, name: str, params: tuple[str, ...], domain: Any,
         guard: Callable[[Any, tuple[Any, ...]], bool], body: Callable[..., None],
         modifies: Iterable[str], doc: str, environment: bool = False,
         symbolic: Any = None) -> Action:
    """An action whose ``apply`` runs ``body(k, w, *args)`` on a :class:`Work`;
    ``symbolic`` its Z3 form ``(sym_guard, sym_body)`` (docs/api.md). Never
    memoized (unlike the built-in actions): the memo replays a body's writes on every
    state agreeing on the fields it read, and cannot see what a plug-in's body reads
    outside the state (a closure, a module variable, the state reached another way)."""
    return _actions.make(k, name, params, list(domain), guard, body, frozenset(modifies),
                         doc, environment=environment, symbolic=symbolic, memo=False)


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
              actions: dict[str, Callable[..., Action | None]] | None = None,
              wraps: bool | tuple[str, ...] = False,
              symbolic: dict[str, Callable[..., None]] | None = None) -> None:
    """``symbolic`` maps a replaced step to its Z3 twin (``twinnable_steps()``): the
    symbolic engines then accept the design, after checking automatically that the twin
    and the Python body give the same successors."""
    _registry.value(axis, value, doc, source, steps, actions, origin=_origin,
                    wraps=tuple(wraps) if isinstance(wraps, (list, tuple)) else wraps,
                    symbolic=symbolic)


def twinnable_steps() -> dict[str, str]:
    """The steps a plug-in may give a symbolic twin, with the twin's signature."""
    return dict(_registry.TWINNABLE)


def sym_set(w: Any, field: str, conds: list[Any], value: Any) -> None:
    """In a symbolic twin: ``field[p] := value`` for every page position ``p`` where
    ``conds[p]`` (a Z3 Bool) and the current path condition hold."""
    from .symbolic.steps import assign, masked

    assign(w, field, masked(w, conds), value)


def sym_region(k: Any, p: int) -> int:
    """In a symbolic twin: the huge region of page position ``p``."""
    from .symbolic.steps import rnum

    return rnum(k, p)


def _space(x: Any) -> Any:
    sp = getattr(x, "space", None) or getattr(x, "sp", None)
    if sp is None:
        raise TypeError("expected a symbolic state or a symbolic work")
    return sp


def _enc(x: Any, field: str, value: Any) -> Any:
    import z3

    for c in _space(x).extra:
        if c.name == field:
            value = c.enc(value)
            break
    return z3.BoolVal(value) if isinstance(value, bool) else value


def sym_eq(x: Any, field: str, value: Any) -> Any:
    """In a Z3 form: the Z3 Bool ``x.field == value``, ``x`` a symbolic state (guard,
    property) or work (body); a plug-in field's domain value (a pc name, a lock holder)
    is encoded as the field is (by its index in the domain)."""
    return getattr(x, field) == _enc(x, field, value)


def sym_in(x: Any, field: str, values: Iterable[Any]) -> Any:
    """In a Z3 form: ``x.field`` is one of ``values``."""
    import z3

    return z3.Or([sym_eq(x, field, v) for v in values])


def sym_lock_free(x: Any, name: str) -> Any:
    """In a Z3 form: lock ``name`` is free (the Z3 form of :func:`lock_free`)."""
    return sym_eq(x, _registry.LOCKS[name].field, "")


def sym_invalidate_lock_exclusive(x: Any) -> Any:
    """In a Z3 form: ``filemap_invalidate_lock`` is held for write by the VMM thread
    (the Z3 form of ``k.invalidate_lock_exclusive(s)``: a punch or a populate runs)."""
    from .symbolic.actions import lock_exclusive

    return lock_exclusive(x)


def sym_put_extra_ref(k: Any, w: Any, pfn: Any) -> None:
    """In a Z3 body: :func:`put_extra_ref` (a removed folio nobody references any more
    is freed)."""
    from .symbolic.steps import put_extra_ref as _put

    _put(k, w, pfn)


def sym_between(lo: Any, x: Any, hi: Any) -> Any:
    """In a Z3 form: ``lo <= x < hi`` (the built-in twins' symbolic/steps.py:between)."""
    from .symbolic.steps import between

    return between(lo, x, hi)


def add_axis(name: str, doc: str, values: dict[str, tuple[Any, ...]], source: str = ""
             ) -> None:
    """``values`` maps each value to ``(doc, steps, actions)``, ``(doc, steps, actions,
    wraps)`` or ``(doc, steps, actions, wraps, symbolic)`` (as in :func:`add_value`)."""
    if not values:
        raise ValueError(f"axis {name!r} needs at least one value")
    _registry.axis(name, doc, source, origin=_origin)
    for v, spec in values.items():
        if not isinstance(spec, tuple) or len(spec) not in (3, 4, 5):
            raise ValueError(f"axis {name!r} value {v!r}: expected (doc, steps, actions"
                             "[, wraps[, symbolic]])")
        vdoc, steps, actions = spec[:3]
        wraps = spec[3] if len(spec) >= 4 else False
        symbolic = spec[4] if len(spec) == 5 else None
        _registry.value(name, v, vdoc, "", steps, actions, origin=_origin,
                        wraps=tuple(wraps) if isinstance(wraps, (list, tuple)) else wraps,
                        symbolic=symbolic)


def add_property(name: str, factory: Callable[[Any], Property | None]) -> None:
    from . import properties

    properties.register(name, factory, _origin)


# ---------------------------------------------------------------- new state
def add_field(name: str, kind: str, *, domain: tuple[Any, ...], initial: Any, doc: str = "",
              render: Callable[[Any, Any], dict[str, str]] | None = None, thread: str = "",
              sort: str | None = None) -> Field:
    """Declare a state field. ``kind``: ``page`` (one value per page index, a tuple),
    ``region`` (one per huge region), ``scalar``, or ``thread`` (a scalar of the thread
    named by ``thread``). ``domain``: the values one element may take (initial among
    them); ``render(k, s)``: the items a text trace shows (default ``name`` /
    ``name[i]``); ``sort``: its Z3 sort (``bool``/``int``) for a symbolic twin. The
    field's name is its ITF variable name."""
    if kind == "thread" and thread and thread not in _registry.THREADS:
        raise ValueError(f"field {name!r}: unknown thread {thread!r}")
    return _state.declare(Field(name, kind, initial, domain, doc, render, thread=thread,
                                sort=sort, origin=_origin))


def field_names() -> list[str]:
    return list(_state.DECLARED)


def add_thread(name: str, doc: str, pcs: tuple[str, ...], pc: str = "") -> Thread:
    """A thread with its own program counter: the ``thread`` field ``pc`` (default
    ``<name>_pc``) over ``pcs``, starting at ``pcs[0]``. Its actions (``add_action``)
    read and set it; pc names should say what the thread holds and waits for, since a
    deadlock trace shows them."""
    if not name.isidentifier():
        raise ValueError(f"thread {name!r}: not a valid name")
    if name in _registry.THREADS:
        raise ValueError(f"thread {name!r} already exists")
    pcf = pc or f"{name}_pc"
    if not isinstance(pcs, tuple) or not pcs or not all(isinstance(p, str) for p in pcs):
        raise ValueError(f"thread {name!r}: bad domain {pcs!r} for its program counter (a "
                         "non-empty tuple of names)")
    t = Thread(name, doc, pcf, _origin)
    _registry.THREADS[name] = t
    try:
        _state.declare(Field(pcf, "thread", pcs[0], pcs, f"program counter of {name}",
                             lambda k, s: {f"thread {name}": getattr(s, pcf)}, thread=name,
                             origin=_origin))
    except ValueError:
        del _registry.THREADS[name]
        raise
    return t


def thread_names() -> list[str]:
    return list(_registry.THREADS)


def add_lock(name: str, doc: str) -> Lock:
    """A lock held by at most one thread: the scalar field ``lock_<name>`` holds the
    holder's thread name, or "" when it is free. Take it with ``w.acquire(name,
    thread)`` in an action whose guard requires ``lock_free(s, name)``; a thread whose
    guard waits for a held lock is blocked, which ``no-deadlock`` sees."""
    if not name.isidentifier():
        raise ValueError(f"lock {name!r}: not a valid name")
    if name in _registry.LOCKS:
        raise ValueError(f"lock {name!r} already exists")
    f = f"lock_{name}"
    lk = Lock(name, doc, f, _origin)
    _registry.LOCKS[name] = lk
    try:
        _state.declare(Field(
            f, "scalar", "", lambda k: ("", *_registry.THREADS), f"holder of lock {name}",
            lambda k, s: {f"lock {name}": f"held by {getattr(s, f)}" if getattr(s, f)
                          else "free"}, origin=_origin))
    except ValueError:
        del _registry.LOCKS[name]
        raise
    return lk


def lock_holder(s: Any, name: str) -> str:
    return str(getattr(s, _registry.LOCKS[name].field))


def lock_free(s: Any, name: str) -> bool:
    return not getattr(s, _registry.LOCKS[name].field)


# ---------------------------------------------------------------- new behaviour
def add_action(name: str, builder: Callable[..., Action | None], *, thread: str = "",
               wraps: bool = False) -> None:
    """A new action ``name`` (``builder(k)`` returns an :class:`Action` named ``name``,
    or None for a design without it), of thread ``thread`` (documentation; an
    ``environment=True`` action does not count as progress for ``no-deadlock``). With
    ``wraps=True``, ``name`` is an existing action and ``builder(k, prev)`` extends it
    (``prev`` is the action otherwise built, or None) in every design."""
    if thread and thread not in _registry.THREADS:
        raise ValueError(f"action {name!r}: unknown thread {thread!r}")
    if wraps:
        _registry.wrap_action(name, builder, _origin)
        return
    if name in _registry.ACTION_BUILDERS:
        raise ValueError(f"action {name!r} already exists: replace it with add_value(..., "
                         "actions=...) or extend it with add_action(..., wraps=True)")
    if not name.isidentifier():
        raise ValueError(f"action {name!r}: not a valid name")

    origin = _origin

    def checked(k: Any) -> Action | None:
        a = builder(k)
        if a is not None and a.name != name:
            raise _registry.ConflictError(f"action {name!r} ({_registry.origin_name(origin)}): "
                                          f"its builder made an action named {a.name!r}")
        return a

    _registry.action(name, _origin)(checked)


def add_step(name: str, fn: Callable[..., Any], doc: str) -> None:
    """A new named step (default implementation ``fn(k, ...)``), callable as
    ``k.<name>(...)`` and replaceable by axis values like the built-in ones."""
    _registry.add_step(name, fn, doc, _origin)


def add_choice(name: str, values: Iterable[Any], doc: str, actions: Iterable[str],
               when: Callable[[Any], bool] | None = None) -> Choice:
    """A documented nondeterministic choice: each action in ``actions`` gets one more
    argument ``name`` ranging over ``values`` (the first is the ordinary outcome), in
    the designs where ``when(k)`` is true (all designs without ``when``); any step the
    action runs reads the outcome with ``w.choose(name)``."""
    vals = tuple(values)
    acts = tuple(actions)
    if not name.isidentifier():
        raise ValueError(f"choice {name!r}: not a valid name")
    if name in _registry.CHOICES:
        raise ValueError(f"choice {name!r} already exists")
    if len(vals) < 2 or len(set(vals)) != len(vals) or not all(_state.itf_value(v)
                                                                for v in vals):
        raise ValueError(f"choice {name!r}: bad domain {vals!r} (two or more distinct "
                         "bool, int or str values)")
    for a in acts:
        if a not in _registry.ACTION_BUILDERS:
            raise ValueError(f"choice {name!r}: unknown action {a!r}")
    if not acts:
        raise ValueError(f"choice {name!r}: names no action")
    c = Choice(name, vals, doc, acts, _origin, when)
    _registry.CHOICES[name] = c
    return c


class _SymNothing:
    """The Z3 form of an extension part that only records trace events (``w.event``)
    and changes no state."""

    def __repr__(self) -> str:
        return "SYM_NOTHING"


SYM_NOTHING = _SymNothing()


def extend_action(k: Any, prev: Action, *, guard: Callable[[Any, tuple[Any, ...]], bool]
                  | None = None, before: Callable[..., None] | None = None,
                  after: Callable[..., None] | None = None,
                  modifies: Iterable[str] = (), sym_guard: Callable[..., Any] | None = None,
                  sym_before: Any = None, sym_after: Any = None) -> Action:
    """``prev`` (an action being wrapped, see ``add_action(..., wraps=True)``) with an
    extra guard conjunct and/or a body run ``before`` or ``after`` it (each
    ``body(k, w, *args)`` on a :class:`Work`), its ``modifies`` grown by ``modifies``.
    The label, arguments and the rest of ``prev`` are unchanged, so traces replay.
    ``sym_guard(k, s, *args)`` (a Z3 Bool), ``sym_before``/``sym_after`` (``body(k, w,
    *args)`` on a symbolic work, or :data:`SYM_NOTHING`) are the Z3 forms of the parts
    given; with one for each part, the symbolic engines accept the extended action."""
    for part, what in ((sym_before, "sym_before"), (sym_after, "sym_after")):
        if part is not None and part is not SYM_NOTHING and not callable(part):
            raise ValueError(f"extend_action({prev.name}): {what} must be a function or "
                             "SYM_NOTHING")
    if sym_guard is SYM_NOTHING:
        raise ValueError(f"extend_action({prev.name}): sym_guard cannot be SYM_NOTHING "
                         "(a guard changes which steps are enabled)")
    complete = ((guard is None or sym_guard is not None)
                and (before is None or sym_before is not None)
                and (after is None or sym_after is not None))
    ext = (sym_guard, None if sym_before is SYM_NOTHING else sym_before,
           None if sym_after is SYM_NOTHING else sym_after, complete)
    g0, ap0, ex0 = prev.guard, prev.apply, prev.explain

    def g(s: Any, a: tuple[Any, ...]) -> bool:
        return g0(s, a) and (guard is None or guard(s, a))

    def run(body: Callable[..., None], s: Any, a: tuple[Any, ...], log: bool
            ) -> tuple[Any, list[str]]:
        w = Work(s, log=log)
        body(k, w, *a)
        return w.done(), list(w.log or ())

    def apply(s: Any, a: tuple[Any, ...]) -> Any:
        if before is not None:
            s = run(before, s, a, False)[0]
        t = ap0(s, a)
        if after is not None:
            t = run(after, t, a, False)[0]
        return t

    def explain(s: Any, a: tuple[Any, ...]) -> Outcome:
        events: list[str] = []
        if before is not None:
            s, ev = run(before, s, a, True)
            events += ev
        o = ex0(s, a) if ex0 is not None else Outcome()
        events += list(o.events)
        if after is not None:
            t = ap0(s, a)
            events += run(after, t, a, True)[1]
        return Outcome(o.ret, tuple(events))

    return Action(prev.name, prev.params, prev.domain, g, apply,
                  prev.modifies | frozenset(modifies), prev.doc, explain=explain,
                  environment=prev.environment, symbolic=prev.symbolic,
                  extensions=prev.extensions + (ext,), choices=prev.choices)
