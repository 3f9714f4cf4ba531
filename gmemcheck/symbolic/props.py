"""The properties as Z3 predicates, next to their Python predicates in properties/.

A state property is ``fn(sm, s) -> BoolRef``; a step property is
``fn(sm, pre, post, lab) -> BoolRef`` where ``lab.fired(name)`` is the indicator of an
action at that step and ``lab.arg(name, i)`` its i-th argument. A test checks that each
agrees with its Python twin on explored states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from ..model.state import DATA, NPT_HUGE, NPT_NONE, RMP_2M, RMP_4K, RMP_SHARED, STALE
from .steps import at, npos, rpos, site
from .work import VM_PUNCH

HOST_WRITE_CODES = (1, 2, 3)
EAGAIN = -11


@dataclass
class Label:
    names: list[str]
    ind: list[Any]
    args: list[list[Any]]

    def fired(self, name: str) -> Any:
        return self.ind[self.names.index(name)] if name in self.names else z3.BoolVal(False)

    def arg(self, name: str, i: int) -> Any:
        return self.args[self.names.index(name)][i]


@dataclass
class SymProp:
    state: Callable[[Any, Any], Any] | None = None
    step: Callable[[Any, Any, Any, Label], Any] | None = None


def _all(sm: Any, fn: Callable[[int], Any]) -> Any:
    """``fn`` at every page (position; see steps.at); for a window, a site: the page
    that violates it must be represented."""
    site(sm.k)
    return z3.And([fn(p) for p in range(npos(sm.k))])


def _any(sm: Any, fn: Callable[[int], Any]) -> Any:
    site(sm.k)
    return z3.Or([fn(p) for p in range(npos(sm.k))])


def host_write_fault(s: Any) -> Any:
    return z3.Or([s.f_kind == c for c in HOST_WRITE_CODES])


def _prepared(sm: Any) -> Callable[[Any, int], Any]:
    kind = sm.k.axes["preparedness"]
    if kind == "bitmap":
        return lambda s, i: s.prepared[i]
    if kind == "folio-private":
        return lambda s, i: s.private[i]
    return lambda s, i: s.uptodate[i]


def _punch_range(pre: Any, lab: Label) -> tuple[Any, Any, Any]:
    on = z3.And(lab.fired("truncate_inode_pages_range"), pre.vm_op == VM_PUNCH)
    return on, z3.If(on, pre.vm_lo, 0), z3.If(on, pre.vm_hi, 0)


def _region_ok(sm: Any, s: Any) -> Any:
    huge = sm.k.HUGE
    parts = []
    for r in range(sm.k.R):
        span = rpos(sm.k, r)
        site(sm.k, 2)    # a page with a 2M entry and one without
        some = z3.Or([s.rmp[p] == RMP_2M for p in span])
        allp = z3.And([s.rmp[p] == RMP_2M for p in span])
        parts.append(z3.Implies(some, z3.And(allp, s.order[span[0]] >= huge)))
    return z3.And(parts)


def prepared_agrees(sm: Any, s: Any) -> Any:
    prep = _prepared(sm)
    both = sm.k.axes["preparedness"] in ("bitmap", "folio-private")

    def ok(i: int) -> Any:
        assigned = s.rmp[i] != RMP_SHARED
        p = prep(s, i)
        c = z3.Implies(p, assigned)
        if both:
            c = z3.And(c, z3.Implies(assigned, p))
        return z3.Or(s.order[i] < 0, c)

    return _all(sm, ok)


def preserved_on_split(sm: Any, pre: Any, post: Any, lab: Label) -> Any:
    prep = _prepared(sm)
    return _all(sm, lambda i: z3.Not(z3.And(0 <= post.order[i], post.order[i] < pre.order[i],
                                            prep(pre, i) != prep(post, i))))


def no_data_loss(sm: Any, pre: Any, post: Any, lab: Label) -> Any:
    _, lo, hi = _punch_range(pre, lab)
    return _all(sm, lambda i: z3.Not(z3.And(pre.order[i] >= 0, post.order[i] < 0,
                                            pre.content[i] == DATA,
                                            z3.Not(z3.And(lo <= at(sm.k, i),
                                                          at(sm.k, i) < hi)))))


def populate_refuses(sm: Any, pre: Any, post: Any, lab: Label) -> Any:
    if "kvm_gmem_populate" not in lab.names:
        return z3.BoolVal(True)
    g = lab.arg("kvm_gmem_populate", 0)
    same_rmp = _all(sm, lambda i: post.rmp[i] == pre.rmp[i])
    return z3.Implies(z3.And(lab.fired("kvm_gmem_populate"), pre.rmp[g] != RMP_SHARED),
                      z3.And(post.content[g] == pre.content[g], same_rmp, post.f_kind == 0))


def split_failed_dirty(sm: Any, pre: Any, post: Any, lab: Label) -> Any:
    on, lo, hi = _punch_range(pre, lab)
    if sm.k.axes["partial_punch"] != "truncate":
        return z3.BoolVal(False)
    return z3.And(on, _any(sm, lambda i: z3.And(lo <= at(sm.k, i), at(sm.k, i) < hi,
                                                post.order[i] >= 0, pre.dirty[i])))


def split_failed_clean(sm: Any, pre: Any, post: Any, lab: Label) -> Any:
    on, lo, hi = _punch_range(pre, lab)
    return z3.And(on, _any(sm, lambda i: z3.And(pre.order[i] >= 0, post.order[i] < 0,
                                                z3.Not(z3.And(lo <= at(sm.k, i),
                                                              at(sm.k, i) < hi)))))


def psmash_taken(sm: Any, pre: Any, post: Any, lab: Label) -> Any:
    return _any(sm, lambda i: z3.And(pre.rmp[i] == RMP_2M, post.rmp[i] == RMP_4K))


def fallback(sm: Any, pre: Any, post: Any, lab: Label) -> Any:
    if sm.k.axes["allocation"] == "order0":
        return z3.BoolVal(False)
    g = lab.arg("kvm_gmem_get_pfn", 0)
    return z3.And(lab.fired("kvm_gmem_get_pfn"), pre.order[g] < 0, post.order[g] == 0)


SYM: dict[str, SymProp] = {
    "host-never-writes-guest-owned": SymProp(state=lambda sm, s: z3.Not(host_write_fault(s))),
    "punched-private-never-host-written": SymProp(
        state=lambda sm, s: z3.Not(z3.And(host_write_fault(s), s.punched[s.f_pfn]))),
    "freed-pages-are-shared": SymProp(state=lambda sm, s: _all(sm, lambda p: z3.Or(
        s.rmp[p] == RMP_SHARED, s.order[p] >= 0, s.held[p] >= 0, s.leaked[p]))),
    "populate-refuses-prepared": SymProp(step=populate_refuses),
    "no-rmpupdate-overlap": SymProp(state=lambda sm, s: s.f_kind != 4),
    "mapping-implies-page-cache": SymProp(state=lambda sm, s: _all(
        sm, lambda g: z3.Or(s.npt[g] == NPT_NONE, s.order[g] >= 0))),
    "private-mapping-implies-assigned": SymProp(state=lambda sm, s: _all(
        sm, lambda g: z3.Or(s.npt[g] == NPT_NONE, s.rmp[g] != RMP_SHARED))),
    "npt-level-within-rmp-level": SymProp(state=lambda sm, s: _all(
        sm, lambda g: z3.Or(s.npt[g] != NPT_HUGE, s.rmp[g] == RMP_2M))),
    "rmp-2m-well-formed": SymProp(state=_region_ok),
    "preparedness-preserved-on-split": SymProp(step=preserved_on_split),
    "prepared-agrees-with-rmp": SymProp(state=prepared_agrees),
    "zeroed-before-guest-visible": SymProp(state=lambda sm, s: _all(
        sm, lambda g: z3.Or(s.npt[g] == NPT_NONE, s.content[g] != STALE))),
    "no-data-loss-outside-punch": SymProp(step=no_data_loss),
    "reach-split-failed-dirty": SymProp(step=split_failed_dirty),
    "reach-split-failed-clean": SymProp(step=split_failed_clean),
    "reach-rmp-2m-entry": SymProp(state=lambda sm, s: _any(sm, lambda p: s.rmp[p] == RMP_2M)),
    "reach-psmash": SymProp(step=psmash_taken),
    "reach-fallback-order0": SymProp(step=fallback),
    "reach-eagain-refcount": SymProp(state=lambda sm, s: z3.And(s.vm_op == VM_PUNCH,
                                                                s.vm_ret == EAGAIN)),
    "reach-intermediate-order": SymProp(state=lambda sm, s: _any(
        sm, lambda p: z3.And(s.order[p] > 0, s.order[p] < sm.k.HUGE))),
}


def enabled(sm: Any, s: Any, progress_only: bool = True, sample: bool = False) -> Any:
    """Some (non-environment) action is enabled in ``s``: each action's guard with its
    arguments taken from its finite domain. ``sample``: only the instances whose integer
    arguments are all at a region boundary or next to one (0, 1, r*N - 1, r*N, P - 1,
    P), a few dozen at any size; that implies the full disjunction, so a proof with it
    is a proof, and a failure with it proves nothing."""
    parts = []
    k = sm.k
    near = {r * k.N + e for r in range(k.R + 1) for e in (-1, 0, 1)}
    for a, ex in zip(sm.actions, sm.model.actions, strict=True):
        if progress_only and a.environment:
            continue
        dom = ex.domain if sm.k is sm.model.k else _domain(sm, a)
        if sample:
            dom = [args for args in dom
                   if all(isinstance(x, bool) or x in near for x in args)]
        for args in dom:
            zargs = [z3.BoolVal(x) if isinstance(x, bool) else sm.space.val(x) for x in args]
            guard, _ = a.encode(s, zargs)
            parts.append(guard)
    return z3.Or(parts) if parts else z3.BoolVal(False)


def _domain(sm: Any, a: Any) -> list[tuple[Any, ...]]:
    """The argument domain of an action at the symbolic model's own size."""
    from ..model.build import GmemModel

    if "_doms" not in sm._cache:
        import copy

        cfg = copy.deepcopy(sm.model.cfg)
        cfg.bounds = dict(sm.k.bounds)
        sm._cache["_doms"] = {x.name: x.domain for x in GmemModel(cfg).actions}
    return list(sm._cache["_doms"][a.name])


def deadlock_free(sm: Any, s: Any, sample: bool = False) -> Any:
    return z3.Or(s.f_kind != 0, enabled(sm, s, sample=sample))


SYM["no-deadlock"] = SymProp(state=deadlock_free)
_ = (STALE,)


def plugin_form(p: Any) -> SymProp | None:
    """The Z3 form a plug-in property supplies (``Property(..., symbolic=fn)``,
    ``fn(k, s)`` the Z3 Bool of its predicate), or None."""
    fn = getattr(p, "symbolic", None)
    if fn is None or p.step is not None:
        return None
    return SymProp(state=lambda sm, s: fn(sm.k, s))


def sym_prop(p: Any) -> SymProp | None:
    """The Z3 form of property ``p``: the built-in one, or its plug-in's."""
    return SYM.get(p.name) or plugin_form(p)


def table(props: Any) -> dict[str, SymProp]:
    """:data:`SYM` and the plug-in forms of ``props``."""
    out = dict(SYM)
    for p in props:
        f = plugin_form(p) if p.name not in SYM else None
        if f is not None:
            out[p.name] = f
    return out
