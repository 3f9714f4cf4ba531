"""Each action of the model as a Z3 transition: its guard and its effect over the state
variables of step i and i+1, next to the Python ``apply`` in model/actions.py and written
in the same order. The "unchanged" frame is generated from the action's ``modifies``.

``SymAction.encode(s, args)`` returns ``(guard, post)`` where ``post`` is the symbolic
state after the step; :func:`transition` turns that into the constraint between two
states. Argument variables are bounded by :meth:`SymAction.domain`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import z3

from ..model.actions import never_split
from ..model.hugetlb import restructures
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
    RMP_SHARED,
)
from . import steps as st
from .space import SymState
from .work import PC_CODES, SW, VM_IDLE, VM_POPULATE, VM_PUNCH

BEGUN, TRUNCATED, UNPREPARED = PC_CODES["invalidated"], PC_CODES["truncated"], \
    PC_CODES["unprepared"]

# explicit field -> symbolic fields
SYM_FIELDS = {
    "vcpu": ("vc_on", "vc_gfn", "vc_stale"),
    "vmm": ("vm_op", "vm_lo", "vm_hi", "vm_pc", "vm_ret"),
    "fault": ("f_kind", "f_pfn"),
}


def sym_fields(modifies: frozenset[str]) -> set[str]:
    out: set[str] = set()
    for f in modifies:
        out.update(SYM_FIELDS.get(f, (f,)))
    return out


@dataclass
class SymAction:
    name: str
    params: tuple[str, ...]
    sorts: tuple[str, ...]                       # "int" | "bool" per param
    domain: Callable[[Any, list[Any]], Any]       # constraint on the argument vars
    encode: Callable[[SymState, list[Any]], tuple[Any, SymState]]
    modifies: frozenset[str]
    environment: bool = False

    def arg_vars(self, tag: str, space: Any) -> list[Any]:
        return [space.const(f"{tag}.{self.name}.{p}", s)
                for p, s in zip(self.params, self.sorts, strict=True)]


def set_vcpu_idle(w: SW) -> None:
    w.put("vc_on", False)
    w.put("vc_gfn", 0)
    w.put("vc_stale", False)


def set_vmm(w: SW, op: int, lo: Any = 0, hi: Any = 0, pc: Any = 0, ret: Any = 0,
            always: bool = False) -> None:
    for f, v in (("vm_op", op), ("vm_lo", lo), ("vm_hi", hi), ("vm_pc", pc), ("vm_ret", ret)):
        if always:
            m = z3.And(*w.masks) if w.masks else z3.BoolVal(True)
            w.v[f] = z3.If(m, v, w.v[f])
        else:
            w.put(f, v)


def lock_exclusive(s: Any) -> Any:
    return z3.Or(s.vm_op == VM_PUNCH, s.vm_op == VM_POPULATE)


def in_pages(k: Any, x: Any) -> Any:
    return z3.And(0 <= x, x < k.P)


# ------------------------------------------------------------------ allocation
def get_folio(k: Any, w: SW, idx: Any, huge_ok: Any, span: range | None = None
              ) -> tuple[Any, Any, Any]:
    """kvm_gmem_get_folio per allocation axis: (ok, head, end) with the allocation done
    under the current mask. ``span``: when ``idx`` is a concrete page, its region (every
    page the call can read or write)."""
    alloc = k.axes["allocation"]
    o = w.order[idx]
    exist = o >= 0
    eh, ee = st.head_of(k, o, idx), st.end_of(k, o, idx)
    # concrete pages as terms of the state's integer sort (bit-vector or Int)
    h = st.sorted_as(st.rs(k, idx), o)
    iv = st.sorted_as(st.at(k, idx), o)
    one = range(idx, idx + 1) if span is not None else None
    if alloc == "order0":
        free = st.frames_free(k, w, iv, iv + 1, one)
        with w.when(z3.And(z3.Not(exist), free)):
            st.filemap_add_folio(k, w, iv, iv + 1, 0, one)
        return z3.Or(exist, free), z3.If(exist, eh, iv), z3.If(exist, ee, iv + 1)
    if alloc == "thp-fallback":
        has = st.range_has_page(k, w, h, h + k.N, span)
        ff = st.frames_free(k, w, h, h + k.N, span)
        huge = z3.And(z3.Not(exist), z3.Not(has), ff, huge_ok)
        fallback = z3.And(z3.Not(exist), z3.Not(huge))
        free0 = st.frames_free(k, w, iv, iv + 1, one)
        with w.when(huge):
            st.filemap_add_folio(k, w, h, h + k.N, k.HUGE, span)
        with w.when(z3.And(fallback, free0)):
            st.filemap_add_folio(k, w, iv, iv + 1, 0, one)
        ok = z3.Or(exist, huge, z3.And(fallback, free0))
        return ok, z3.If(exist, eh, z3.If(huge, h, iv)), z3.If(exist, ee, z3.If(huge, h + k.N,
                                                                                  iv + 1))
    if alloc == "huge-only":
        has = st.range_has_page(k, w, h, h + k.N, span)
        ff = st.frames_free(k, w, h, h + k.N, span)
        huge = z3.And(z3.Not(exist), huge_ok, z3.Not(has), ff)
        with w.when(huge):
            st.filemap_add_folio(k, w, h, h + k.N, k.HUGE, span)
        return z3.Or(exist, huge), z3.If(exist, eh, h), z3.If(exist, ee, h + k.N)
    if alloc == "hugetlb":
        ff = st.frames_free(k, w, h, h + k.N, span)
        new = z3.And(z3.Not(exist), ff)
        mixed = z3.Not(st.all_in(k, h, h + k.N, lambda q: w.attr[q], span))
        with w.when(new):
            st.filemap_add_folio(k, w, h, h + k.N, k.HUGE, span)
            with w.when(mixed):
                st.split_folio_to_order0(k, w, h, h + k.N, span)
        head = z3.If(exist, eh, z3.If(mixed, iv, h))
        end = z3.If(exist, ee, z3.If(mixed, iv + 1, h + k.N))
        return z3.Or(exist, new), head, end
    raise AssertionError(alloc)


def get_folio_next(k: Any, w: SW, idx: int) -> tuple[Any, Any]:
    """get_folio(idx, huge_ok=True) for a concrete idx whose region already has a page in
    the page cache (kvm_gmem_allocate after an order-0 folio at the region's head): then
    filemap_range_has_page holds and the region's frames are not free, so no huge folio
    can be allocated and only the order-0 paths remain. Returns (ok, end)."""
    alloc = k.axes["allocation"]
    o = w.order[idx]
    exist = o >= 0
    ee = st.end_of(k, o, idx)
    iv = st.sorted_as(st.at(k, idx), o)
    one = range(idx, idx + 1)
    if alloc in ("order0", "thp-fallback"):
        free = st.frames_free(k, w, iv, iv + 1, one)
        with w.when(z3.And(z3.Not(exist), free)):
            st.filemap_add_folio(k, w, iv, iv + 1, 0, one)
        return z3.Or(exist, free), z3.If(exist, ee, iv + 1)
    if alloc in ("huge-only", "hugetlb"):
        return exist, ee
    raise AssertionError(alloc)


def huge_attempt(k: Any, s: Any, idx: Any) -> Any:
    h = st.rs(k, idx)
    return z3.And(s.order[idx] < 0, st.all_in(k, h, h + k.N, lambda q: z3.And(
        s.order[q] < 0, s.held[q] < 0, z3.Not(s.leaked[q]))))


# ------------------------------------------------------------------ preparedness
def is_prepared(k: Any, w: Any, idx: Any, mo: Any) -> Any:
    kind = k.axes["preparedness"]
    if kind == "uptodate":
        return w.uptodate[idx]
    if kind == "none":
        return z3.BoolVal(False)
    arr = w.prepared if kind == "bitmap" else w.private
    if isinstance(mo, int) and mo != k.HUGE:
        return arr[idx]
    h = st.rs(k, idx)
    span = st.region_of(k, idx) if isinstance(idx, int) else None
    if st.mid(k):
        # the aligned 2**mo range holding idx (gmem.py:is_prepared_bitmap)
        return st.all_in(k, st.head_of(k, mo, idx), st.end_of(k, mo, idx),
                         lambda q: arr[q], span)
    return z3.If(mo == k.HUGE, st.all_in(k, h, h + k.N, lambda q: arr[q], span), arr[idx])


def mark_prepared(k: Any, w: SW, idx: Any, head: Any, end: Any, mo: Any) -> None:
    kind = k.axes["preparedness"]
    if kind == "uptodate":
        w.upd("uptodate", lambda p, o: z3.If(st.between(head, st.at(k, p), end), True, o))
    elif kind in ("bitmap", "folio-private"):
        lo, hi = st.head_of(k, mo, idx), st.end_of(k, mo, idx)
        name = "prepared" if kind == "bitmap" else "private"
        w.upd(name, lambda p, o: z3.If(st.between(lo, st.at(k, p), hi), True, o))


def prepare_folio(k: Any, w: SW, idx: Any, head: Any, end: Any, mo: Any) -> None:
    """gmem.py:prepare_folio."""
    if k.axes["preparedness"] == "none":
        with w.when(z3.Not(w.uptodate[idx])):
            st.host_write_each(k, w, lambda q: st.between(head, st.at(k, q), end))
            w.upd("uptodate", lambda p, o: z3.If(st.between(head, st.at(k, p), end), True, o))
        st.arch_prepare(k, w, idx, mo)
        return
    if k.axes["prepare_clear"] == "unprepared-pages":
        lo, hi = st.head_of(k, mo, idx), st.end_of(k, mo, idx)
        pre = dict(w.v)

        class _Pre:
            def __getattr__(self, n: str) -> Any:
                return pre[n]

        view = _Pre()
        sel = lambda q: z3.And(st.between(lo, st.at(k, q), hi),  # noqa: E731
                               z3.Not(is_prepared(k, view, q, 0)))
    else:
        sel = lambda q: st.between(head, st.at(k, q), end)  # noqa: E731
    st.host_write_each(k, w, sel)
    st.arch_prepare(k, w, head, mo)
    mark_prepared(k, w, idx, head, end, mo)


def populate_check(k: Any, w: SW, gfn: Any) -> tuple[Any, Any, Any]:
    """gmem.py:populate_check: (ok, head, end)."""
    attr_ok = w.attr[gfn]
    with w.when(attr_ok):
        ok, head, end = get_folio(k, w, gfn, z3.BoolVal(True))
    ok = z3.And(attr_ok, ok)
    if k.axes["preparedness"] != "none":
        ok = z3.And(ok, z3.Not(is_prepared(k, w, gfn, 0)))
    return ok, head, end


# ------------------------------------------------------------------ the actions
def _gfn_domain(k: Any, a: list[Any]) -> Any:
    return in_pages(k, a[0])


def _bool_fixed(x: Any, allowed: bool) -> Any:
    return z3.BoolVal(True) if allowed else z3.Not(x)


def build(k: Any, model: Any) -> list[SymAction]:
    """The symbolic actions of the model's design, one per explicit action."""
    acts: dict[str, SymAction] = {}
    locked = k.axes["fault_locking"] == "invalidate-shared"
    from ..model.actions import can_fail_huge

    fail_huge = can_fail_huge(k)
    aligned_only = k.axes["partial_punch"] in ("reject", "hugetlb")
    rmp_fail_ok = k.snp and bool(k.axes["rmp_make_shared_may_fail"])
    split_fail_ok = k.axes["truncate"] == "nonuniform" and bool(k.axes["split_may_fail"])
    bitmap = k.axes["preparedness"] == "bitmap"
    last_pc = UNPREPARED if bitmap else TRUNCATED
    why = st.mid_unsupported(k)
    if why:
        raise KeyError(why)
    if k.axes["partial_punch"] == "hugetlb-zero" and st.win(k) is not None:
        raise KeyError("partial_punch=hugetlb-zero is encoded over every page only, not over "
                       "representative pages (window)")
    trunc_step = {"truncate": st.truncate_inode_pages_range,
                  "reject": st.truncate_inode_pages_range,
                  "zero-in-place": st.truncate_zero_in_place,
                  "hugetlb": st.merge_truncate_range,
                  "hugetlb-zero": st.truncate_inode_range_rfc_v2}[k.axes["partial_punch"]]

    def add(name: str, params: tuple[str, ...], sorts: tuple[str, ...], domain: Any,
            guard: Any, body: Any) -> None:
        def encode(s: SymState, a: list[Any]) -> tuple[Any, SymState]:
            w = SW(k, s)
            win = st.win(k)
            # a window space counts the aggregates and reads of each action apart
            with win.scope(f"action:{name}") if win is not None else nullcontext():
                body(w, *a)
                g = z3.And(s.f_kind == 0, guard(s, *a))
            return g, w.state()
        acts[name] = SymAction(name, params, sorts, domain, encode, frozenset())

    # ---- vCPU
    def g_get_pfn(s: Any, gfn: Any, huge_ok: Any) -> Any:
        parts = [s.launched, z3.Not(s.vc_on), s.attr[gfn], s.npt[gfn] == NPT_NONE,
                 z3.Or(huge_ok, huge_attempt(k, s, gfn))]
        if locked:
            parts.append(z3.Not(lock_exclusive(s)))
        return z3.And(parts)

    def b_get_pfn(w: SW, gfn: Any, huge_ok: Any) -> None:
        ok, head, end = get_folio(k, w, gfn, huge_ok)
        with w.when(ok):
            mo = w.order[head]
            with w.when(z3.Not(is_prepared(k, w, gfn, mo))):
                prepare_folio(k, w, gfn, head, end, mo)
            w.upd("punched", lambda p, o: z3.If(st.at(k, p) == gfn, False, o))
            w.put("vc_on", True)
            w.put("vc_gfn", gfn)
            w.put("vc_stale", False)

    add("kvm_gmem_get_pfn", ("gfn", "huge_ok"), ("int", "bool"),
        lambda k, a: z3.And(in_pages(k, a[0]), z3.BoolVal(True) if fail_huge else a[1]),
        g_get_pfn, b_get_pfn)

    def b_map(w: SW) -> None:
        s = w.pre
        gfn = s.vc_gfn
        retry = z3.Or(s.vc_stale, st.invalidation_covers(w, gfn), z3.Not(s.attr[gfn]),
                      s.order[gfn] < 0)
        with w.when(retry):
            set_vcpu_idle(w)
            st.put_extra_ref(k, w, gfn)
        with w.when(z3.Not(retry)):
            huge = z3.And(s.order[gfn] >= k.HUGE, z3.Not(st.attrs_mixed(k, w, gfn)))
            if k.snp:
                huge = z3.And(huge, s.rmp[gfn] == RMP_2M)
            start = st.rs(k, gfn)
            with w.when(huge):
                w.upd("npt", lambda p, o: z3.If(st.rs(k, p) == start, NPT_HUGE, o))
            with w.when(z3.Not(huge)):
                w.upd("npt", lambda p, o: z3.If(st.at(k, p) == gfn, NPT_4K, o))
            o = s.order[gfn]
            head, end = st.head_of(k, o, gfn), st.end_of(k, o, gfn)
            w.upd("dirty", lambda p, o2: z3.If(st.between(head, st.at(k, p), end), True, o2))
            set_vcpu_idle(w)

    add("kvm_tdp_mmu_map", (), (), lambda k, a: z3.BoolVal(True),
        lambda s: s.vc_on, b_map)

    def g_write(s: Any, g: Any) -> Any:
        parts = [s.launched, z3.Not(s.vc_on), s.npt[g] != NPT_NONE, s.content[g] != DATA]
        if k.snp:
            r = s.rmp[g]
            parts += [r != RMP_SHARED, z3.Not(z3.And(r == RMP_2M, s.npt[g] == NPT_4K))]
        return z3.And(parts)

    add("guest_write", ("gfn",), ("int",), _gfn_domain, g_write,
        lambda w, g: w.upd("content", lambda p, o: z3.If(st.at(k, p) == g, DATA, o)))

    if k.snp and k.axes["allocation"] != "order0":
        def b_rmpf(w: SW, g: Any) -> None:
            st.psmash(k, w, g)
            hi = z3.If(g + k.N < k.P, g + k.N, k.P)
            st.zap(k, w, g, hi)

        add("sev_handle_rmp_fault", ("gfn",), ("int",), _gfn_domain,
            lambda s, g: z3.And(s.launched, z3.Not(s.vc_on), s.npt[g] == NPT_4K,
                                s.rmp[g] == RMP_2M), b_rmpf)

    # ---- VMM: punch
    def b_punch(w: SW, off: Any, ln: Any) -> None:
        lo, hi = off, off + ln
        bad = z3.Or(lo % k.N != 0, hi % k.N != 0) if aligned_only else z3.BoolVal(False)
        with w.when(z3.Not(bad)):
            set_vmm(w, VM_PUNCH, lo, hi, BEGUN, 0)
            st.zap(k, w, lo, hi)

    add("kvm_gmem_punch_hole", ("offset", "len"), ("int", "int"),
        # (each bound on its own as well: no sum may wrap around in a bit-vector)
        lambda k, a: z3.And(a[0] >= 0, a[0] < k.P, a[1] >= 1, a[1] <= k.P,
                            a[0] + a[1] <= k.P),
        lambda s, off, ln: s.vm_op == VM_IDLE, b_punch)

    def b_truncate(w: SW, rmp_fail: Any, split_fail: Any) -> None:
        lo, hi = w.pre.vm_lo, w.pre.vm_hi
        if k.axes["partial_punch"] not in ("hugetlb", "hugetlb-zero"):
            w.upd("punched", lambda p, o: z3.If(st.between(lo, st.at(k, p), hi), True, o))
        if trunc_step is st.truncate_inode_pages_range:
            again = trunc_step(k, w, lo, hi, rmp_fail, split_fail)
        else:
            again = trunc_step(k, w, lo, hi, rmp_fail)
        set_vmm(w, VM_PUNCH, lo, hi, TRUNCATED,
                z3.If(again, w.sp.val(-11), w.sp.val(0)), always=True)

    add("truncate_inode_pages_range", ("rmp_make_shared_fails", "second_split_fails"),
        ("bool", "bool"),
        lambda k, a: z3.And(_bool_fixed(a[0], rmp_fail_ok), _bool_fixed(a[1], split_fail_ok)),
        lambda s, r, sp: z3.And(s.vm_op == VM_PUNCH, s.vm_pc == BEGUN), b_truncate)

    if bitmap:
        def b_unprep(w: SW) -> None:
            lo, hi = w.pre.vm_lo, w.pre.vm_hi
            w.upd("prepared", lambda p, o: z3.If(st.between(lo, st.at(k, p), hi), False, o))
            w.put("vm_pc", UNPREPARED)

        add("kvm_gmem_mark_range_unprepared", (), (), lambda k, a: z3.BoolVal(True),
            lambda s: z3.And(s.vm_op == VM_PUNCH, s.vm_pc == TRUNCATED), b_unprep)

    def b_end(w: SW) -> None:
        set_vmm(w, VM_IDLE)
        st.stale_inflight_fault(k, w)

    add("kvm_gmem_invalidate_end", (), (), lambda k, a: z3.BoolVal(True),
        lambda s: z3.And(s.vm_op == VM_PUNCH, s.vm_pc == last_pc), b_end)

    # ---- VMM: other ioctls
    def allocate(w: SW, off: Any, ln: Any, walk: Callable[..., None]) -> None:
        # gmem.py:allocate: get_folio for each index from off, stepping by folio. off is
        # one of the region starts (domain): one case per region, with concrete indices.
        # walk(w, reg, ok, end, clear) follows the walk past the region's first folio
        # (get_folio at the head gave ok and end) and widens clear[i], whether index
        # reg[i] lies in a folio walked. punched is read by nothing here: one update at
        # the end, clearing it over the folios walked within [off, off + ln).
        for r in range(k.R):
            reg = st.rpos(k, r)
            r0 = reg[0]
            with w.when(off == st.at(k, r0)):
                ok, head, end = get_folio(k, w, r0, z3.BoolVal(True), reg)
                clear = [z3.And(ok, st.between(head, st.at(k, p), end)) for p in reg]
                walk(w, reg, ok, end, clear)

                def unpunch(p: Any, o: Any, cl: list[Any] = clear, r0: int = r0) -> Any:
                    return z3.If(z3.And(cl[p - r0], st.between(off, st.at(k, p), off + ln)),
                                 False, o)

                w.upd("punched", unpunch, span=reg)

    def walk_order0(w: SW, reg: list[int], ok: Any, end: Any, clear: list[Any]) -> None:
        # After the first index, the walk goes on only past an order-0 folio at the
        # region's head (get_folio_next); such a walk's folios are order 0 (a huge order
        # would be on every page of the region, head included), so index idx clears
        # punched at idx alone.
        r0 = reg[0]
        visit = z3.And(ok, end == st.at(k, r0) + 1)
        st.site(k)      # a walk: the page it stops at
        for i in range(1, len(reg)):
            idx = r0 + i
            with w.when(visit):
                ok, end = get_folio_next(k, w, idx)
            clear[i] = z3.Or(clear[i], z3.And(visit, ok))
            visit = z3.And(visit, ok, end == st.at(k, idx) + 1)

    def walk_mid(w: SW, reg: list[int], ok: Any, end: Any, clear: list[Any]) -> None:
        # Folios may have any order from 0 to huge: the walk from the region's head goes
        # on past any folio that ends inside the region, at the next index (a folio's
        # first page, as folios are aligned and disjoint). Index idx is reached iff some
        # earlier reached index's get_folio succeeded and ended at idx; after the first
        # get_folio the region has a page, so no huge folio can be allocated
        # (get_folio_next).
        r0 = reg[0]
        ends = [(ok, end)]
        for i in range(1, len(reg)):
            idx = r0 + i
            reach = z3.Or([z3.And(c, e == st.at(k, idx)) for c, e in ends])
            with w.when(reach):
                ok_i, end_i = get_folio_next(k, w, idx)
            ok_i = z3.And(reach, ok_i)
            ends.append((ok_i, end_i))
            for j in range(i, len(reg)):
                clear[j] = z3.Or(clear[j], z3.And(ok_i, st.at(k, r0 + j) < end_i))

    walk_alloc = walk_mid if st.mid(k) else walk_order0

    def b_allocate(w: SW, off: Any, ln: Any) -> None:
        allocate(w, off, ln, walk_alloc)

    add("kvm_gmem_allocate", ("offset", "len"), ("int", "int"),
        lambda k, a: z3.And(a[1] == k.N, z3.Or([a[0] == r * k.N for r in range(k.R)])),
        lambda s, off, ln: s.vm_op == VM_IDLE, b_allocate)

    if k.snp:
        def b_populate(w: SW, g: Any) -> None:
            ok, head, end = populate_check(k, w, g)
            with w.when(ok):
                assigned = w.rmp[g] != RMP_SHARED
                with w.when(z3.Not(assigned)):
                    st.host_write(k, w, g, DATA)
                    st.rmpupdate(k, w, g, 1, False)
                    w.upd("punched", lambda p, o: z3.If(st.at(k, p) == g, False, o))
                    if k.axes["preparedness"] == "none":
                        w.upd("uptodate", lambda p, o: z3.If(st.between(head, st.at(k, p), end),
                                                             True, o))
                    else:
                        mark_prepared(k, w, g, head, end, 0)
    else:
        def b_populate(w: SW, g: Any) -> None:
            ok, head, end = populate_check(k, w, g)
            with w.when(ok):
                set_vmm(w, VM_POPULATE, g)

    add("kvm_gmem_populate", ("gfn",), ("int",), _gfn_domain,
        lambda s, g: z3.And(z3.Not(s.launched), s.vm_op == VM_IDLE), b_populate)

    if k.tdx:
        def b_post(w: SW) -> None:
            g = w.pre.vm_lo
            o = w.order[g]
            head, end = st.head_of(k, o, g), st.end_of(k, o, g)
            w.upd("content", lambda p, o2: z3.If(st.at(k, p) == g, DATA, o2))
            w.upd("npt", lambda p, o2: z3.If(st.at(k, p) == g, NPT_4K, o2))
            w.upd("punched", lambda p, o2: z3.If(st.at(k, p) == g, False, o2))
            if k.axes["preparedness"] == "none":
                w.upd("uptodate", lambda p, o2: z3.If(st.between(head, st.at(k, p), end), True,
                                                      o2))
            else:
                mark_prepared(k, w, g, head, end, 0)
            set_vmm(w, VM_IDLE)

        add("tdx_gmem_post_populate", (), (), lambda k, a: z3.BoolVal(True),
            lambda s: z3.And(s.vm_op == VM_POPULATE, z3.BoolVal(not locked)), b_post)

    add("snp_launch_finish" if k.snp else "tdx_td_finalize", (), (),
        lambda k, a: z3.BoolVal(True),
        lambda s: z3.And(z3.Not(s.launched), s.vm_op == VM_IDLE),
        lambda w: w.put("launched", True))

    if k.axes["conversion"] == "vm-attributes":
        def b_attr(w: SW, g: Any, private: Any) -> None:
            with w.when(z3.Not(private)):
                st.zap(k, w, g, g + 1)
            w.upd("attr", lambda p, o: z3.If(st.at(k, p) == g, private, o))
            st.stale_inflight_fault(k, w)

        add("kvm_vm_set_mem_attributes", ("gfn", "private"), ("int", "bool"),
            lambda k, a: in_pages(k, a[0]),
            lambda s, g, private: z3.And(s.vm_op == VM_IDLE, s.attr[g] != private), b_attr)
    else:
        def g_convert(s: Any, g: Any, private: Any) -> Any:
            o = s.order[g]
            h = st.rs(k, g)
            v = _view(s)
            wait = z3.And(z3.Not(private), o > 0, st.extra_refs(k, v, h, h + k.N))
            if k.axes["refcount_gating"] == "safe-refcount-range" and restructures(k):
                # hugetlb.py:merge_would_spin
                spins = []
                for r in range(k.R):
                    reg = st.rpos(k, r)
                    others = st.region_all(k, [z3.Or(st.at(k, q) == g, s.attr[q])
                                               for q in reg])
                    pieces = st.region_all(k, [s.order[q] >= 0 for q in reg])
                    spins.append(z3.And(h == st.at(k, reg[0]), others, pieces,
                                        s.order[reg[0]] != k.HUGE))
                spin = z3.And(private, z3.Not(st.extra_refs(k, v, g, g + 1)), z3.Or(spins),
                              z3.Or(st.extra_refs(k, v, h, g),
                                    st.extra_refs(k, v, g + 1, h + k.N)))
                wait = z3.Or(wait, spin)
            return z3.And(s.vm_op == VM_IDLE, s.attr[g] != private, z3.Not(wait))

        def b_convert(w: SW, g: Any, private: Any) -> None:
            h = st.rs(k, g)
            with w.when(private):
                st.unmap_host(k, w, g, g + 1)
                if k.axes["refcount_gating"] == "safe-refcount-range":
                    again = z3.Not(st.safe_refcount(k, w, g, g + 1))
                else:
                    again = z3.Not(st.safe_refcount(k, w, h, h + k.N))
                with w.when(z3.Not(again)):
                    st.zap(k, w, g, g + 1)
                    w.upd("attr", lambda p, o: z3.If(st.at(k, p) == g, True, o))
                    for r in range(k.R):
                        reg = st.rpos(k, r)
                        allp = st.region_all(k, [w.attr[q] for q in reg])
                        with w.when(z3.And(h == st.at(k, reg[0]), allp)):
                            st.merge(k, w, reg[0])
                    st.stale_inflight_fault(k, w)
            with w.when(z3.Not(private)):
                with w.when(w.npt[g] == NPT_HUGE):
                    w.upd("npt", lambda p, o: z3.If(st.rs(k, p) == h, NPT_4K, o))
                st.zap(k, w, g, g + 1)
                o = w.order[g]
                with w.when(o > 0):
                    st.split_folio_to_order0(k, w, st.head_of(k, o, g), st.end_of(k, o, g))
                if k.snp and k.axes["convert_arch_hook"] == "rmp-shared":
                    with w.when(w.rmp[g] != RMP_SHARED):
                        with w.when(w.rmp[g] == RMP_2M):
                            st.psmash(k, w, g)
                        st.rmpupdate(k, w, g, RMP_SHARED, False)
                w.upd("attr", lambda p, o2: z3.If(st.at(k, p) == g, False, o2))
                st.stale_inflight_fault(k, w)

        add("kvm_gmem_convert", ("gfn", "private"), ("int", "bool"),
            lambda k, a: in_pages(k, a[0]), g_convert, b_convert)

        def b_hfault(w: SW, i: Any) -> None:
            ok, _, _ = get_folio(k, w, i, z3.BoolVal(True))
            with w.when(ok):
                w.upd("host", lambda p, o: z3.If(st.at(k, p) == i, HOST_MAPPED, o))

        add("kvm_gmem_fault_user_mapping", ("index",), ("int",), _gfn_domain,
            lambda s, i: z3.And(s.vm_op == VM_IDLE, z3.Not(s.attr[i]),
                                s.host[i] == HOST_NONE), b_hfault)

        def b_huw(w: SW, i: Any) -> None:
            if k.snp:
                w.fault(w.rmp[i] != RMP_SHARED, "user-rmp-#pf", i)
            w.upd("content", lambda p, o: z3.If(st.at(k, p) == i, DATA, o))

        add("host_user_write", ("index",), ("int",), _gfn_domain,
            lambda s, i: z3.And(z3.Or(s.host[i] == HOST_MAPPED, s.host[i] == HOST_GUP),
                                s.content[i] != DATA), b_huw)

    # ---- environment
    if k.spec_refs:
        # Compaction takes the reference only below pageblock order (order 0 here);
        # alloc_contig_range on a huge folio's head (model/actions.py).
        # model/actions.py:_ref_taker: the head of a folio whose order is in the range
        def ref_guard(orders: range) -> Any:
            def guard(s: Any, p: Any) -> Any:
                o = s.order[p]
                return z3.And(s.spec < 0, z3.Or([
                    z3.And(o == j, p % st.like(k, p, 1 << j) == 0 if j else True)
                    for j in orders]))
            return guard

        if not never_split(k):
            add("isolate_migratepages_block", ("pfn",), ("int",), _gfn_domain,
                ref_guard(range(0, k.HUGE)), lambda w, p: w.put("spec", p))
        if k.axes["allocation"] != "order0":
            add("alloc_contig_range", ("pfn",), ("int",), _gfn_domain,
                ref_guard(range(k.HUGE, k.HUGE + 1)), lambda w, p: w.put("spec", p))

        def b_put(w: SW) -> None:
            p = w.pre.spec
            w.put("spec", -1)
            st.put_extra_ref(k, w, p)

        add("folio_put", (), (), lambda k, a: z3.BoolVal(True), lambda s: s.spec >= 0, b_put)

    if k.snp:
        add("alloc_pages", ("pfn",), ("int",), _gfn_domain,
            lambda s, p: z3.And(s.rmp[p] != RMP_SHARED, s.order[p] < 0, s.held[p] < 0,
                                z3.Not(s.leaked[p])),
            lambda w, p: st.host_write(k, w, p))

    if k.gup_refs:
        add("pin_user_pages", ("index",), ("int",), _gfn_domain,
            lambda s, i: s.host[i] == HOST_MAPPED,
            lambda w, i: w.upd("host", lambda p, o: z3.If(st.at(k, p) == i, HOST_GUP, o)))

        def b_unpin(w: SW, i: Any) -> None:
            w.upd("host", lambda p, o: z3.If(st.at(k, p) == i,
                                             z3.If(o == HOST_GUP, w.sp.val(HOST_MAPPED),
                                                   w.sp.val(HOST_NONE)), o))
            st.put_extra_ref(k, w, i)

        add("unpin_user_page", ("index",), ("int",), _gfn_domain,
            lambda s, i: z3.Or(s.host[i] == HOST_GUP, s.host[i] == HOST_PINNED), b_unpin)

    out = []
    for a in model.actions:
        if a.name not in acts and a.symbolic is not None:
            acts[a.name] = plugin_action(k, model, a)
        if a.name not in acts:
            raise KeyError(f"action {a.name} has no Z3 encoding")
        sa = acts[a.name]
        if a.extensions:
            sa = extended(k, sa, a.extensions)
        for c in a.choices:
            sa = with_choice(k, sa, c)
        acts[a.name] = sa
        sa.modifies = a.modifies
        sa.environment = a.environment
        if sa.params != a.params:
            raise AssertionError(f"{a.name}: params differ")
        out.append(sa)
    extra = set(acts) - {a.name for a in model.actions}
    if extra:
        raise AssertionError(f"encodings without explicit actions: {sorted(extra)}")
    return out


# ------------------------------------------------------------------ plug-in forms
def _sort(vals: list[Any]) -> str:
    if all(isinstance(v, bool) for v in vals):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return "int"
    raise KeyError("an argument that is neither a bool nor an int has no Z3 encoding")


def _arg_val(x: Any, like: Any) -> Any:
    return z3.BoolVal(x) if isinstance(x, bool) else st.num(x, like)


def _domain_of(k: Any, model: Any, a: Any) -> tuple[Any, ...]:
    """The plug-in action's argument domain at ``k``'s sizes (its builder run again
    when the symbolic model is not at the explicit model's size)."""
    if k is model.k or (k.N, k.R) == (model.k.N, model.k.R):
        return a.domain
    from ..model.registry import ACTION_BUILDERS

    b = ACTION_BUILDERS[a.name](k)
    return b.domain if b is not None else ()


def plugin_action(k: Any, model: Any, a: Any) -> SymAction:
    """The Z3 form of a plug-in's new action: its ``make(..., symbolic=(sym_guard,
    sym_body))``, arguments bounded by the action's own domain (at ``k``'s size)."""
    sg, sb = a.symbolic
    n = len(a.params) - len(a.choices)     # the choices' arguments come after
    dom = tuple(dict.fromkeys(t[:n] for t in _domain_of(k, model, a)))
    sorts = tuple(_sort([t[i] for t in dom]) if dom else "int" for i in range(n))
    name = a.name

    def domain(k2: Any, args: list[Any]) -> Any:
        if not args:
            return z3.BoolVal(bool(dom))
        return z3.Or([z3.And([v == _arg_val(x, v) for v, x in zip(args, t, strict=True)])
                      for t in dom]) if dom else z3.BoolVal(False)

    def encode(s: SymState, args: list[Any]) -> tuple[Any, SymState]:
        w = SW(k, s)
        win = st.win(k)
        with win.scope(f"action:{name}") if win is not None else nullcontext():
            sb(k, w, *args)
            g = z3.And(s.f_kind == 0, sg(k, s, *args))
        return g, w.state()

    return SymAction(name, a.params[:n], sorts, domain, encode, frozenset())


def extended(k: Any, sa: SymAction, exts: tuple[Any, ...]) -> SymAction:
    """``sa`` with the plug-in extensions (extend_action) in order: each guard a
    conjunct over the pre-state; each ``before`` runs on the pre-state and the action on
    its result, each ``after`` on the action's result."""
    inner = sa.encode
    name = sa.name
    for sg, sbefore, safter, complete in exts:
        if not complete:
            raise KeyError(f"action {name} is extended by a plug-in without a symbolic "
                           "form")

        def encode(s: SymState, args: list[Any], inner: Any = inner, sg: Any = sg,
                   sbefore: Any = sbefore, safter: Any = safter) -> tuple[Any, SymState]:
            win = st.win(k)
            with win.scope(f"action:{name}") if win is not None else nullcontext():
                g = z3.And(s.f_kind == 0, sg(k, s, *args)) if sg is not None \
                    else z3.BoolVal(True)
                mid = s
                if sbefore is not None:
                    w = SW(k, s)
                    sbefore(k, w, *args)
                    mid = w.state()
            g0, post = inner(mid, args)
            if sbefore is not None:
                g0 = inner(s, args)[0]   # the guard is the action's on the pre-state
            if safter is not None:
                with win.scope(f"action:{name}") if win is not None else nullcontext():
                    w = SW(k, post)
                    safter(k, w, *args)
                    post = w.state()
            return z3.And(g0, g), post

        inner = encode
    return SymAction(name, sa.params, sa.sorts, sa.domain, inner, sa.modifies,
                     sa.environment)


def with_choice(k: Any, sa: SymAction, c: Any) -> SymAction:
    """``sa`` with one more argument, the outcome of the plug-in choice ``c`` (a Z3
    variable that the action's steps read with ``w.choose(c.name)``)."""
    vals = list(c.values)
    sort = _sort(vals)
    inner_enc, inner_dom = sa.encode, sa.domain
    n = len(sa.params)

    def domain(k2: Any, args: list[Any]) -> Any:
        x = args[n]
        return z3.And(inner_dom(k2, args[:n]), z3.Or([x == _arg_val(v, x) for v in vals]))

    def encode(s: SymState, args: list[Any]) -> tuple[Any, SymState]:
        chosen = k.__dict__.setdefault("sym_choice", {})
        prev = chosen.get(c.name)
        chosen[c.name] = args[n]
        try:
            return inner_enc(s, args[:n])
        finally:
            if prev is None:
                chosen.pop(c.name, None)
            else:
                chosen[c.name] = prev

    return SymAction(sa.name, sa.params + (c.name,), sa.sorts + (sort,), domain, encode,
                     sa.modifies, sa.environment)


class _view:
    """A SymState seen through the SW read interface (for helpers in guards)."""

    def __init__(self, s: SymState) -> None:
        self.s = s

    def __getattr__(self, n: str) -> Any:
        return getattr(self.s, n)


def transition(act: SymAction, pre: SymState, post: SymState, args: list[Any]) -> Any:
    """guard(pre, args) and post = effect(pre, args), with every field outside the
    action's modifies unchanged (the frame, generated from ``modifies``)."""
    guard, eff = act.encode(pre, args)
    mod = sym_fields(act.modifies)
    sp = pre.space
    parts = [guard]
    for name, val in eff.f.items():
        target = val if name in mod else pre.f[name]
        if isinstance(val, z3.ExprRef) or isinstance(val, bool | int):
            parts.append(post.f[name] == target)
        else:
            parts.append(sp.equal(post.f[name], target))
    return z3.And(parts)


_ = (HOST_NONE, HOST_PINNED)
