"""The model's steps as Z3 formulas: the symbolic twin of model/mm.py, snp.py, gmem.py,
kvm.py and hugetlb.py, function for function and in the same program order.

Pages are unrolled (the number of pages is a Python int); indices taken from the state
or the action's arguments are Z3 terms. A loop ``for p in range(lo, hi)`` of the
explicit code becomes a loop over every page under the mask ``lo <= p < hi``; a loop
whose stride depends on the state (sev_gmem_invalidate) is emulated with a visited
flag. Folio orders are 0 or the huge order: a design that could split a huge folio
non-uniformly has no encoding here (see :func:`unsupported`).

The agreement tests (tests/test_symbolic.py) check, on reachable and random states, that
the successors computed here are exactly the explicit ones.
"""

from __future__ import annotations

from typing import Any

import z3

from ..model.state import (
    DATA,
    HOST_GUP,
    HOST_MAPPED,
    HOST_NONE,
    HOST_PINNED,
    NPT_4K,
    NPT_HUGE,
    NPT_NONE,
    RMP_2M,
    RMP_4K,
    RMP_SHARED,
    STALE,
    ZERO,
)
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
            if v.origin != "built-in":
                return (f"step {name} comes from a plug-in ({axis}={value}) and has no Z3 "
                        "encoding: the symbolic engines cannot be used for this preset")
    from ..model.registry import AXES

    for name, a in AXES.items():
        if a.origin != "built-in":
            return f"axis {name} comes from a plug-in and has no Z3 encoding"
        if a.kind == "choice":
            v = a.values[k.axes[name]]
            if v.origin != "built-in" or v.actions:
                return f"{name}={k.axes[name]} comes from a plug-in and has no Z3 encoding"
    if (k.axes["truncate"] == "nonuniform" and k.axes["partial_punch"] == "truncate"
            and k.axes["allocation"] in ("thp-fallback", "huge-only")):
        return ("truncate=nonuniform splits a huge folio into intermediate orders, which the "
                "Z3 encoding does not represent (orders 0 and huge only)")
    return None


# ------------------------------------------------------------------ geometry
def rs(k: Any, p: Any) -> Any:
    return p - p % k.N


def present(w: SW, p: Any) -> Any:
    return w.order[p] >= 0


def head_of(k: Any, o: Any, p: Any) -> Any:
    """Head of the folio of order ``o`` (0 or huge) covering ``p``."""
    return z3.If(o == k.HUGE, rs(k, p), p) if k.HUGE else p


def end_of(k: Any, o: Any, p: Any) -> Any:
    return z3.If(o == k.HUGE, rs(k, p) + k.N, p + 1) if k.HUGE else p + 1


def between(lo: Any, p: Any, hi: Any) -> Any:
    return z3.And(lo <= p, p < hi)


def pages(k: Any, span: range | None = None) -> range:
    return range(k.P) if span is None else span


def region_of(k: Any, p: int) -> range:
    r0 = p - p % k.N
    return range(r0, r0 + k.N)


def any_in(k: Any, lo: Any, hi: Any, fn: Any, span: range | None = None) -> Any:
    return z3.Or([z3.And(between(lo, q, hi), fn(q)) for q in pages(k, span)] or [False])


def all_in(k: Any, lo: Any, hi: Any, fn: Any, span: range | None = None) -> Any:
    return z3.And([z3.Implies(between(lo, q, hi), fn(q)) for q in pages(k, span)] or [True])


# ------------------------------------------------------------------ references
def extra_refs(k: Any, w: SW, lo: Any, hi: Any, span: range | None = None) -> Any:
    """model/kernel.py:Kernel.extra_refs > 0."""
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
    return w.dm4k[pfn // k.N] if isinstance(pfn, int) else w.dm4k[pfn / k.N]


def host_write_fault(k: Any, w: SW, pfn: Any) -> tuple[Any, str] | None:
    if k.snp:
        region = rs(k, pfn)
        span = region_of(k, pfn) if isinstance(pfn, int) else None
        bad = z3.Or(w.rmp[pfn] != RMP_SHARED,
                    z3.And(z3.Not(dm4k_of(k, w, pfn)),
                           any_in(k, region, region + k.N,
                                  lambda q: w.rmp[q] != RMP_SHARED, span)))
        return bad, "host-rmp-#pf-oops"
    if k.tdx:
        return w.npt[pfn] != NPT_NONE, "td-private-host-write"
    return None


def host_write(k: Any, w: SW, pfn: Any, value: int = ZERO) -> None:
    """snp.py:host_write, under the current mask."""
    f = host_write_fault(k, w, pfn)
    if f is not None:
        w.fault(f[0], f[1], pfn)
    if isinstance(pfn, int):
        w.upd("content", lambda p, o: z3.IntVal(value), span=range(pfn, pfn + 1))
    else:
        w.upd("content", lambda p, o: z3.If(p == pfn, value, o))


def host_write_each(k: Any, w: SW, sel: Any, value: int = ZERO,
                    span: range | None = None) -> None:
    """host_write on every page p with sel(p), in ascending order (clear_highpage loops,
    folio_zero_range); stops at the first store that faults."""
    for p in pages(k, span):
        with w.when(sel(p)):
            host_write(k, w, p, value)


# ------------------------------------------------------------------ RMP
def set_dm4k(k: Any, w: SW, pfn: Any) -> None:
    if isinstance(pfn, int):
        r = pfn // k.N
        w.upd("dm4k", lambda i, o: z3.BoolVal(True), k.R, span=range(r, r + 1))
    else:
        w.upd("dm4k", lambda i, o: z3.Or(o, pfn / k.N == i), k.R)


def rmpupdate(k: Any, w: SW, pfn: Any, new: int, level_2m: bool) -> None:
    if not level_2m:
        w.fault(w.rmp[pfn] == RMP_2M, "rmpupdate-overlap-livelock", pfn)
        set_dm4k(k, w, pfn)
        if isinstance(pfn, int):
            w.upd("rmp", lambda p, o: z3.IntVal(new), span=range(pfn, pfn + 1))
        else:
            w.upd("rmp", lambda p, o: z3.If(p == pfn, new, o))
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
    """snp.py:sev_gmem_prepare_rfc, the walk over [ALIGN_DOWN(pfn, 2**mo), +2**mo) with
    mo in {0, huge}: a whole shared aligned region takes one 2M update, every other
    shared page of the range a 4K one, in page order."""
    if not k.snp:
        return
    huge = mo == k.HUGE
    start = rs(k, pfn)
    lo = z3.If(huge, start, pfn)
    hi = z3.If(huge, start + k.N, pfn + 1)
    all_shared = all_in(k, start, start + k.N, lambda q: w.rmp[q] == RMP_SHARED)
    two_m = z3.And(huge, all_shared)
    with w.when(two_m):
        rmpupdate(k, w, start, RMP_2M, True)
    with w.when(z3.Not(two_m)):
        for p in pages(k):
            with w.when(z3.And(between(lo, p, hi), w.rmp[p] == RMP_SHARED)):
                rmpupdate(k, w, p, RMP_4K, False)


def arch_prepare(k: Any, w: SW, pfn: Any, mo: Any) -> None:
    if k.axes["snp_prepare"] == "rfc":
        sev_gmem_prepare_rfc(k, w, pfn, mo)
    else:
        sev_gmem_prepare_mainline(k, w, pfn, mo)


def sev_gmem_invalidate(k: Any, w: SW, lo: Any, hi: Any, rmp_fail: Any,
                        span: range | None = None) -> None:
    """snp.py:sev_gmem_invalidate over the frames [lo, hi), emulating its loop: a pfn is
    visited unless an earlier visited aligned pfn of its region took the 2M path."""
    if not k.snp:
        return
    took_2m: dict[int, Any] = {}
    for p in pages(k, span):
        r0 = p - p % k.N
        visited = between(lo, p, hi)
        if p != r0 and r0 in took_2m:
            visited = z3.And(visited, z3.Not(took_2m[r0]))
        assigned = w.rmp[p] != RMP_SHARED
        is_2m = w.rmp[p] == RMP_2M
        use_2m = z3.And(z3.BoolVal(p % k.N == 0), hi >= p + k.N, is_2m)
        if p == r0:
            took_2m[r0] = z3.And(visited, assigned, use_2m, w.mask())
        with w.when(z3.And(visited, assigned)):
            with w.when(z3.And(is_2m, z3.Not(use_2m))):
                psmash(k, w, p)
            with w.when(z3.Not(rmp_fail)):
                with w.when(use_2m):
                    rmpupdate(k, w, p, RMP_SHARED, True)
                with w.when(z3.Not(use_2m)):
                    rmpupdate(k, w, p, RMP_SHARED, False)


# ------------------------------------------------------------------ page cache
def filemap_add_folio(k: Any, w: SW, head: Any, end: Any, order: Any,
                      span: range | None = None) -> None:
    def inr(p: Any) -> Any:
        return between(head, p, end)

    w.upd("order", lambda p, o: z3.If(inr(p), order, o), span=span)
    for f in ("uptodate", "dirty", "private", "punched"):
        w.upd(f, lambda p, o: z3.If(inr(p), False, o), span=span)


def filemap_remove_folio(k: Any, w: SW, head: Any, end: Any, rmp_fail: Any,
                         span: range | None = None) -> None:
    """mm.py:filemap_remove_folio for the folio [head, end) (under the current mask)."""
    order = w.order[head]

    def inr(p: Any) -> Any:
        return between(head, p, end)

    w.upd("order", lambda p, o: z3.If(inr(p), -1, o), span=span)
    for f in ("uptodate", "dirty", "private"):
        w.upd(f, lambda p, o: z3.If(inr(p), False, o), span=span)
    w.upd("held", lambda p, o: z3.If(inr(p), order, o), span=span)
    sev_gmem_invalidate(k, w, head, end, rmp_fail, span)
    refs = extra_refs(k, w, head, end, span)
    with w.when(z3.Not(refs)):
        w.upd("held", lambda p, o: z3.If(inr(p), -1, o), span=span)
        w.upd("content", lambda p, o: z3.If(inr(p), STALE, o), span=span)


def put_extra_ref(k: Any, w: SW, pfn: Any) -> None:
    """mm.py:put_extra_ref."""
    ho = w.held[pfn]
    head, end = head_of(k, ho, pfn), end_of(k, ho, pfn)
    span = region_of(k, pfn) if isinstance(pfn, int) else None
    with w.when(z3.And(ho >= 0, z3.Not(extra_refs(k, w, head, end, span)))):
        w.upd("held", lambda p, o: z3.If(between(head, p, end), -1, o), span=span)
        w.upd("content", lambda p, o: z3.If(between(head, p, end), STALE, o), span=span)


def unmap_host(k: Any, w: SW, lo: Any, hi: Any, span: range | None = None) -> None:
    if k.axes["conversion"] != "in-place":
        return
    w.upd("host", lambda p, o: z3.If(between(lo, p, hi),
                                     z3.If(o == HOST_MAPPED, HOST_NONE,
                                           z3.If(o == HOST_GUP, HOST_PINNED, o)), o), span=span)


def split_folio_to_order0(k: Any, w: SW, head: Any, end: Any,
                          span: range | None = None) -> Any:
    """mm.py:split_folio with the uniform pieces; returns the failure condition."""
    fail = extra_refs(k, w, head, end, span)
    with w.when(z3.Not(fail)):
        w.upd("order", lambda p, o: z3.If(between(head, p, end), 0, o), span=span)
        w.upd("private", lambda p, o: z3.If(z3.And(between(head, p, end), p != head),
                                             False, o), span=span)
        unmap_host(k, w, head, end, span)
    return fail


# ------------------------------------------------------------------ truncate
def truncate_inode_partial_folio(k: Any, w: SW, head: Any, end: Any, lo: Any, hi: Any,
                                 rmp_fail: Any) -> Any:
    """mm.py:truncate_inode_partial_folio on the folio [head, end) (which is present);
    returns the condition under which it returns False (dirty folio kept)."""
    lo2 = z3.If(lo > head, lo, head)
    hi2 = z3.If(hi < end, hi, end)
    whole = z3.And(lo2 == head, hi2 == end)
    kept = z3.BoolVal(False)
    with w.when(whole):
        filemap_remove_folio(k, w, head, end, rmp_fail)
    with w.when(z3.Not(whole)):
        if k.axes["truncate"] == "zeroing":
            host_write_each(k, w, lambda p: between(lo2, p, hi2))
        with w.when(end - head > 1):
            fail = split_folio_to_order0(k, w, head, end)
            dirty = w.dirty[head]
            kept = z3.And(w.mask(), fail, dirty)
            with w.when(z3.And(fail, z3.Not(dirty))):
                filemap_remove_folio(k, w, head, end, rmp_fail)
    return kept


def truncate_inode_pages_range(k: Any, w: SW, lo: Any, hi: Any, rmp_fail: Any) -> Any:
    """mm.py:truncate_inode_pages_range over [lo, hi); returns the -EAGAIN condition
    (always false here)."""
    start, end = lo, hi
    # Pass 1: folios wholly inside [lo, hi), in index order.
    for p in pages(k):
        o = w.order[p]
        h, e = head_of(k, o, p), end_of(k, o, p)
        with w.when(z3.And(o >= 0, h == p, h >= lo, e <= hi)):
            filemap_remove_folio(k, w, h, e, rmp_fail, region_of(k, p))
    # The folio at lstart, then (unless it is the same folio) the one at lend.
    o0 = w.order[lo]
    h0, e0 = head_of(k, o0, lo), end_of(k, o0, lo)
    have0 = o0 >= 0
    same = z3.If(have0, hi <= e0, lo == hi - 1)
    with w.when(have0):
        kept0 = truncate_inode_partial_folio(k, w, h0, e0, lo, hi, rmp_fail)
    start = z3.If(kept0, e0, start)
    end = z3.If(z3.And(kept0, same), h0, end)
    o1 = w.order[hi - 1]
    h1, e1 = head_of(k, o1, hi - 1), end_of(k, o1, hi - 1)
    with w.when(z3.And(z3.Not(same), o1 >= 0)):
        kept1 = truncate_inode_partial_folio(k, w, h1, e1, lo, hi, rmp_fail)
    end = z3.If(kept1, h1, end)
    # Pass 3: every folio with a page in [start, end), whole, in index order.
    for p in pages(k):
        o = w.order[p]
        h, e = head_of(k, o, p), end_of(k, o, p)
        with w.when(z3.And(o >= 0, between(start, p, end), z3.Or(h == p, p == start))):
            filemap_remove_folio(k, w, h, e, rmp_fail, region_of(k, p))
    return z3.BoolVal(False)


def truncate_zero_in_place(k: Any, w: SW, lo: Any, hi: Any, rmp_fail: Any) -> Any:
    """axes.py:truncate_zero_in_place: folio by folio from lo, remove whole ones, zero the
    punched pages of a partial one in place."""
    for p in pages(k):
        o = w.order[p]
        h, e = head_of(k, o, p), end_of(k, o, p)
        visit = z3.And(o >= 0, between(lo, p, hi), z3.Or(h == p, p == lo))
        inside = z3.And(h >= lo, e <= hi)
        with w.when(z3.And(visit, inside)):
            filemap_remove_folio(k, w, h, e, rmp_fail, region_of(k, p))
        with w.when(z3.And(visit, z3.Not(inside))):
            lo2 = z3.If(lo > h, lo, h)
            hi2 = z3.If(hi < e, hi, e)
            host_write_each(k, w, lambda q, lo2=lo2, hi2=hi2: between(lo2, q, hi2),
                            span=region_of(k, p))
    return z3.BoolVal(False)


def merge(k: Any, w: SW, r0: int) -> None:
    """hugetlb.py:merge of the huge range at the concrete index r0."""
    span = range(r0, r0 + k.N)
    cond = z3.And(w.order[r0] != k.HUGE, z3.And([w.order[q] >= 0 for q in span]))
    with w.when(cond):
        u, d = w.uptodate[r0], w.dirty[r0]
        w.upd("order", lambda p, o: z3.IntVal(k.HUGE), span=span)
        w.upd("uptodate", lambda p, o: u, span=span)
        w.upd("dirty", lambda p, o: d, span=span)


def safe_refcount(k: Any, w: SW, lo: Any, hi: Any) -> Any:
    if k.axes["refcount_gating"] != "safe-refcount":
        return z3.BoolVal(True)
    return z3.Not(extra_refs(k, w, lo, hi))


def merge_truncate_range(k: Any, w: SW, lo: Any, hi: Any, rmp_fail: Any) -> Any:
    """hugetlb.py:merge_truncate_range; returns the -EAGAIN condition."""
    unmap_host(k, w, lo, hi)
    again = z3.And(w.mask(), z3.Not(safe_refcount(k, w, lo, hi)))
    with w.when(z3.Not(again)):
        w.upd("punched", lambda p, o: z3.If(between(lo, p, hi), True, o))
        for r0 in range(0, k.P, k.N):
            with w.when(between(lo, r0, hi)):
                merge(k, w, r0)
        for p in pages(k):
            o = w.order[p]
            h, e = head_of(k, o, p), end_of(k, o, p)
            with w.when(z3.And(o >= 0, h == p, between(lo, p, hi))):
                filemap_remove_folio(k, w, h, e, rmp_fail, region_of(k, p))
    return again


# ------------------------------------------------------------------ KVM side
def zap(k: Any, w: SW, lo: Any, hi: Any) -> None:
    """kvm.py:zap."""
    npt = w.npt
    gone = []
    for g in pages(k):
        reg = region_of(k, g)
        huge_hit = z3.And(npt[g] == NPT_HUGE,
                          any_in(k, lo, hi, lambda q: npt[q] == NPT_HUGE, reg))
        gone.append(z3.Or(z3.And(between(lo, g, hi), npt[g] != NPT_NONE), huge_hit))
    w.upd("npt", lambda p, o: z3.If(gone[p], NPT_NONE, o))
    if k.tdx:
        w.upd("content", lambda p, o: z3.If(gone[p], ZERO, o))
        if k.tdx_pins:
            for g in pages(k):
                with w.when(gone[g]):
                    put_extra_ref(k, w, g)


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
