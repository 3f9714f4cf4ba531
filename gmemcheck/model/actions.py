"""The actions of the guest_memfd model, each named after the kernel function it models.

An action is built for a design by its builder (registered with
:func:`.registry.action`); a builder returns None when the design has no such step
(for example ``kvm_gmem_mark_range_unprepared`` without an inode bitmap). Every
action's ``apply`` runs its body on a :class:`Work`; ``explain`` runs the same body
with a log for traces. Threads: the vCPU (``kvm_gmem_get_pfn`` ... ``kvm_tdp_mmu_map``,
guest accesses), the VMM (ioctls and fallocate, one at a time; multi-step syscalls
keep their progress in ``vmm``), and the environment (a speculative page walker,
other host users, GUP), whose steps do not count as progress for the deadlock check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..checker.core import Action, Outcome
from . import gmem, hugetlb, kvm
from .gmem import huge_attempt
from .mm import put_extra_ref, span_at
from .registry import THREADS, Thread, action, add_step
from .snp import host_write
from .state import (
    HOST_GUP,
    HOST_MAPPED,
    HOST_NONE,
    HOST_PINNED,
    NPT_4K,
    NPT_NONE,
    OP_POPULATE,
    OP_PUNCH,
    PUNCH_BEGUN,
    PUNCH_TRUNCATED,
    PUNCH_UNPREPARED,
    RMP_2M,
    RMP_SHARED,
)
from .work import Work, memoized

Body = Callable[..., None]

PAGECACHE = frozenset({"order", "uptodate", "dirty", "private"})
FREEING = frozenset({"held", "content"})
RMP = frozenset({"rmp", "dm4k"})


# The built-in threads; their progress is the thread fields vcpu and vmm (state.py).
THREADS["vcpu"] = Thread("vcpu", "the vCPU: a private fault, guest accesses", "vcpu")
THREADS["vmm"] = Thread("vmm", "the VMM: ioctls and fallocate, one at a time", "vmm")

# Decisions inside the actions, reachable as named steps (a design or plug-in replaces or
# wraps one without rewriting the action and its modifies set).
add_step("kvm_gmem_get_pfn", gmem.get_pfn,
         "guest_memfd.c:kvm_gmem_get_pfn, the body of the vCPU fault's first step: get the "
         "folio, prepare it, take the reference the fault holds "
         "(k, w, gfn, huge_ok; DOMAIN.md §2.9)")
add_step("kvm_mmu_max_mapping_level", kvm.max_mapping_huge,
         "mmu.c:kvm_mmu_max_mapping_level for a private fault: True when the gfn may be "
         "mapped with a huge SPTE, False for 4K (k, s, gfn; reads the state; §1.3, §2.12)")
add_step("kvm_vm_set_mem_attributes", kvm.set_memory_attributes,
         "kvm_main.c:kvm_vm_set_mem_attributes for one gfn: zap, change the attribute "
         "(k, w, gfn, private; §2.14)")
add_step("kvm_gmem_convert", hugetlb.convert,
         "guest_memfd.c:kvm_gmem_convert (KVM_SET_MEMORY_ATTRIBUTES2) of one gfn: split "
         "or merge, "
         "RMP and host-mapping changes (k, w, gfn, private; §2.14 HT)")


def make(k: Any, name: str, params: tuple[str, ...], domain: list[tuple[Any, ...]],
         guard: Callable[[Any, tuple[Any, ...]], bool], body: Body, modifies: frozenset[str],
         doc: str, environment: bool = False, symbolic: Any = None,
         memo: bool = True) -> Action:
    """An action running ``body(k, w, *args)`` on a :class:`Work`. With ``memo`` (the
    built-in actions) ``apply`` is memoized on the fields the body reads
    (:func:`.work.memoized`), as long as the model's memo is on (``k.memo``);
    ``gmemcheck.api.make`` builds a plug-in's actions with ``memo=False``.
    ``symbolic``: the action's Z3 form ``(sym_guard, sym_body)``, ``sym_guard(k, s,
    *args)`` a Z3 Bool over a symbolic state and ``sym_body(k, w, *args)`` the body on
    a symbolic work (gmemcheck/symbolic/work.py:SW)."""
    if symbolic is not None and (not isinstance(symbolic, tuple) or len(symbolic) != 2
                                 or not all(callable(f) for f in symbolic)):
        raise ValueError(f"action {name}: symbolic must be (sym_guard, sym_body)")

    def apply(s: Any, a: tuple[Any, ...]) -> Any:
        w = Work(s)
        body(k, w, *a)
        return w.done()

    if memo and getattr(k, "memo", None) is not None and k.memo.on:
        apply = memoized(body, k, k.memo)

    def explain(s: Any, a: tuple[Any, ...]) -> Outcome:
        w = Work(s, log=True)
        body(k, w, *a)
        return Outcome(w.ret, tuple(w.log or ()))

    return Action(name, params, tuple(domain), guard, apply, frozenset(modifies), doc,
                  explain=explain, environment=environment, symbolic=symbolic)


def bools(extra: bool) -> tuple[bool, ...]:
    return (False, True) if extra else (False,)


def can_fail_huge(k: Any) -> bool:
    return bool(k.axes["huge_alloc_may_fail"]) and k.axes["allocation"] in (
        "thp-fallback", "huge-only")


def punch_ranges(k: Any) -> list[tuple[int, int]]:
    return [(lo, hi - lo) for lo in range(k.P) for hi in range(lo + 1, k.P + 1)]


def never_split(k: Any) -> bool:
    """Every folio of the design stays of pageblock order: huge-only allocation and a
    partial punch that never splits (rejected, or zeroed in place)."""
    return k.axes["allocation"] == "huge-only" and k.axes["partial_punch"] in (
        "reject", "zero-in-place")


def vmm_in(s: Any, op: str, pc: str | None = None) -> bool:
    vm = s.vmm
    return bool(vm) and vm[0] == op and (pc is None or vm[3] == pc)


# ====================================================================== vCPU
@action("kvm_gmem_get_pfn")
def _get_pfn(k: Any) -> Action:
    locked = k.axes["fault_locking"] == "invalidate-shared"

    def guard(s: Any, a: tuple[int, bool]) -> bool:
        gfn, huge_ok = a
        if not s.launched or s.vcpu or not s.attr[gfn] or s.npt[gfn] != NPT_NONE:
            return False
        if locked and k.invalidate_lock_exclusive(s):
            return False
        return huge_ok or huge_attempt(k, s, gfn)

    def body(k: Any, w: Work, gfn: int, huge_ok: bool) -> None:
        if locked:
            w.event("filemap_invalidate_lock_shared (RFC patch 3)")
        k.kvm_gmem_get_pfn(w, gfn, huge_ok)

    dom = [(g, ok) for g in range(k.P) for ok in ((True, False) if can_fail_huge(k) else (True,))]
    return make(k, "kvm_gmem_get_pfn", ("gfn", "huge_ok"), dom, guard, body,
                PAGECACHE | RMP | {"prepared", "content", "vcpu", "punched", "fault"},
                gmem.get_pfn.__doc__ or "")


@action("kvm_tdp_mmu_map")
def _map(k: Any) -> Action:
    def guard(s: Any, a: tuple[()]) -> bool:
        return bool(s.vcpu)

    return make(k, "kvm_tdp_mmu_map", (), [()], guard, lambda k, w: kvm.kvm_tdp_mmu_map(k, w),
                frozenset({"npt", "dirty", "vcpu"}) | FREEING, kvm.kvm_tdp_mmu_map.__doc__ or "")


@action("guest_write")
def _guest_write(k: Any) -> Action:
    def guard(s: Any, a: tuple[int]) -> bool:
        g = a[0]
        if not s.launched or s.vcpu or s.npt[g] == NPT_NONE or s.content[g] == 2:
            return False
        if k.snp:
            r = s.rmp[g]
            return r != RMP_SHARED and not (r == RMP_2M and s.npt[g] == NPT_4K)
        return True

    return make(k, "guest_write", ("gfn",), [(g,) for g in range(k.P)], guard,
                lambda k, w, g: kvm.guest_write(k, w, g), frozenset({"content"}),
                kvm.guest_write.__doc__ or "")


@action("sev_handle_rmp_fault")
def _rmp_fault(k: Any) -> Action | None:
    if not k.snp or k.axes["allocation"] == "order0":
        return None

    def guard(s: Any, a: tuple[int]) -> bool:
        g = a[0]
        return s.launched and not s.vcpu and s.npt[g] == NPT_4K and s.rmp[g] == RMP_2M

    return make(k, "sev_handle_rmp_fault", ("gfn",), [(g,) for g in range(k.P)], guard,
                lambda k, w, g: kvm.sev_handle_rmp_fault(k, w, g), frozenset({"rmp", "npt"}),
                kvm.sev_handle_rmp_fault.__doc__ or "")


# ====================================================================== VMM: punch
@action("kvm_gmem_punch_hole")
def _punch(k: Any) -> Action:
    aligned_only = k.axes["partial_punch"] in ("reject", "hugetlb")

    def guard(s: Any, a: tuple[int, int]) -> bool:
        return not s.vmm

    def body(k: Any, w: Work, offset: int, length: int) -> None:
        lo, hi = offset, offset + length
        if aligned_only and (lo % k.N or hi % k.N):
            w.event("partial huge page punch rejected: -EINVAL")
            w.ret = gmem.EINVAL
            return
        w.event("filemap_invalidate_lock; kvm_gmem_invalidate_begin")
        w.put("vmm", (OP_PUNCH, lo, hi, PUNCH_BEGUN, 0))
        kvm.zap(k, w, lo, hi, "kvm_gmem_invalidate_begin")
        w.ret = 0

    return make(k, "kvm_gmem_punch_hole", ("offset", "len"), punch_ranges(k), guard, body,
                frozenset({"vmm", "npt"}) | FREEING,
                "guest_memfd.c:kvm_gmem_punch_hole, first step: fallocate(PUNCH_HOLE|KEEP_SIZE) "
                "takes filemap_invalidate_lock and runs kvm_gmem_invalidate_begin, which zaps "
                "the SPTEs of [offset, offset+len) (a huge SPTE overlapping it whole) and marks "
                "the range as being invalidated (DOMAIN.md §2.5). Designs that only punch whole "
                "huge pages return -EINVAL for a partial one (§2.5 HT, AH).")


@action("truncate_inode_pages_range")
def _truncate(k: Any) -> Action:
    rmp_fail = k.snp and bool(k.axes["rmp_make_shared_may_fail"])
    split_fail = k.axes["truncate"] == "nonuniform" and bool(k.axes["split_may_fail"])
    own_punched = k.axes["partial_punch"] in ("hugetlb", "hugetlb-zero")

    def guard(s: Any, a: tuple[bool, bool]) -> bool:
        return vmm_in(s, OP_PUNCH, PUNCH_BEGUN)

    def body(k: Any, w: Work, rmp_fails: bool, split_fails: bool) -> None:
        _, lo, hi, _, _ = w.get("vmm")
        w.opt["rmp_fail"] = rmp_fails
        w.opt["split_fail"] = split_fails
        if not own_punched:
            pun = w.arr("punched")
            for i in range(lo, hi):
                pun[i] = True
        k.truncate_inode_pages_range(w, lo, hi)
        ret = w.ret or 0
        w.put("vmm", (OP_PUNCH, lo, hi, PUNCH_TRUNCATED, ret))
        w.ret = ret

    dom = [(r, sp) for r in bools(rmp_fail) for sp in bools(split_fail)]
    return make(k, "truncate_inode_pages_range", ("rmp_make_shared_fails", "second_split_fails"),
                dom, guard, body,
                PAGECACHE | FREEING | RMP | {"vmm", "punched", "fault", "host", "leaked"},
                "kvm_gmem_punch_hole, second step: mm/truncate.c:truncate_inode_pages_range over "
                "the punched pages (DOMAIN.md §2.6): whole folios go first, a partially covered "
                "large folio is split (truncate_inode_partial_folio, split_folio); removal calls "
                "kvm_gmem_free_folio -> sev_gmem_invalidate. The arguments choose the "
                "nondeterministic failures: rmp_make_shared failing (§3.6) and the second, "
                "ignored split failing (§3.8).")


@action("kvm_gmem_mark_range_unprepared")
def _unprepare(k: Any) -> Action | None:
    if k.axes["preparedness"] != "bitmap":
        return None

    def guard(s: Any, a: tuple[()]) -> bool:
        return vmm_in(s, OP_PUNCH, PUNCH_TRUNCATED)

    def body(k: Any, w: Work) -> None:
        op, lo, hi, _, ret = w.get("vmm")
        k.kvm_gmem_mark_range_unprepared(w, lo, hi)
        w.put("vmm", (op, lo, hi, PUNCH_UNPREPARED, ret))

    return make(k, "kvm_gmem_mark_range_unprepared", (), [()], guard, body,
                frozenset({"prepared", "vmm"}),
                "guest_memfd.c:kvm_gmem_punch_hole, third step (PB/RFC): "
                "kvm_gmem_mark_range_unprepared clears the prepared bits of the punched range, "
                "whether or not its folios were freed (DOMAIN.md §2.5 step 4).")


@action("kvm_gmem_invalidate_end")
def _invalidate_end(k: Any) -> Action:
    last = PUNCH_UNPREPARED if k.axes["preparedness"] == "bitmap" else PUNCH_TRUNCATED

    def guard(s: Any, a: tuple[()]) -> bool:
        return vmm_in(s, OP_PUNCH, last)

    def body(k: Any, w: Work) -> None:
        ret = w.get("vmm")[4]
        w.put("vmm", ())
        kvm.stale_inflight_fault(w)
        w.ret = ret

    return make(k, "kvm_gmem_invalidate_end", (), [()], guard, body, frozenset({"vmm", "vcpu"}),
                "guest_memfd.c:kvm_gmem_punch_hole, last step: kvm_gmem_invalidate_end "
                "(kvm_main.c:kvm_mmu_invalidate_end "
                "bumps mmu_invalidate_seq, so a fault in flight retries), then "
                "filemap_invalidate_unlock; the syscall returns (DOMAIN.md §2.5).")


# ====================================================================== VMM: other ioctls
@action("kvm_gmem_allocate")
def _allocate(k: Any) -> Action:
    def guard(s: Any, a: tuple[int, int]) -> bool:
        return not s.vmm

    dom = [(r * k.N, k.N) for r in range(k.R)]
    return make(k, "kvm_gmem_allocate", ("offset", "len"), dom, guard,
                lambda k, w, off, ln: gmem.allocate(k, w, off, off + ln),
                PAGECACHE | {"punched", "host"}, gmem.allocate.__doc__ or "")


@action("kvm_gmem_populate")
def _populate(k: Any) -> Action:
    def guard(s: Any, a: tuple[int]) -> bool:
        return not s.launched and not s.vmm

    if k.snp:
        return make(k, "kvm_gmem_populate", ("gfn",), [(g,) for g in range(k.P)], guard,
                    lambda k, w, g: gmem.snp_populate(k, w, g),
                    PAGECACHE | RMP | {"prepared", "content", "punched", "fault", "host"},
                    gmem.snp_populate.__doc__ or "")

    def body(k: Any, w: Work, g: int) -> None:
        r = gmem.populate_check(k, w, g)
        if isinstance(r, int):
            w.ret = gmem.EIO
            return
        w.event("filemap_invalidate_lock (exclusive), folio reference held")
        w.put("vmm", (OP_POPULATE, g))
        w.ret = 0

    return make(k, "kvm_gmem_populate", ("gfn",), [(g,) for g in range(k.P)], guard, body,
                PAGECACHE | {"vmm", "host", "punched"},
                "KVM_TDX_INIT_MEM_REGION for one page: guest_memfd.c:kvm_gmem_populate takes "
                "invalidate_lock exclusive, gets the folio and keeps a reference while it calls "
                "tdx_gmem_post_populate (DOMAIN.md §2.13, S-4).")


@action("tdx_gmem_post_populate")
def _tdx_post_populate(k: Any) -> Action | None:
    if not k.tdx:
        return None
    locked = k.axes["fault_locking"] == "invalidate-shared"

    def guard(s: Any, a: tuple[()]) -> bool:
        # kvm_tdp_map_page -> kvm_gmem_get_pfn: with RFC patch 3 it wants
        # invalidate_lock shared, which this thread holds exclusive (S-4).
        return vmm_in_populate(s) and not locked

    def body(k: Any, w: Work) -> None:
        g = w.get("vmm")[1]
        span = span_at(w, g)
        assert span is not None
        w.arr("content")[g] = 2
        w.arr("npt")[g] = NPT_4K
        w.arr("punched")[g] = False
        if k.axes["preparedness"] == "none":
            up = w.arr("uptodate")
            for i in range(span[0], span[1]):
                up[i] = True
        else:
            k.kvm_gmem_mark_prepared(w, g, span[0], span[1], 0)
        w.event(f"kvm_tdp_map_page + TDH.MEM.PAGE.ADD(gfn {g}); filemap_invalidate_unlock")
        w.put("vmm", ())
        w.ret = 0

    return make(k, "tdx_gmem_post_populate", (), [()], guard, body,
                frozenset({"content", "npt", "punched", "vmm", "uptodate", "prepared",
                           "private"}),
                "arch/x86/kvm/vmx/tdx.c:tdx_gmem_post_populate: kvm_tdp_map_page faults the "
                "page in through kvm_gmem_get_pfn, then TDH.MEM.PAGE.ADD copies the source into "
                "the TD page; with RFC patch 3 kvm_gmem_get_pfn needs invalidate_lock shared, "
                "held exclusive by this same thread: it never proceeds (DOMAIN.md §2.13, S-4).")


def vmm_in_populate(s: Any) -> bool:
    return bool(s.vmm) and s.vmm[0] == OP_POPULATE


@action("launch_finish")
def _launch_finish(k: Any) -> Action:
    name = "snp_launch_finish" if k.snp else "tdx_td_finalize"

    def guard(s: Any, a: tuple[()]) -> bool:
        return not s.launched and not s.vmm

    def body(k: Any, w: Work) -> None:
        w.put("launched", True)
        w.ret = 0

    return make(k, name, (), [()], guard, body, frozenset({"launched"}),
                "KVM_SEV_SNP_LAUNCH_FINISH (svm/sev.c:snp_launch_finish) / KVM_TDX_FINALIZE_VM "
                "(vmx/tdx.c:tdx_td_finalize): the launch ends, populate is no longer possible "
                "and the vCPU may run (DOMAIN.md §2.13, S-0 step 4).")


@action("kvm_vm_set_mem_attributes")
def _attributes(k: Any) -> Action | None:
    if k.axes["conversion"] != "vm-attributes":
        return None

    def guard(s: Any, a: tuple[int, bool]) -> bool:
        return not s.vmm and bool(s.attr[a[0]]) != a[1]

    dom = [(g, p) for g in range(k.P) for p in (False, True)]
    return make(k, "kvm_vm_set_mem_attributes", ("gfn", "private"), dom, guard,
                lambda k, w, g, p: k.kvm_vm_set_mem_attributes(w, g, p),
                frozenset({"attr", "npt", "vcpu"}) | FREEING,
                kvm.set_memory_attributes.__doc__ or "")


@action("kvm_gmem_convert")
def _convert(k: Any) -> Action | None:
    if k.axes["conversion"] != "in-place":
        return None

    def guard(s: Any, a: tuple[int, bool]) -> bool:
        g, private = a
        if s.vmm or bool(s.attr[g]) == private:
            return False
        if not private and s.order[g] > 0:
            # to shared: the split of the huge folio spins until its refcount is safe
            h = g - g % (1 << s.order[g])
            return k.extra_refs(s, h, h + (1 << s.order[g])) == 0
        # to private: the merge may spin on another piece's reference (waits)
        return private is False or not hugetlb.merge_would_spin(k, s, g)

    dom = [(g, p) for g in range(k.P) for p in (False, True)]
    return make(k, "kvm_gmem_convert", ("gfn", "private"), dom, guard,
                lambda k, w, g, p: k.kvm_gmem_convert(w, g, p),
                PAGECACHE | FREEING | RMP | {"attr", "npt", "vcpu", "host", "fault"},
                hugetlb.convert.__doc__ or "")


@action("kvm_gmem_fault_user_mapping")
def _host_fault(k: Any) -> Action | None:
    if k.axes["conversion"] != "in-place":
        return None

    def guard(s: Any, a: tuple[int]) -> bool:
        i = a[0]
        return not s.vmm and not s.attr[i] and s.host[i] == HOST_NONE

    return make(k, "kvm_gmem_fault_user_mapping", ("index",), [(i,) for i in range(k.P)],
                guard, lambda k, w, i: hugetlb.host_fault(k, w, i),
                PAGECACHE | {"host", "punched"}, hugetlb.host_fault.__doc__ or "")


@action("host_user_write")
def _host_user_write(k: Any) -> Action | None:
    if k.axes["conversion"] != "in-place":
        return None

    def guard(s: Any, a: tuple[int]) -> bool:
        i = a[0]
        return s.host[i] in (HOST_MAPPED, HOST_GUP) and s.content[i] != 2

    return make(k, "host_user_write", ("index",), [(i,) for i in range(k.P)], guard,
                lambda k, w, i: hugetlb.host_user_write(k, w, i), frozenset({"content", "fault"}),
                hugetlb.host_user_write.__doc__ or "")


# ====================================================================== environment
def _ref_taker(k: Any, name: str, orders: range, event: str, doc: str) -> Action:
    """An environment walker that takes a transient folio reference (folio_try_get) on
    the head of a folio whose order lies in ``orders`` and keeps it in ``spec``."""
    def guard(s: Any, a: tuple[int]) -> bool:
        p = a[0]
        o = s.order[p]
        return s.spec < 0 and o in orders and p % (1 << o) == 0

    def body(k: Any, w: Work, p: int) -> None:
        w.put("spec", p)
        w.event(event.format(pfn=p))

    return make(k, name, ("pfn",), [(p,) for p in range(k.P)], guard, body,
                frozenset({"spec"}), doc, environment=True)


@action("isolate_migratepages_block")
def _spec_get(k: Any) -> Action | None:
    if not k.spec_refs or never_split(k):
        return None  # every folio is of pageblock order: compaction skips them all
    # Compaction skips compound pages at or above pageblock order (here the huge order)
    # before taking a reference: skip_isolation_on_order (issue 13).
    return _ref_taker(
        k, "isolate_migratepages_block", range(0, k.HUGE),
        "compaction: folio_try_get on the folio at pfn {pfn} (rejected later: unmovable "
        "mapping)",
        "mm/compaction.c:isolate_migratepages_block: a compaction PFN walker takes a "
        "speculative reference (folio_try_get) on a guest_memfd folio below "
        "pageblock order before rejecting it as unmovable (DOMAIN.md §1.1, §3.2 "
        "item 3; docs/kernel-notes.md).")


@action("alloc_contig_range")
def _contig_get(k: Any) -> Action | None:
    if not k.spec_refs or k.axes["allocation"] == "order0":
        return None  # no folio of pageblock order or above to take a reference on
    return _ref_taker(
        k, "alloc_contig_range", range(k.HUGE, k.HUGE + 1),
        "alloc_contig_range: folio_try_get on the huge folio at pfn {pfn} "
        "(cc->alloc_contig; rejected later: unmovable mapping)",
        "mm/page_alloc.c:alloc_contig_range -> mm/compaction.c:"
        "isolate_migratepages_range -> isolate_migratepages_block with "
        "cc->alloc_contig (gigantic page allocation, virtio-mem): the only walker "
        "that takes a speculative reference on a folio at or above pageblock order "
        "(DOMAIN.md §1.1, §3.2 item 3, as corrected in docs/kernel-notes.md).")


@action("folio_put")
def _spec_put(k: Any) -> Action | None:
    if not k.spec_refs:
        return None

    def guard(s: Any, a: tuple[()]) -> bool:
        return s.spec >= 0

    def body(k: Any, w: Work) -> None:
        p = w.get("spec")
        w.put("spec", -1)
        put_extra_ref(k, w, p)

    return make(k, "folio_put", (), [()], guard, body, frozenset({"spec"}) | FREEING,
                "isolate_migratepages_block (compaction or alloc_contig_range) drops its "
                "speculative reference (mm/swap.c:folio_put); if the folio was removed from "
                "the page cache meanwhile, it is freed now (DOMAIN.md §1.1, §2.8).",
                environment=True)


@action("alloc_pages")
def _reuse(k: Any) -> Action | None:
    if not k.snp:
        return None

    def guard(s: Any, a: tuple[int]) -> bool:
        p = a[0]
        return (s.rmp[p] != RMP_SHARED and s.order[p] < 0 and s.held[p] < 0
                and not s.leaked[p])

    return make(k, "alloc_pages", ("pfn",), [(p,) for p in range(k.P)], guard,
                lambda k, w, p: host_write(k, w, p, "another host user of the freed page"),
                frozenset({"content", "fault"}),
                "mm/page_alloc.c:alloc_pages: another host user allocates a page freed by "
                "guest_memfd and "
                "writes it (DOMAIN.md §3.6). Offered only for a freed page the RMP still "
                "assigns: elsewhere the write changes nothing the model tracks.",
                environment=True)


@action("pin_user_pages")
def _gup(k: Any) -> Action | None:
    if not k.gup_refs:
        return None

    def guard(s: Any, a: tuple[int]) -> bool:
        return s.host[a[0]] == HOST_MAPPED

    def body(k: Any, w: Work, i: int) -> None:
        w.arr("host")[i] = HOST_GUP

    return make(k, "pin_user_pages", ("index",), [(i,) for i in range(k.P)], guard, body,
                frozenset({"host"}),
                "mm/gup.c:pin_user_pages: a host user (vhost, a device) pins a shared page it "
                "has mapped: a long-lived reference that blocks splits and conversion "
                "(DOMAIN.md §2.14, S-7).", environment=True)


@action("unpin_user_page")
def _ungup(k: Any) -> Action | None:
    if not k.gup_refs:
        return None

    def guard(s: Any, a: tuple[int]) -> bool:
        return s.host[a[0]] in (HOST_GUP, HOST_PINNED)

    def body(k: Any, w: Work, i: int) -> None:
        a = w.arr("host")
        a[i] = HOST_MAPPED if a[i] == HOST_GUP else HOST_NONE
        put_extra_ref(k, w, i)

    return make(k, "unpin_user_page", ("index",), [(i,) for i in range(k.P)], guard, body,
                frozenset({"host"}) | FREEING,
                "mm/gup.c:unpin_user_page: the pin is dropped (DOMAIN.md §2.14, S-7 step 6).",
                environment=True)
