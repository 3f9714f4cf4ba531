"""The model's steps as Z3 formulas: the symbolic twin of model/mm.py, snp.py, gmem.py,
kvm.py and hugetlb.py, function for function and in the same program order.

Pages are unrolled (the number of pages is a Python int); indices taken from the state
or the action's arguments are Z3 terms. A loop ``for p in range(lo, hi)`` of the
explicit code becomes a loop over every page under the mask ``lo <= p < hi``; a loop
whose stride depends on the state (sev_gmem_invalidate) is emulated with a visited
flag. Folio orders are 0 or the huge order, except in a design that splits huge folios
non-uniformly (:func:`mid`: 6.15+ truncate on THP folios of 4 pages or more), where a
folio of order j is the aligned block of 2**j pages holding its pages and each order
from 0 to huge is a case (:func:`head_of`, :func:`split_folio_buddy`,
:func:`select_folios_mid`); the window encoding and in-place conversion do not
represent those (:func:`mid_unsupported`).

The agreement tests (tests/test_symbolic.py) check, on reachable and random states, that
the successors computed here are exactly the explicit ones.
"""

from __future__ import annotations

from typing import Any

import z3
from z3 import z3core

from ..model.hugetlb import restructures
from ..model.mm import intermediate_orders
from ..model.state import (
    DATA,
    HOST_GUP,
    HOST_MAPPED,
    HOST_NONE,
    HOST_PINNED,
    NPT_HUGE,
    NPT_NONE,
    RMP_2M,
    RMP_4K,
    RMP_SHARED,
    STALE,
    ZERO,
)
from .space import num
from .work import PC_CODES, SW, VM_POPULATE, VM_PUNCH

EAGAIN, ENOMEM, EEXIST, EINVAL, EIO = -11, -12, -17, -22, -5

# steps replaced by a plug-in, or axis values, that have no encoding here
SUPPORTED_STEPS = {
    "filemap_add_folio", "filemap_remove_folio", "split_folio", "truncate_inode_partial_folio",
    "truncate_inode_pages_range", "host_write", "kvm_arch_gmem_prepare",
    "rmp_make_shared_failed", "kvm_arch_gmem_invalidate", "kvm_gmem_get_folio",
    "kvm_gmem_is_prepared", "kvm_gmem_mark_prepared", "kvm_gmem_mark_range_unprepared",
    "kvm_gmem_prepare_folio", "kvm_gmem_free_folio", "sev_gmem_post_populate", "unmap_host",
    "merge_truncate_range",
}


def unsupported(k: Any) -> str | None:
    """Why this design has no Z3 encoding, or None."""
    for name, origin in k.step_origin.items():
        if origin != "base" and "=" in origin:
            axis, value = origin.split("=", 1)
            from ..model.registry import AXES

            v = AXES[axis].values[value]
            if v.origin != "built-in" and name not in v.symbolic:
                return (f"step {name} comes from a plug-in ({axis}={value}) and has no Z3 "
                        "encoding: the symbolic engines cannot be used for this preset")
    from ..model.registry import AXES

    for name, a in AXES.items():
        # a plug-in axis is encoded like a built-in one: through its selected value
        if a.kind == "choice":
            v = a.values[k.axes[name]]
            twinned = v.origin != "built-in" and not v.actions and set(v.steps) <= set(
                v.symbolic)
            if (v.origin != "built-in" or v.actions) and not twinned:
                return f"{name}={k.axes[name]} comes from a plug-in and has no Z3 encoding"
    return mid_unsupported(k)


def mid_unsupported(k: Any) -> str | None:
    """Why a design with folios of intermediate order (:func:`mid`) has no encoding at
    this size and space, or None."""
    if not mid(k):
        return None
    if win(k) is not None:
        return ("truncate=nonuniform leaves folios of intermediate order, which the window "
                "encoding (representative pages) does not represent: every page only")
    if k.axes["conversion"] == "in-place":
        return ("truncate=nonuniform leaves folios of intermediate order, which the Z3 "
                "encoding of conversion=in-place does not represent")
    return None


# ------------------------------------------------------------------ fast term building
# The z3 Python wrappers coerce and sort-check every argument, which costs several times
# the term itself; the per-page loops below build P-sized arrays with the C API
# directly (same terms: Z3_mk_ite / Z3_mk_and / Z3_mk_le / Z3_mk_lt).
_IV: dict[tuple[int, int], Any] = {}


def _int(p: int, like: Any) -> Any:
    """The constant ``p`` in the integer sort of ``like`` (Int or a bit-vector)."""
    width = like.size() if z3.is_bv(like) else 0
    v = _IV.get((p, width))
    if v is None:
        v = _IV[p, width] = num(p, width)
    return v


def _ite(c: Any, a: Any, b: Any, cls: Any) -> Any:
    ctx = c.ctx
    return cls(z3core.Z3_mk_ite(ctx.ref(), c.as_ast(), a.as_ast(), b.as_ast()), ctx)


def _and2(a: Any, b: Any) -> Any:
    ctx = a.ctx
    arr = (z3.Ast * 2)(a.as_ast(), b.as_ast())
    return z3.BoolRef(z3core.Z3_mk_and(ctx.ref(), 2, arr), ctx)


# lo <= p and p < hi for each integer sort (signed comparison for bit-vectors)
_LE_LT = {z3.ArithRef: (z3core.Z3_mk_le, z3core.Z3_mk_lt),
          z3.BitVecRef: (z3core.Z3_mk_bvsle, z3core.Z3_mk_bvslt)}


def _sort_cls(e: Any) -> Any:
    return z3.BoolRef if z3.is_bool(e) else z3.BitVecRef if z3.is_bv(e) else z3.ArithRef


def masked(w: SW, conds: list[Any]) -> list[Any]:
    """``mask and conds[p]`` per page (the write condition of :func:`assign`)."""
    m = w.mask()
    return [_and2(m, c if isinstance(c, z3.ExprRef) else z3.BoolVal(c)) for c in conds]


def assign(w: SW, name: str, mc: list[Any], val: Any) -> None:
    """field[p] := val (or val(p)) where mc[p], mc from :func:`masked`: the same as
    ``w.upd(name, lambda p, o: z3.If(cond[p], val, o))`` under that mask."""
    old = w.v[name]
    items = list(old.items)
    cls = _sort_cls(items[0])

    def conv(v: Any) -> Any:
        if isinstance(v, z3.ExprRef):
            return v
        return z3.BoolVal(v) if cls is z3.BoolRef else _int(v, items[0])

    const = None if callable(val) else conv(val)
    for p, c in enumerate(mc):
        v = const if const is not None else conv(val(p))
        items[p] = _ite(c, v, items[p], cls)
    w.v[name] = old.like(items)


# ------------------------------------------------------------------ geometry
# A Python int page is a position in the state's page lists; the page number it stands
# for is at(k, p): the same int, or for a window space (space.Window) a Z3 term.
def win(k: Any) -> Any:
    return getattr(k, "win", None)


def npos(k: Any) -> int:
    w = win(k)
    return k.P if w is None else w.n


def at(k: Any, p: Any) -> Any:
    """The page number of position ``p`` (a Z3 page number is returned as is)."""
    if not isinstance(p, int):
        return p
    w = win(k)
    return p if w is None else w.at(p)


def hpos(k: Any, p: int) -> int:
    """The position of the head of position ``p``'s region."""
    w = win(k)
    return p - p % k.N if w is None else w.head(p)


def rpos(k: Any, r: int) -> range:
    """The positions of region ``r``."""
    w = win(k)
    return range(r * k.N, r * k.N + k.N) if w is None else w.positions(r)


def rnum(k: Any, p: int) -> int:
    w = win(k)
    return p // k.N if w is None else w.region(p)


def site(k: Any, n: int = 1) -> None:
    """Record a region aggregate or a walk that stops early (see space.Window)."""
    w = win(k)
    if w is not None:
        w.site(n)


def rs(k: Any, p: Any) -> Any:
    """The first page of the region of ``p`` (a position or a page number)."""
    if isinstance(p, int):
        return at(k, hpos(k, p))
    w = win(k)
    return p - p % k.N if w is None else w.head_of(p)


def present(w: SW, p: Any) -> Any:
    return w.order[p] >= 0


def mid(k: Any) -> bool:
    """The design can leave folios of an order strictly between 0 and the huge order:
    the 6.15+ non-uniform truncate (mm/huge_memory.c:__split_unmapped_folio, buddy
    halves around split_at) on THP folios of at least 4 pages (model/mm.py)."""
    return intermediate_orders(k)


def like(k: Any, p: Any, v: int) -> Any:
    """The constant ``v`` in the integer sort of ``p`` (a Z3 term) or a Python int."""
    return v if isinstance(p, int) else _int(v, p)


def block(k: Any, j: int, p: Any) -> Any:
    """The first page of the aligned block of 2**j pages holding ``p`` (a position, or a
    Z3 page number)."""
    if j == 0:
        return at(k, p)
    if j == k.HUGE:
        return rs(k, p)
    if isinstance(p, int):
        assert win(k) is None, "intermediate orders have no window encoding"
        return p - p % (1 << j)
    return p - p % like(k, p, 1 << j)


def buddy_order(k: Any, j: int, p: int, a: Any) -> Any:
    """The order of page ``p`` (a concrete position) after a buddy split at page ``a``
    (a Z3 term) of the order-``j`` folio holding both (model/mm.py:buddy_pieces): 0 at
    ``a``, else the largest i < j such that the aligned 2**i block of ``p`` does not
    hold ``a``, i.e. one less than the smallest i >= 1 whose block does."""
    terms = []
    for i in range(1, j + 1):
        b = p - p % (1 << i)
        terms.append((between(_int(b, a), a, _int(b + (1 << i), a)), i - 1))
    out = _int(j - 1, a) if terms else _int(0, a)
    for c, v in reversed(terms[:-1]):
        out = z3.If(c, _int(v, a), out)
    return out


def sorted_as(x: Any, ref: Any) -> Any:
    """``x`` (a page number) as a term of ``ref``'s integer sort when it is a Python
    int: a choice between two concrete pages must not become a mathematical-integer
    term inside a bit-vector encoding (z3.If of two ints is an Int)."""
    return _int(x, ref) if isinstance(x, int) and isinstance(ref, z3.ExprRef) else x


def head_of(k: Any, o: Any, p: Any) -> Any:
    """Head of the folio of order ``o`` (0, huge, or in between when :func:`mid`)
    covering ``p``, in ``o``'s integer sort."""
    if not k.HUGE:
        return at(k, p)
    out = z3.If(o == k.HUGE, sorted_as(rs(k, p), o), sorted_as(at(k, p), o))
    if mid(k):
        for j in range(1, k.HUGE):
            out = z3.If(o == j, sorted_as(block(k, j, p), o), out)
    return out


def end_of(k: Any, o: Any, p: Any) -> Any:
    if not k.HUGE:
        return at(k, p) + 1
    out = z3.If(o == k.HUGE, sorted_as(rs(k, p) + k.N, o), sorted_as(at(k, p) + 1, o))
    if mid(k):
        for j in range(1, k.HUGE):
            out = z3.If(o == j, sorted_as(block(k, j, p) + (1 << j), o), out)
    return out


def between(lo: Any, p: Any, hi: Any) -> Any:
    cls = next((c for c in _LE_LT if isinstance(lo, c) and isinstance(hi, c)), None)
    if isinstance(p, int) and cls is not None:
        mk = _LE_LT[cls]
        ctx = lo.ctx
        pv = _int(p, lo).as_ast()
        # wrap each result at once: the wrapper holds the reference that keeps it alive
        a = z3.BoolRef(mk[0](ctx.ref(), lo.as_ast(), pv), ctx)
        b = z3.BoolRef(mk[1](ctx.ref(), pv, hi.as_ast()), ctx)
        return _and2(a, b)
    return z3.And(lo <= p, p < hi)


def pages(k: Any, span: range | None = None) -> range:
    return range(npos(k)) if span is None else span


def region_of(k: Any, p: int) -> range:
    return rpos(k, rnum(k, p))


def _agg(k: Any, lo: Any, hi: Any, span: range | None) -> None:
    """Record the aggregate over [lo, hi) unless it is the single page of a
    one-position span (whose value is exact)."""
    w = win(k)
    if w is None:
        return
    if isinstance(lo, int) or isinstance(hi, int):
        raise AssertionError("a page range given by positions, not page numbers")
    if span is not None and len(span) == 1 and z3.eq(lo, at(k, span[0])) \
            and z3.eq(hi, at(k, span[0]) + 1):
        return
    w.site()


def any_in(k: Any, lo: Any, hi: Any, fn: Any, span: range | None = None) -> Any:
    _agg(k, lo, hi, span)
    return z3.Or([z3.And(between(lo, at(k, q), hi), fn(q)) for q in pages(k, span)]
                 or [False])


def all_in(k: Any, lo: Any, hi: Any, fn: Any, span: range | None = None) -> Any:
    _agg(k, lo, hi, span)
    return z3.And([z3.Implies(between(lo, at(k, q), hi), fn(q)) for q in pages(k, span)]
                  or [True])


def region_any(k: Any, terms: list[Any]) -> Any:
    """Some page of a region (``terms``, one per position of it) satisfies a condition:
    an aggregate (see space.Window)."""
    site(k)
    return z3.Or(terms)


def region_all(k: Any, terms: list[Any]) -> Any:
    site(k)
    return z3.And(terms)


# ------------------------------------------------------------------ references
def extra_refs(k: Any, w: SW, lo: Any, hi: Any, span: range | None = None) -> Any:
    """model/kernel.py:Kernel.extra_refs > 0 (through a plug-in's twin of the step, if
    the design has one: registry.TWINNABLE)."""
    twin = getattr(k, "sym_twins", {}).get("extra_refs")
    if twin is not None:
        return twin(k, w, lambda lo2, hi2: _extra_refs(k, w, lo2, hi2, span), lo, hi)
    return _extra_refs(k, w, lo, hi, span)


def _extra_refs(k: Any, w: SW, lo: Any, hi: Any, span: range | None = None) -> Any:
    parts = [between(lo, w.spec, hi),
             z3.And(w.vc_on, between(lo, w.vc_gfn, hi)),
             z3.And(w.vm_op == VM_POPULATE, between(lo, w.vm_lo, hi))]
    if k.tdx_pins:
        parts.append(any_in(k, lo, hi, lambda q: w.npt[q] != NPT_NONE, span))
    if k.gup_refs:
        parts.append(any_in(k, lo, hi, lambda q: z3.Or(w.host[q] == HOST_GUP,
                                                         w.host[q] == HOST_PINNED), span))
    return z3.Or(parts)


def frames_free(k: Any, w: SW, lo: Any, hi: Any, span: range | None = None) -> Any:
    return all_in(k, lo, hi, lambda q: z3.And(w.order[q] < 0, w.held[q] < 0,
                                              z3.Not(w.leaked[q])), span)


def range_has_page(k: Any, w: SW, lo: Any, hi: Any, span: range | None = None) -> Any:
    return any_in(k, lo, hi, lambda q: w.order[q] >= 0, span)


# ------------------------------------------------------------------ host writes
def dm4k_of(k: Any, w: SW, pfn: Any) -> Any:
    return w.dm4k[rnum(k, pfn)] if isinstance(pfn, int) else w.dm4k[pfn / k.N]


def host_write_fault(k: Any, w: SW, pfn: Any, cache: dict[int, Any] | None = None
                     ) -> tuple[Any, str] | None:
    """``cache`` (concrete pfns only) keeps the "store through a 2M direct map over an
    assigned page" term per region: valid while rmp and dm4k do not change, which is the
    case for the whole of a host_write_each loop (host writes only change content)."""
    if k.snp:
        region = rs(k, pfn)
        span = region_of(k, pfn) if isinstance(pfn, int) else None
        if cache is not None and isinstance(pfn, int) and rnum(k, pfn) in cache:
            via_2m = cache[rnum(k, pfn)]
        else:
            via_2m = z3.And(z3.Not(dm4k_of(k, w, pfn)),
                            any_in(k, region, region + k.N,
                                   lambda q: w.rmp[q] != RMP_SHARED, span))
            if cache is not None and isinstance(pfn, int):
                cache[rnum(k, pfn)] = via_2m
        bad = z3.Or(w.rmp[pfn] != RMP_SHARED, via_2m)
        return bad, "host-rmp-#pf-oops"
    if k.tdx:
        return w.npt[pfn] != NPT_NONE, "td-private-host-write"
    return None


def host_write(k: Any, w: SW, pfn: Any, value: int = ZERO,
               cache: dict[int, Any] | None = None) -> None:
    """snp.py:host_write, under the current mask."""
    f = host_write_fault(k, w, pfn, cache)
    if f is not None:
        w.fault(f[0], f[1], at(k, pfn))
    if isinstance(pfn, int):
        w.upd("content", lambda p, o: _int(value, o), span=range(pfn, pfn + 1))
    else:
        w.upd("content", lambda p, o: z3.If(at(k, p) == pfn, value, o))


def host_write_each(k: Any, w: SW, sel: Any, value: int = ZERO,
                    span: range | None = None) -> None:
    """host_write on every page p with sel(p), in ascending order (clear_highpage loops,
    folio_zero_range); stops at the first store that faults (a walk: its stop is a
    page the window must represent)."""
    site(k)
    cache: dict[int, Any] = {}
    for p in pages(k, span):
        with w.when(sel(p)):
            host_write(k, w, p, value, cache)


# ------------------------------------------------------------------ RMP
def set_dm4k(k: Any, w: SW, pfn: Any) -> None:
    if isinstance(pfn, int):
        r = rnum(k, pfn)
        w.upd("dm4k", lambda i, o: z3.BoolVal(True), k.R, span=range(r, r + 1))
    else:
        w.upd("dm4k", lambda i, o: z3.Or(o, pfn / k.N == i), k.R)


def rmpupdate(k: Any, w: SW, pfn: Any, new: int, level_2m: bool) -> None:
    if not level_2m:
        w.fault(w.rmp[pfn] == RMP_2M, "rmpupdate-overlap-livelock", at(k, pfn))
        set_dm4k(k, w, pfn)
        if isinstance(pfn, int):
            w.upd("rmp", lambda p, o: _int(new, o), span=range(pfn, pfn + 1))
        else:
            w.upd("rmp", lambda p, o: z3.If(at(k, p) == pfn, new, o))
    else:
        start = rs(k, pfn)
        span = region_of(k, pfn) if isinstance(pfn, int) else None
        w.upd("rmp", lambda p, o: z3.If(rs(k, p) == start, new, o), span=span)


def psmash(k: Any, w: SW, pfn: Any) -> None:
    start = rs(k, pfn)
    span = region_of(k, pfn) if isinstance(pfn, int) else None
    w.upd("rmp", lambda p, o: z3.If(z3.And(rs(k, p) == start, o == RMP_2M), RMP_4K, o),
          span=span)


def sev_gmem_prepare_mainline(k: Any, w: SW, pfn: Any, mo: Any) -> None:
    """snp.py:sev_gmem_prepare_mainline."""
    if not k.snp:
        return
    shared = w.rmp[pfn] == RMP_SHARED
    start = rs(k, pfn)
    all_shared = all_in(k, start, start + k.N, lambda q: w.rmp[q] == RMP_SHARED)
    use_2m = z3.And(mo >= k.HUGE, all_shared)
    with w.when(shared):
        with w.when(use_2m):
            rmpupdate(k, w, start, RMP_2M, True)
        with w.when(z3.Not(use_2m)):
            rmpupdate(k, w, pfn, RMP_4K, False)


def sev_gmem_prepare_rfc(k: Any, w: SW, pfn: Any, mo: Any) -> None:
    """snp.py:sev_gmem_prepare_rfc, the walk over [ALIGN_DOWN(pfn, 2**mo), +2**mo) (mo
    0, huge, or in between when :func:`mid`): a whole shared aligned region takes one
    2M update (only a huge range holds one), every other shared page of the range a 4K
    one, in page order."""
    if not k.snp:
        return
    huge = mo == k.HUGE
    start = rs(k, pfn)
    lo = head_of(k, mo, pfn)
    hi = end_of(k, mo, pfn)
    all_shared = all_in(k, start, start + k.N, lambda q: w.rmp[q] == RMP_SHARED)
    two_m = z3.And(huge, all_shared)
    with w.when(two_m):
        rmpupdate(k, w, start, RMP_2M, True)
    with w.when(z3.Not(two_m)):
        site(k)     # the walk sets dm4k of the region if it updates any page
        for p in pages(k):
            with w.when(z3.And(between(lo, at(k, p), hi), w.rmp[p] == RMP_SHARED)):
                rmpupdate(k, w, p, RMP_4K, False)


def arch_prepare(k: Any, w: SW, pfn: Any, mo: Any) -> None:
    if k.axes["snp_prepare"] == "rfc":
        sev_gmem_prepare_rfc(k, w, pfn, mo)
    else:
        sev_gmem_prepare_mainline(k, w, pfn, mo)


# ------------------------------------------------------------------ page cache
def filemap_add_folio(k: Any, w: SW, head: Any, end: Any, order: Any,
                      span: range | None = None) -> None:
    if span is None:
        mr = masked(w, [between(head, at(k, p), end) for p in range(npos(k))])
        assign(w, "order", mr, order)
        for f in ("uptodate", "dirty", "private", "punched"):
            assign(w, f, mr, False)
        return
    inr = {p: between(head, at(k, p), end) for p in span}
    w.upd("order", lambda p, o: z3.If(inr[p], order, o), span=span)
    for f in ("uptodate", "dirty", "private", "punched"):
        w.upd(f, lambda p, o: z3.If(inr[p], False, o), span=span)


def invalidate_folios(k: Any, w: SW, rem: list[Any], big: list[Any], rmp_fail: Any) -> None:
    """snp.py:sev_gmem_invalidate over every folio of a set of disjoint folios, each inside
    one huge region, in any order: ``rem[q]`` says page q is in one of them, ``big[r]``
    that the one holding the head page of region r reaches the region's end (its
    ``hi >= pfn + N``). O(P) terms: no per-folio rewrite of the region.

    Derivation, per folio [h, e) of region R (N >= 2), on the state before the set:

    * the head of R takes the 2M path (``use_2m``) iff it is in the folio, the folio
      reaches the region's end and rmp[head] == 2M: one 2M rmp_make_shared (or, when it
      fails, nothing) and the walk is over (``c2m``);
    * otherwise the loop visits exactly the folio's pages whose entry is not shared
      (psmash and 4K updates only turn 2M into 4K or make the visited pfn shared, so
      a later page's "shared?" does not change), psmashes R at the first visited 2M
      page (after which R has no 2M entry), and makes each visited pfn shared with a
      4K update, which sets dm4k[R]. That 4K update cannot hit the livelock fault: a
      visited 2M page was psmashed at or before its visit, and nothing here creates 2M
      entries, so the fault is dropped.

    Folios of one region are order 0 when there are several (a huge one is the whole
    region), so c2m never coexists with another folio of R; psmash is idempotent and
    the 4K updates touch distinct pfns, so the set's outcome does not depend on order:
    R is psmashed iff a removed page of R had a 2M entry (and not c2m)."""
    if not k.snp:
        return
    rmp = w.rmp
    ok_upd = z3.Not(rmp_fail)
    c2m: list[Any] = []
    smash: list[Any] = []
    anyv: list[Any] = []
    for r in range(k.R):
        reg = rpos(k, r)
        r0 = reg[0]
        c = z3.And(rem[r0], big[r], rmp[r0] == RMP_2M)
        c2m.append(c)
        smash.append(z3.And(z3.Not(c), region_any(k, [z3.And(rem[q], rmp[q] == RMP_2M)
                                                      for q in reg])))
        anyv.append(z3.And(z3.Not(c), region_any(k, [z3.And(rem[q], rmp[q] != RMP_SHARED)
                                                     for q in reg])))

    # shared: c2m, or a visited page; else 4K: a 2M entry of a psmashed region
    visited = [z3.Or(c2m[rnum(k, p)], z3.And(rem[p], rmp[p] != RMP_SHARED))
               for p in range(npos(k))]
    shared = [z3.And(ok_upd, v) for v in visited]
    twin = getattr(k, "sym_twins", {}).get("rmp_make_shared_failed")
    if twin is not None:
        # a plug-in's twin of the step run for each visited page whose update failed
        # (registry.TWINNABLE); it writes only fields the built-in steps here do not read
        twin(k, w, [z3.And(rmp_fail, v) for v in visited])
    assign(w, "rmp", masked(w, shared), RMP_SHARED)
    rmp2 = w.rmp
    assign(w, "rmp", masked(w, [z3.And(smash[rnum(k, p)], rmp2[p] == RMP_2M)
                                for p in range(npos(k))]), RMP_4K)
    w.upd("dm4k", lambda r, o: z3.Or(o, z3.And(ok_upd, anyv[r])), k.R)


def remove_folios(k: Any, w: SW, rem: list[Any], big: list[Any], refs: list[Any],
                  rmp_fail: Any) -> None:
    """mm.py:filemap_remove_folio on every folio of a set of disjoint folios (each inside
    one huge region), under the current mask; ``rem``/``big`` as for
    :func:`invalidate_folios`, ``refs[q]`` the extra_refs of q's folio. The removals
    commute: each writes only its own pages (and, through the invalidate, its region's
    RMP entries and dm4k, see :func:`invalidate_folios`), nothing faults, and the
    reference counts read only fields no removal writes. ``held`` takes the page's own
    order, which is the folio's (orders are stored on every page of a folio)."""
    order = w.order
    mr = masked(w, rem)
    assign(w, "order", mr, -1)
    for f in ("uptodate", "dirty", "private"):
        assign(w, f, mr, False)
    assign(w, "held", mr, lambda p: order[p])
    invalidate_folios(k, w, rem, big, rmp_fail)
    mf = masked(w, [z3.And(rem[p], z3.Not(refs[p])) for p in range(npos(k))])
    assign(w, "held", mf, -1)
    assign(w, "content", mf, STALE)


def filemap_remove_folio(k: Any, w: SW, head: Any, end: Any, rmp_fail: Any,
                         span: range | None = None) -> None:
    """mm.py:filemap_remove_folio for the folio [head, end) (under the current mask);
    the folio is a page or a whole huge region."""
    rem = [between(head, at(k, p), end) for p in range(npos(k))]
    big = [end >= r * k.N + k.N for r in range(k.R)]
    refs = extra_refs(k, w, head, end, span)
    remove_folios(k, w, rem, big, [refs] * npos(k), rmp_fail)


def select_folios_mid(k: Any, w: SW, sel: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """:func:`select_folios` where folios may have any order from 0 to huge: page q's
    folio is the aligned block of 2**order[q] pages holding q (the order is stored on
    every page of a folio); the reference counts are built once per block."""
    o = w.order
    refs_of: dict[tuple[int, int], Any] = {}
    rem: list[Any] = []
    refs: list[Any] = []
    for q in range(npos(k)):
        pick: Any = z3.BoolVal(False)
        ref: Any = z3.BoolVal(False)
        for j in range(0, k.HUGE + 1):
            h = q - q % (1 << j)
            if (h, j) not in refs_of:
                refs_of[h, j] = extra_refs(k, w, _int(h, o[q]), _int(h + (1 << j), o[q]),
                                           range(h, h + (1 << j)))
            pick = z3.Or(pick, z3.And(o[q] == j, sel(h, h + (1 << j))))
            ref = z3.If(o[q] == j, refs_of[h, j], ref)
        rem.append(pick)
        refs.append(ref)
    big = [z3.And(o[rpos(k, r)[0]] == k.HUGE, rem[rpos(k, r)[0]]) for r in range(k.R)]
    return rem, big, refs


def select_folios(k: Any, w: SW, sel: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The page-cache folios [h, e) with ``sel(h, e)``, as (rem, big, refs) for
    :func:`remove_folios`. A folio is a page of order 0 or a whole region of huge order
    (the order of the region's head decides, as it is stored on every page)."""
    if mid(k):
        return select_folios_mid(k, w, sel)
    N = k.N
    o = w.order
    rem: list[Any] = []
    big: list[Any] = []
    refs: list[Any] = []
    for r in range(k.R):
        reg = rpos(k, r)
        r0 = reg[0]
        h = at(k, r0)
        huge = o[r0] == k.HUGE
        pick = z3.And(huge, sel(h, h + N))
        big.append(pick)
        ref_r = extra_refs(k, w, h, h + N, reg)
        for q in reg:
            pq = at(k, q)
            rem.append(z3.If(huge, pick, z3.And(o[q] >= 0, sel(pq, pq + 1))))
            refs.append(z3.If(huge, ref_r, extra_refs(k, w, pq, pq + 1, range(q, q + 1))))
    return rem, big, refs


def put_extra_ref(k: Any, w: SW, pfn: Any) -> None:
    """mm.py:put_extra_ref."""
    ho = w.held[pfn]
    head, end = head_of(k, ho, pfn), end_of(k, ho, pfn)
    span = region_of(k, pfn) if isinstance(pfn, int) else None
    with w.when(z3.And(ho >= 0, z3.Not(extra_refs(k, w, head, end, span)))):
        w.upd("held", lambda p, o: z3.If(between(head, at(k, p), end), -1, o), span=span)
        w.upd("content", lambda p, o: z3.If(between(head, at(k, p), end), STALE, o),
              span=span)


def unmap_host(k: Any, w: SW, lo: Any, hi: Any, span: range | None = None) -> None:
    if k.axes["conversion"] != "in-place":
        return
    w.upd("host", lambda p, o: z3.If(between(lo, at(k, p), hi),
                                     z3.If(o == HOST_MAPPED, HOST_NONE,
                                           z3.If(o == HOST_GUP, HOST_PINNED, o)), o), span=span)


def split_folio_to_order0(k: Any, w: SW, head: Any, end: Any,
                          span: range | None = None) -> Any:
    """mm.py:split_folio with the uniform pieces; returns the failure condition."""
    fail = extra_refs(k, w, head, end, span)
    with w.when(z3.Not(fail)):
        w.upd("order", lambda p, o: z3.If(between(head, at(k, p), end), 0, o), span=span)
        w.upd("private", lambda p, o: z3.If(z3.And(between(head, at(k, p), end),
                                                   at(k, p) != head), False, o), span=span)
        unmap_host(k, w, head, end, span)
    return fail


def split_folio_buddy(k: Any, w: SW, head: Any, end: Any, a: Any) -> Any:
    """mm.py:split_folio with mm.py:buddy_pieces(head, order, a): the non-uniform split
    of mm/huge_memory.c:__split_unmapped_folio (6.15+, try_folio_split), which leaves
    page ``a`` in an order-0 folio and the rest in buddy halves of decreasing order. The
    folio [head, end) holds ``a``; its order is read from ``w.order[a]``. Only the piece
    that keeps the head page keeps folio->private (__split_folio_to_order). Returns the
    failure condition (an unexpected reference: can_split_folio)."""
    fail = extra_refs(k, w, head, end)
    o = w.order
    new: list[Any] = []
    keep: list[Any] = []
    for p in range(npos(k)):
        no: Any = o[p]
        kp: Any = z3.BoolVal(True)
        for j in range(1, k.HUGE + 1):
            bo = buddy_order(k, j, p, a)
            # the piece of p starts at p's aligned block of its new order; it keeps the
            # head page iff that block's first page is the folio's head
            ph = z3.BoolVal(True)
            for i in range(0, j):
                ph = z3.If(bo == i, _int(p - p % (1 << i), a) == head, ph)
            no = z3.If(o[a] == j, bo, no)
            kp = z3.If(o[a] == j, ph, kp)
        new.append(no)
        keep.append(kp)
    inside = [between(head, at(k, p), end) for p in range(npos(k))]
    with w.when(z3.Not(fail)):
        w.upd("order", lambda p, old: z3.If(inside[p], new[p], old))
        w.upd("private", lambda p, old: z3.If(z3.And(inside[p], z3.Not(keep[p])), False,
                                              old))
        unmap_host(k, w, head, end)
    return fail


# ------------------------------------------------------------------ truncate
def truncate_inode_partial_folio(k: Any, w: SW, head: Any, end: Any, lo: Any, hi: Any,
                                 rmp_fail: Any, split_fail: Any = None) -> Any:
    """mm.py:truncate_inode_partial_folio on the folio [head, end) (which is present);
    returns the condition under which it returns False (dirty folio kept)."""
    if split_fail is None:
        split_fail = z3.BoolVal(False)
    lo2 = z3.If(lo > head, lo, head)
    hi2 = z3.If(hi < end, hi, end)
    whole = z3.And(lo2 == head, hi2 == end)
    kept = z3.BoolVal(False)
    with w.when(whole):
        filemap_remove_folio(k, w, head, end, rmp_fail)
    with w.when(z3.Not(whole)):
        if k.axes["truncate"] == "zeroing":
            host_write_each(k, w, lambda p: between(lo2, at(k, p), hi2))
        with w.when(end - head > 1):
            if mid(k):
                fail = split_folio_buddy(k, w, head, end, lo2)
                with w.when(z3.And(z3.Not(fail), hi2 < end)):
                    # the second split at the first page after the hole, result ignored;
                    # skipped when the hole runs to the folio's end (mm.py)
                    o2 = w.order[hi2]
                    h2, e2 = head_of(k, o2, hi2), end_of(k, o2, hi2)
                    with w.when(z3.And(o2 > 0, z3.Not(split_fail))):
                        split_folio_buddy(k, w, h2, e2, hi2)
            else:
                fail = split_folio_to_order0(k, w, head, end)
            dirty = w.dirty[head]
            kept = z3.And(w.mask(), fail, dirty)
            with w.when(z3.And(fail, z3.Not(dirty))):
                filemap_remove_folio(k, w, head, end, rmp_fail)
    return kept


def truncate_inode_pages_range(k: Any, w: SW, lo: Any, hi: Any, rmp_fail: Any,
                               split_fail: Any = None) -> Any:
    """mm.py:truncate_inode_pages_range over [lo, hi); returns the -EAGAIN condition
    (always false here). ``split_fail``: the second (non-uniform) split fails."""
    if split_fail is None:
        split_fail = z3.BoolVal(False)
    start, end = lo, hi
    # Pass 1: folios wholly inside [lo, hi), in index order (the removals commute).
    remove_folios(k, w, *select_folios(k, w, lambda h, e: z3.And(h >= lo, e <= hi)),
                  rmp_fail)
    # The folio at lstart, then (unless it is the same folio) the one at lend.
    o0 = w.order[lo]
    h0, e0 = head_of(k, o0, lo), end_of(k, o0, lo)
    have0 = o0 >= 0
    same = z3.If(have0, hi <= e0, lo == hi - 1)
    with w.when(have0):
        kept0 = truncate_inode_partial_folio(k, w, h0, e0, lo, hi, rmp_fail, split_fail)
    start = z3.If(kept0, e0, start)
    end = z3.If(z3.And(kept0, same), h0, end)
    o1 = w.order[hi - 1]
    h1, e1 = head_of(k, o1, hi - 1), end_of(k, o1, hi - 1)
    with w.when(z3.And(z3.Not(same), o1 >= 0)):
        kept1 = truncate_inode_partial_folio(k, w, h1, e1, lo, hi, rmp_fail, split_fail)
    end = z3.If(kept1, h1, end)
    # Pass 3: every folio with a page in [start, end), whole, in index order.
    remove_folios(k, w, *select_folios(k, w, lambda h, e: overlaps(h, e, start, end)),
                  rmp_fail)
    return z3.BoolVal(False)


def overlaps(h: Any, e: Any, lo: Any, hi: Any) -> Any:
    """[h, e) has a page in [lo, hi)."""
    return z3.And(h < hi, lo < e, lo < hi)


def truncate_zero_in_place(k: Any, w: SW, lo: Any, hi: Any, rmp_fail: Any) -> Any:
    """axes.py:truncate_zero_in_place: folio by folio from lo, remove whole ones, zero the
    punched pages of a partial one in place. Only the folio at lo and the one at hi - 1
    can be partial (an order-0 folio in the range is inside it), and a partial folio is
    huge, so it is its region: the walk is "zero the part of lo's folio, remove the
    folios inside (they commute, never fault, and touch no page, RMP entry or dm4k of
    another region), zero the part of hi - 1's folio", each host write stopping what
    follows when it faults."""
    o = w.order
    N = k.N
    zero: list[Any] = []
    for r in range(k.R):
        reg = rpos(k, r)
        h = at(k, reg[0])
        huge = o[reg[0]] == k.HUGE
        outside = z3.Not(z3.And(h >= lo, h + N <= hi))
        for q in reg:
            zero.append(z3.And(huge, outside, between(lo, at(k, q), hi)))
    first = lambda q: between(rs(k, q), lo, rs(k, q) + N)  # noqa: E731  q in lo's region
    host_write_each(k, w, lambda q: z3.And(zero[q], first(q)))
    remove_folios(k, w, *select_folios(k, w, lambda h, e: z3.And(h >= lo, e <= hi)),
                  rmp_fail)
    host_write_each(k, w, lambda q: z3.And(zero[q], z3.Not(first(q))))
    return z3.BoolVal(False)


def merge(k: Any, w: SW, r0: int) -> None:
    """hugetlb.py:merge of the huge range at the concrete index (position) r0 (only
    where hugetlb.py:restructures)."""
    if not restructures(k):
        return
    span = region_of(k, r0)
    cond = z3.And(w.order[r0] != k.HUGE, region_all(k, [w.order[q] >= 0 for q in span]))
    with w.when(cond):
        u, d = w.uptodate[r0], w.dirty[r0]
        w.upd("order", lambda p, o: _int(k.HUGE, o), span=span)
        w.upd("uptodate", lambda p, o: u, span=span)
        w.upd("dirty", lambda p, o: d, span=span)


def safe_refcount(k: Any, w: SW, lo: Any, hi: Any) -> Any:
    if k.axes["refcount_gating"] not in ("safe-refcount", "safe-refcount-range"):
        return z3.BoolVal(True)
    return z3.Not(extra_refs(k, w, lo, hi))


def merge_truncate_range(k: Any, w: SW, lo: Any, hi: Any, rmp_fail: Any) -> Any:
    """hugetlb.py:merge_truncate_range; returns the -EAGAIN condition."""
    unmap_host(k, w, lo, hi)
    again = z3.And(w.mask(), z3.Not(safe_refcount(k, w, lo, hi)))
    with w.when(z3.Not(again)):
        w.upd("punched", lambda p, o: z3.If(between(lo, at(k, p), hi), True, o))
        for r in range(k.R):
            r0 = rpos(k, r)[0]
            with w.when(between(lo, at(k, r0), hi)):
                merge(k, w, r0)
        # every folio with a page in [lo, hi), walking from lo (the removals commute)
        remove_folios(k, w, *select_folios(k, w, lambda h, e: overlaps(h, e, lo, hi)),
                      rmp_fail)
    return again


def truncate_inode_range_rfc_v2(k: Any, w: SW, lo: Any, hi: Any, rmp_fail: Any) -> Any:
    """hugetlb.py:truncate_inode_range_rfc_v2 (HugeTLB RFC v2): zero the partial huge
    page at lo (a huge folio from its first page, order-0 folios from lo), then
    merge_truncate_range over the whole huge pages, then zero the partial huge page at
    hi. A hugetlb region is one huge folio or order-0 folios, and only lo's and hi's
    regions can be partial; returns the -EAGAIN condition of the middle part."""
    o = w.order
    N = k.N
    full_lo, full_hi = lo, hi
    lo_sel: list[Any] = []
    hi_sel: list[Any] = []
    lo_pun: list[Any] = []
    hi_pun: list[Any] = []
    for r in range(k.R):
        reg = rpos(k, r)
        h = at(k, reg[0])
        lo_in = z3.And(h < lo, lo < h + N)          # lo strictly inside region r
        hi_in = z3.And(h < hi, hi < h + N)
        full_lo = z3.If(lo_in, num(h + N, lo), full_lo)
        full_hi = z3.If(hi_in, num(h, hi), full_hi)
        huge = o[reg[0]] == k.HUGE
        zl_hi = z3.If(hi < h + N, hi, num(h + N, hi))
        for q in reg:
            pq = at(k, q)
            lo_pun.append(z3.And(lo_in, lo <= pq, pq < zl_hi))
            hi_pun.append(z3.And(hi_in, z3.Not(lo_in), pq < hi))
            lo_sel.append(z3.And(lo_in, o[q] >= 0, pq < zl_hi, z3.Or(huge, lo <= pq)))
            hi_sel.append(z3.And(hi_pun[-1], o[q] >= 0))
    w.upd("punched", lambda p, old: z3.If(lo_pun[p], True, old))
    host_write_each(k, w, lambda q: lo_sel[q])
    again = z3.BoolVal(False)
    with w.when(full_hi > full_lo):
        again = merge_truncate_range(k, w, full_lo, full_hi, rmp_fail)
    w.upd("punched", lambda p, old: z3.If(hi_pun[p], True, old))
    host_write_each(k, w, lambda q: hi_sel[q])
    return again


# ------------------------------------------------------------------ KVM side
def zap(k: Any, w: SW, lo: Any, hi: Any) -> None:
    """kvm.py:zap."""
    npt = w.npt
    gone = []
    hit: dict[int, Any] = {}    # per region: a huge SPTE of the region overlaps [lo, hi)
    for g in pages(k):
        r = rnum(k, g)
        if r not in hit:
            hit[r] = any_in(k, lo, hi, lambda q: npt[q] == NPT_HUGE, region_of(k, g))
        huge_hit = z3.And(npt[g] == NPT_HUGE, hit[r])
        gone.append(z3.Or(z3.And(between(lo, at(k, g), hi), npt[g] != NPT_NONE), huge_hit))
    w.upd("npt", lambda p, o: z3.If(gone[p], NPT_NONE, o))
    if k.tdx:
        w.upd("content", lambda p, o: z3.If(gone[p], ZERO, o))
        if k.tdx_pins:
            put_extra_refs(k, w, gone)


def put_extra_refs(k: Any, w: SW, sel: list[Any]) -> None:
    """put_extra_ref(g) for every page g with sel[g], in any order: a put frees the held
    folio of g (a page, or a whole region when held at the huge order) when nothing else
    references it. The reference count reads none of the fields a put writes (held,
    content) and a second put on a freed folio does nothing, so the puts commute and
    nothing faults: a held folio is freed iff one of its pages is selected and it has
    no extra reference. Held orders are 0 or huge, stored on every page (the head's
    decides, as in put_extra_ref's ``held[pfn]`` for well-formed states)."""
    N = k.N
    held = w.held
    free: list[Any] = []
    if mid(k):
        # held orders from 0 to huge: page q's held folio is its aligned 2**held[q] block
        for q in range(npos(k)):
            f: Any = z3.BoolVal(False)
            for j in range(0, k.HUGE + 1):
                h = q - q % (1 << j)
                blk = range(h, h + (1 << j))
                f = z3.Or(f, z3.And(held[q] == j, z3.Or([sel[x] for x in blk]),
                                    z3.Not(extra_refs(k, w, h, h + (1 << j), blk))))
            free.append(f)
        w.upd("held", lambda p, o: z3.If(free[p], -1, o))
        w.upd("content", lambda p, o: z3.If(free[p], STALE, o))
        return
    for r in range(k.R):
        reg = rpos(k, r)
        r0 = reg[0]
        h = at(k, r0)
        huge = held[r0] == k.HUGE
        free_r = z3.And(region_any(k, [sel[q] for q in reg]),
                        z3.Not(extra_refs(k, w, h, h + N, reg)))
        for q in reg:
            pq = at(k, q)
            small = z3.And(sel[q], held[q] >= 0,
                           z3.Not(extra_refs(k, w, pq, pq + 1, range(q, q + 1))))
            free.append(z3.If(huge, free_r, small))
    w.upd("held", lambda p, o: z3.If(free[p], -1, o))
    w.upd("content", lambda p, o: z3.If(free[p], STALE, o))


def attrs_mixed(k: Any, w: SW, gfn: Any) -> Any:
    start = rs(k, gfn)
    a0 = w.attr[start]
    return any_in(k, start, start + k.N, lambda q: w.attr[q] != a0)


def stale_inflight_fault(k: Any, w: SW) -> None:
    with w.when(w.vc_on):
        w.put("vc_stale", True)


def invalidation_covers(w: SW, gfn: Any) -> Any:
    return z3.And(w.vm_op == VM_PUNCH, w.vm_lo <= gfn, gfn < w.vm_hi)


PUNCH_BEGUN = PC_CODES["invalidated"]
PUNCH_TRUNCATED = PC_CODES["truncated"]
PUNCH_UNPREPARED = PC_CODES["unprepared"]
_ = (DATA, HOST_NONE)
