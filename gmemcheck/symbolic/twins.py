"""The successor-agreement check for plug-in symbolic twins.

A plug-in value may give a replaced step a Z3 twin (``add_value(..., symbolic={...})``,
:data:`gmemcheck.model.registry.TWINNABLE`). The built-in encodings are bound to their
Python bodies by the agreement tests (tests/test_symbolic.py); a plug-in's twin is bound
here, automatically, before any symbolic verdict on a design that uses one: for every
action whose encoding calls a twin, the explicit successors and the Z3 successors must
be the same sets on a breadth-first sample of the states where it is enabled, at the
preset's size and at 4 pages x 2 regions. A disagreement is a
:class:`TwinMismatch`: one line naming the plug-in, the step and the first differing
successor; no verdict is given.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from ..checker.core import changed_fields
from ..plugins import PluginError, used_by

# designs (axes and plug-ins, any size) whose twins agreed in this process
_CHECKED: set[str] = set()


class TwinMismatch(PluginError):
    """A plug-in's symbolic twin disagrees with its Python body."""


def _key(model: Any) -> str:
    ident = dict(model.identity())
    ident.pop("bounds", None)
    ident.pop("preset", None)
    return json.dumps(ident, sort_keys=True, default=str)


def _label(name: str, args: tuple[Any, ...]) -> str:
    return f"{name}{args!r}" if args else f"{name}()"


def _using(sm: Any) -> set[str]:
    """The encoded actions of ``sm`` whose formulas call a plug-in twin."""
    k = sm.k
    twins = dict(k.sym_twins)
    hit: set[str] = set()
    current: list[str] = []

    def recorder(fn: Any) -> Any:
        def rec(*a: Any, **kw: Any) -> Any:
            hit.add(current[0])
            return fn(*a, **kw)
        return rec

    k.sym_twins = {n: recorder(f) for n, f in twins.items()}
    try:
        for a in sm.actions:
            current[:] = [a.name]
            sm._cache.pop(a.name, None)
            sm._effects(a)
    finally:
        k.sym_twins = twins
        for a in sm.actions:
            sm._cache.pop(a.name, None)
    return hit


def plugin_forms(model: Any) -> tuple[set[str], list[Any]]:
    """The actions of ``model`` with a plug-in's Z3 form (a new action's, an extension's
    or a choice's) and the plug-in properties with one."""
    from .. import properties

    acts = {a.name for a in model.actions
            if a.symbolic is not None or a.extensions
            or any(c.origin != "built-in" for c in a.choices)}
    props = [p for p in properties.for_model(model) if getattr(p, "symbolic", None)]
    return acts, props


def needs_check(model: Any) -> bool:
    acts, props = plugin_forms(model)
    return bool(getattr(model.k, "sym_twins", None) or acts or props)


def check_twins(model: Any, per_size: int = 40, explore: int = 3000) -> int:
    """Compare, on a breadth-first sample of the design's states, the explicit and the
    Z3 successors of every action whose encoding calls a plug-in twin (the other
    actions' encodings are the built-in ones, bound by the test suite), taking the
    states where such an action is enabled among the first ``explore`` states
    (``per_size`` of them at the preset's size, a quarter of that at 4 pages x 2
    regions), evenly spread so that deeper states are included. Return how many
    states were compared (0 when this design was already checked in this process)."""
    key = _key(model)
    if key in _CHECKED:
        return 0
    from ..checker.explicit import successors
    from ..model.build import resized
    from .model import SymModel

    _CHECKED.add(key)  # SymModel below must not check again
    n = 0
    try:
        for bounds in ({}, {"pages_per_huge": 4, "regions": 2}):
            base = dict(model.cfg.bounds)
            size = dict(base, **bounds) if bounds else (
                base if base["pages_per_huge"] * base["regions"] <= 8
                else {"pages_per_huge": 2, "regions": 1})
            m = resized(model, **size)
            sm = SymModel(m)
            forms, props = plugin_forms(m)
            only = _using(sm) | forms
            # a breadth-first sample of the states, then the ones where an action
            # using a twin is enabled, evenly spread (deeper states included)
            init = list(m.init_states())
            seen = set(init)
            order: list[tuple[Any, tuple[str, ...], set[Any]]] = []
            dq: deque[tuple[Any, tuple[str, ...]]] = deque((s, ()) for s in init)
            visited: list[tuple[Any, tuple[str, ...]]] = []
            while dq and len(seen) < explore:
                s, path = dq.popleft()
                visited.append((s, path))
                exp_all = set() if m.terminal(s) else set(successors(m, s))
                exp = {x for x in exp_all if x[0] in only}
                # a plug-in's guard form must also agree where its action is disabled
                if exp or (forms and not m.terminal(s)):
                    order.append((s, path, exp))
                for name, args, t in sorted(exp_all, key=lambda x: (x[0], repr(x[1]))):
                    if t not in seen:
                        seen.add(t)
                        dq.append((t, path + (_label(name, args),)))
            want = per_size if not bounds else max(1, per_size // 4)
            step = max(1, len(order) // want)
            for s, path, exp in order[::step][:want] + order[-1:]:
                sym = sm.successors(s, only)
                n += 1
                if exp != sym:
                    raise TwinMismatch(_explain(model, m, path, exp, sym, forms))
            if props:
                pstep = max(1, len(visited) // (4 * want))
                for s, path in visited[::pstep] + visited[-1:]:
                    n += 1
                    for p in props:
                        _check_prop(model, m, sm, p, s, path)
    except BaseException:
        _CHECKED.discard(key)
        raise
    return n


def _who(model: Any) -> str:
    return ", ".join(i["file"] for i in used_by(model.cfg.axes)) or "a plug-in"


def _check_prop(model: Any, m: Any, sm: Any, p: Any, s: Any, path: tuple[str, ...]
                ) -> None:
    """The plug-in property's Z3 form and its Python predicate agree on ``s``."""
    import z3

    from .model import _bindings, _substituter

    if m.terminal(s) and p.kind.value != "safety":
        return
    pre = sm.fresh("prop")
    form = p.symbolic(sm.k, pre)
    z = z3.simplify(_substituter(_bindings(pre, s))(form))
    py = bool(p.predicate(s))
    if not (z3.is_true(z) or z3.is_false(z)) or z3.is_true(z) != py:
        where = " -> ".join(path) if path else "the initial state"
        zs = "true" if z3.is_true(z) else "false" if z3.is_false(z) else f"not ground ({z})"
        raise TwinMismatch(
            f"plugin {_who(model)}: the symbolic form of property {p.name} disagrees with "
            f"its Python predicate (pages_per_huge={m.k.N}, regions={m.k.R}, after "
            f"{where}): Python {str(py).lower()}, Z3 {zs}")


def _explain(model: Any, m: Any, path: tuple[str, ...], exp: set[Any], sym: set[Any],
             forms: set[str] = frozenset()) -> str:
    who = _who(model)
    steps = ", ".join(sorted(model.k.sym_twins))
    e = {(a, args): t for a, args, t in exp}
    z = {(a, args): t for a, args, t in sym}
    where = " -> ".join(path) if path else "the initial state"
    size = f"pages_per_huge={m.k.N}, regions={m.k.R}"
    for lab in sorted(set(e) | set(z), key=repr):
        if lab not in z:
            diff = "enabled in the Python model only"
        elif lab not in e:
            diff = "enabled in the Z3 form only"
        elif e[lab] != z[lab]:
            diff = "successors differ in " + ", ".join(sorted(changed_fields(e[lab], z[lab])))
        else:
            continue
        what = (f"the symbolic form of action {lab[0]} disagrees with its Python body"
                if lab[0] in forms or not steps else
                f"the symbolic twin of {steps} disagrees with its Python body")
        return f"plugin {who}: {what} ({size}, after {where}): {_label(*lab)} {diff}"
    return f"plugin {who}: the symbolic twin of {steps} disagrees with its Python body"
