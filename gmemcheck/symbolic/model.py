"""The symbolic model of one design: a space, the encoded actions, and the helpers the
engines and the agreement tests need (initial state, successors of a concrete state,
the transition relation between two symbolic states with one indicator per action)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3
import z3.z3core as z3core
from z3.z3 import _to_expr_ref as _to_expr

from ..checker.core import Step as TraceStep
from ..checker.core import Trace
from ..model.state import GmemState
from . import actions as sa
from .encode import canonical, decode, equals, scalars_of, state_of
from .space import (
    PAGE_FIELDS,
    REGION_FIELDS,
    SymState,
    Unrolled,
    Window,
    bv_width,
    is_value,
    num,
    value_of,
)
from .steps import unsupported


class NoEncoding(Exception):
    """The design (or a plug-in it uses) has no Z3 encoding."""


@dataclass
class Step:
    """The symbolic step between states i and i+1: an indicator and argument variables
    per action."""

    ind: list[Any]
    args: list[list[Any]]


class SymModel:
    def __init__(self, model: Any, pages_per_huge: int | None = None,
                 regions: int | None = None, bv: bool = False,
                 window: int | None = None) -> None:
        """``bv``: integers are signed bit-vectors wide enough for every value at this
        size (:func:`.space.bv_width`), so that the queries are pure bit-vector and
        Boolean ones, which Z3 bit-blasts to SAT (QF_FD); else mathematical integers.
        ``window``: keep only that many representative pages per huge region
        (:class:`.space.Window`, integers as ``bv`` says): the formulas' size no longer
        depends on ``pages_per_huge``."""
        why = unsupported(model.k)
        if why:
            raise NoEncoding(why)
        gaps = getattr(model, "symbolic_gaps", None)
        if gaps:
            raise NoEncoding(f"{gaps[0]} and has no Z3 encoding")
        from .twins import check_twins, needs_check

        if needs_check(model):
            check_twins(model)  # fails loudly (TwinMismatch) on any disagreement
        self.model = model
        from ..model.kernel import Kernel

        b = dict(model.cfg.bounds)
        if pages_per_huge is not None:
            b["pages_per_huge"] = pages_per_huge
        if regions is not None:
            b["regions"] = regions
        self.window = window
        if window is None:
            self.k = Kernel(model.cfg.axes, b) if b != model.cfg.bounds else model.k
            self.space: Unrolled | Window = Unrolled(self.k.N, self.k.R, bv)
        else:
            self.k = Kernel(model.cfg.axes, b)
            if not 2 <= window <= self.k.N:
                raise ValueError(f"window of {window} pages: needs 2 <= window <= "
                                 f"pages_per_huge ({self.k.N})")
            self.space = Window(self.k.N, self.k.R, window, bv_width(self.k.P) if bv else None)
            self.k.win = self.space
        from .extra import codecs

        self.space.extra = tuple(codecs(model, self.k))
        self.bv = bv
        try:
            self.actions = sa.build(self.k, model)
        except KeyError as e:
            raise NoEncoding(str(e).strip("'")) from None
        self._cache: dict[str, Any] = {}

    @property
    def P(self) -> int:
        return self.k.P

    def fresh(self, tag: str) -> SymState:
        return SymState.fresh(self.space, tag)

    def init_constraint(self, s: SymState) -> Any:
        from ..model.state import initial_state

        # the initial state is the same at every page, so a window's positions take it
        base = initial_state(self.space.n, self.k.R, launched=False)
        extra = getattr(self.model, "extra_fields", ())
        if extra:
            base = self.model.state_type(*base, *[f.initial_value(self.space.n, self.k.R)
                                                  for f in extra])
        return equals(s, base)

    def canonical(self, s: SymState) -> Any:
        return canonical(s)

    def decode(self, m: z3.ModelRef, s: SymState) -> GmemState:
        if self.window is not None and self.window < self.k.N:
            raise ValueError("a state over representative pages is not a concrete state")
        return decode(m, s, self.k.P, self.k.R, getattr(self.model, "state_type", None))

    # ---------------------------------------------------------------- relation
    def step(self, pre: SymState, post: SymState, tag: str) -> tuple[Any, Step]:
        """Exactly one action fires between ``pre`` and ``post``."""
        rels, st = self.step_per_action(pre, post, tag)
        return z3.Or(rels), st

    def step_per_action(self, pre: SymState, post: SymState, tag: str
                        ) -> tuple[list[Any], Step]:
        """The same relation split by the action that fires: one formula per action,
        in which that action's indicator holds and every other one is false (their
        disjunction is :meth:`step`). The engines ask one query per action, each far
        easier for the solver than the disjunction."""
        inds = [z3.Bool(f"{tag}.fire.{a.name}") for a in self.actions]
        all_args = [a.arg_vars(tag, self.space) for a in self.actions]
        rels = []
        for i, a in enumerate(self.actions):
            rels.append(z3.And([inds[i], a.domain(self.k, all_args[i]),
                                sa.transition(a, pre, post, all_args[i])]
                               + [z3.Not(b) for j, b in enumerate(inds) if j != i]))
        return rels, Step(inds, all_args)

    def decode_path(self, m: z3.ModelRef, states: list[SymState], steps: list[Step],
                    exp_model: Any, origin: str = "init") -> Trace:
        """The path ``states`` / ``steps`` of a solver model as an explicit trace, with
        each step's outcome explained by ``exp_model`` (the explicit model at this
        size)."""
        dec = [self.decode(m, s) for s in states]    # each state once
        acts = {a.name: a for a in exp_model.actions}
        out = []
        for i, st in enumerate(steps):
            name, args = self.decode_step(m, st)
            a = acts[name]
            pre, post = dec[i], dec[i + 1]
            out.append(TraceStep(name, args, post, a.explain(pre, args) if a.explain else None))
        return Trace(dec[0], tuple(out), origin=origin)

    def decode_step(self, m: z3.ModelRef, st: Step) -> tuple[str, tuple[Any, ...]]:
        for a, b, args in zip(self.actions, st.ind, st.args, strict=True):
            if z3.is_true(m.eval(b, model_completion=True)):
                vals = []
                for v in args:
                    x = m.eval(v, model_completion=True)
                    vals.append(value_of(x))
                return a.name, tuple(vals)
        raise AssertionError("no action fired in the model")

    # ---------------------------------------------------------------- successors
    def _effects(self, a: sa.SymAction) -> tuple[SymState, list[Any], Any, SymState]:
        if a.name not in self._cache:
            pre = self.fresh("pre")
            args = a.arg_vars("arg", self.space)
            guard, eff = a.encode(pre, args)
            self._cache[a.name] = (pre, args, guard, eff)
        return self._cache[a.name]

    def successors(self, s: GmemState, only: set[str] | None = None
                   ) -> set[tuple[str, tuple[Any, ...], GmemState]]:
        """Every (action, args, successor) the encoding allows from the concrete state
        ``s``, by evaluating the encoded guard and effect (frame from ``modifies``);
        ``only``: of the actions with these names."""
        out = set()
        for a, ex in zip(self.actions, self.model.actions, strict=True):
            if only is not None and a.name not in only:
                continue
            pre, argv, guard, eff = self._effects(a)
            base = _bindings(pre, s)
            if self.window is not None:
                # every page represented (window == pages_per_huge): offsets 0..N-1
                assert self.window == self.k.N, "successors need every page represented"
                base += [(o, num(i, o)) for offs in self.space.off for i, o in enumerate(offs)
                         if i > 0]
            mod = sa.sym_fields(a.modifies)
            known = {x.get_id(): value_of(v) for x, v in base}
            for args in ex.domain:
                subst = base + [(v, z3.BoolVal(x) if isinstance(x, bool) else num(x, v))
                                for v, x in zip(argv, args, strict=True)]
                sub = _substituter(subst)
                dom = z3.simplify(sub(a.domain(self.k, argv)))
                if not z3.is_true(dom):
                    continue
                g = z3.simplify(sub(guard))
                if not z3.is_true(g):
                    assert z3.is_false(g), f"{a.name}{args}: guard not ground: {g}"
                    continue
                vals: dict[str, Any] = {}
                for name, val in eff.f.items():
                    if name in mod:
                        vals[name] = _ground(val, sub, name)
                    else:   # the frame: the value in ``s``
                        x = pre.f[name]
                        vals[name] = [known[e.get_id()] for e in x.items] \
                            if hasattr(x, "items") else known[x.get_id()]
                out.add((a.name, args, state_of(vals, self.space.extra,
                                                getattr(self.model, "state_type", None))))
        return out


def _bindings(sym: SymState, s: GmemState) -> list[tuple[Any, Any]]:
    pairs: list[tuple[Any, Any]] = []
    for name, sort in PAGE_FIELDS.items():
        for i, v in enumerate(getattr(s, name)):
            x = sym.f[name][i]
            pairs.append((x, z3.BoolVal(v) if sort == "bool" else num(v, x)))
    for name in REGION_FIELDS:
        for i, v in enumerate(getattr(s, name)):
            pairs.append((sym.f[name][i], z3.BoolVal(v)))
    for name, v in scalars_of(s).items():
        x = sym.f[name]
        pairs.append((x, z3.BoolVal(v) if isinstance(v, bool) else num(v, x)))
    for c in sym.space.extra:
        v = getattr(s, c.name)
        if c.scope in ("page", "region"):
            items = list(zip(sym.f[c.name].items, v, strict=True))
        else:
            items = [(sym.f[c.name], v)]
        for x, e in items:
            pairs.append((x, z3.BoolVal(e) if c.sort == "bool" else num(c.enc(e), x)))
    return pairs


def _substituter(subst: list[tuple[Any, Any]]) -> Any:
    """``e -> z3.substitute(e, *subst)``, with the pairs converted once: the z3 wrapper
    re-checks every pair's sorts on each call, which dominated the agreement checks."""
    if not subst:
        return lambda e: e
    ctx = subst[0][0].ctx
    n = len(subst)
    frm = (z3.Ast * n)()
    to = (z3.Ast * n)()
    for i, (a, b) in enumerate(subst):
        frm[i] = a.as_ast()
        to[i] = b.as_ast()

    def sub(e: Any) -> Any:
        return _to_expr(z3core.Z3_substitute(ctx.ref(), e.as_ast(), n, frm, to), ctx)

    return sub


def _ground(val: Any, sub: Any, name: str) -> Any:
    def one(e: Any) -> Any:
        x = z3.simplify(sub(e)) if isinstance(e, z3.ExprRef) else e
        if isinstance(x, bool | int):
            return x
        if z3.is_true(x) or z3.is_false(x) or is_value(x):
            return value_of(x)
        raise AssertionError(f"field {name}: effect not ground: {x}")

    if hasattr(val, "items"):
        return [one(e) for e in val.items]
    return one(val)
