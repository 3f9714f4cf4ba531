"""The HugeTLB / in-place conversion design (DOMAIN.md §2.3 HT, §2.5 HT, §2.14 HT, S-7).

Source: the later guest_memfd.c with ``gmem_hugetlb_alloc_folio``,
``__maybe_split_fresh_folio``, ``merge_truncate_range``, ``kvm_gmem_has_safe_refcount``
and ``kvm_gmem_convert`` (DOMAIN.md §6 S7, S8). Huge folios come from a reserved pool;
a range that is not entirely private is kept as order-0 folios; conversion splits to
order 0 on to-shared and merges back on to-private; a punch must cover whole huge
pages and fails with -EAGAIN while a folio holds more than its safe refcount. Shared
pages can be mmapped by the host, and a host user may pin them with GUP.

Whether SNP gets an arch hook (RMP -> shared) when a page is converted to shared in
place was not found in the source read (§2.14 [U]); it is the axis
``convert_arch_hook``.
"""

from __future__ import annotations

from typing import Any

from .kvm import stale_inflight_fault, zap
from .mm import folios_in, span_at
from .registry import step
from .snp import psmash, rmp_make_shared
from .state import (
    DATA,
    HOST_GUP,
    HOST_MAPPED,
    HOST_NONE,
    HOST_PINNED,
    NPT_4K,
    NPT_HUGE,
    RMP_2M,
    RMP_SHARED,
)
from .work import Work

EAGAIN = -11


@step("unmap_host", "mm/memory.c:unmap_mapping_pages (or mm/huge_memory.c:unmap_folio in a "
      "split): unmap host userspace PTEs of pages [lo, hi); GUP pins stay (DOMAIN.md §2.14)")
def unmap_host(k: Any, w: Work, lo: int, hi: int) -> None:
    host = w.get("host")
    if not any(host[i] in (HOST_MAPPED, HOST_GUP) for i in range(lo, hi)):
        return
    a = w.arr("host")
    for i in range(lo, hi):
        if a[i] == HOST_MAPPED:
            a[i] = HOST_NONE
        elif a[i] == HOST_GUP:
            a[i] = HOST_PINNED
    w.event(f"unmap_mapping_pages(index {lo}..{hi - 1})")


def safe_refcount(k: Any, w: Work, lo: int, hi: int) -> bool:
    """kvm_gmem_has_safe_refcount: every folio in the range holds only the page cache's
    references and the caller's (refcount == nr_pages + 1) once host PTEs are gone."""
    if k.axes["refcount_gating"] not in ("safe-refcount", "safe-refcount-range"):
        return True
    from .mm import w_state

    return k.extra_refs(w_state(w), lo, hi) == 0


def restructures(k: Any) -> bool:
    """Folios are merged back to the huge order (kvm_gmem_restructure): only HugeTLB
    guest_memfd, whose huge pages come from a reserved pool and stay physically one
    huge page however they are split; order-0 folios from the buddy allocator are not
    contiguous and are never folded into a huge folio (in-place conversion or the
    HugeTLB truncate on another allocation only drop or keep them)."""
    return k.axes["allocation"] == "hugetlb"


def merge(k: Any, w: Work, lo: int) -> None:
    """Restructure the folios of the huge range at ``lo`` back into one huge folio
    (kvm_gmem_restructure -> merge): prep_compound_page on the first page, so the
    merged folio keeps the first page's flags and the others' are dropped
    (docs/kernel-notes.md, HT Q2)."""
    if not restructures(k):
        return
    hi = lo + k.N
    order = w.get("order")
    if order[lo] == k.HUGE or any(order[i] < 0 for i in range(lo, hi)):
        return
    o, up, di = w.arr("order"), w.arr("uptodate"), w.arr("dirty")
    u, d = up[lo], di[lo]
    for i in range(lo, hi):
        o[i] = k.HUGE
        up[i] = u
        di[i] = d
    w.event(f"merge folios of index {lo}..{hi - 1} into one huge folio")


@step("merge_truncate_range", "HT guest_memfd.c:merge_truncate_range(require_merge): unmap "
      "host mappings, "
      "-EAGAIN unless every folio has a safe refcount, merge back to the huge order, then "
      "filemap_remove_folio each whole folio (§2.5 HT)")
def merge_truncate_range(k: Any, w: Work, lo: int, hi: int) -> None:
    k.unmap_host(w, lo, hi)
    if not safe_refcount(k, w, lo, hi):
        w.event("merge_truncate_range: a folio has an unsafe refcount: -EAGAIN")
        w.ret = EAGAIN
        return
    pun = w.arr("punched")
    for i in range(lo, hi):
        pun[i] = True
    for r in range(lo, hi, k.N):
        merge(k, w, r)
    for h, e in folios_in(w, lo, hi):
        k.filemap_remove_folio(w, h, e)


def merge_would_spin(k: Any, s: Any, gfn: int) -> bool:
    """``refcount_gating = "safe-refcount-range"``: converting ``gfn`` to private passes
    the check on its own page, makes the whole huge range private, and the merge then
    finds another piece with an unexpected reference: filemap_remove_folio_for_
    restructuring spins on folio_ref_freeze with a WARN_ONCE until it is dropped
    (HugeTLB series guest_memfd.c; docs/kernel-notes.md). The caller waits."""
    if k.axes["refcount_gating"] != "safe-refcount-range" or not restructures(k):
        return False
    h = gfn - gfn % k.N
    if k.extra_refs(s, gfn, gfn + 1):
        return False                                # -EAGAIN, not a spin
    if any(not s.attr[i] for i in range(h, h + k.N) if i != gfn):
        return False                                # no merge
    if s.order[h] == k.HUGE or any(s.order[i] < 0 for i in range(h, h + k.N)):
        return False
    return bool(k.extra_refs(s, h, gfn) or k.extra_refs(s, gfn + 1, h + k.N))


def convert(k: Any, w: Work, gfn: int, private: bool) -> None:
    """KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd fd for one page
    (guest_memfd.c:kvm_gmem_convert, DOMAIN.md §2.14 HT). To shared: split private
    stage-2 leaves, zap the page, split its folio to order 0, and (axis
    convert_arch_hook) make the RMP entry shared. To private: unmap host mappings,
    -EAGAIN unless every folio of the huge range has a safe refcount, zap, merge back to
    huge if the whole range is then private."""
    attr = w.get("attr")
    if bool(attr[gfn]) == private:
        w.ret = 0
        return
    h = gfn - gfn % k.N
    if private:
        k.unmap_host(w, gfn, gfn + 1)
        # kvm_gmem_convert_should_proceed checks the converted range; the model's
        # stricter reading checks the whole huge range (axis refcount_gating).
        lo, hi = (gfn, gfn + 1) if k.axes["refcount_gating"] == "safe-refcount-range" \
            else (h, h + k.N)
        if not safe_refcount(k, w, lo, hi):
            w.event(f"kvm_gmem_convert: unsafe refcount in index {lo}..{hi - 1}: -EAGAIN")
            w.ret = EAGAIN
            return
        zap(k, w, gfn, gfn + 1, "kvm_gmem_convert")
        w.arr("attr")[gfn] = True
        if all(w.get("attr")[i] for i in range(h, h + k.N)):
            merge(k, w, h)
    else:
        npt = w.get("npt")
        if npt[gfn] == NPT_HUGE:
            a = w.arr("npt")
            for g in k.region_span(gfn):
                a[g] = NPT_4K
            w.event(f"kvm_gmem_split_private: huge SPTE over gfn {h}..{h + k.N - 1} split")
        zap(k, w, gfn, gfn + 1, "kvm_gmem_convert")
        span = span_at(w, gfn)
        if span is not None and span[1] - span[0] > 1:
            from .mm import split_to_order0

            # The action's guard waits for a safe refcount: the restructure spins on
            # folio_ref_freeze rather than failing (to-shared has no -EAGAIN).
            assert split_to_order0(k, w, span[0], span[1]) == 0
        if k.snp and k.axes["convert_arch_hook"] == "rmp-shared":
            rmp = w.get("rmp")
            if rmp[gfn] != RMP_SHARED:
                if rmp[gfn] == RMP_2M:
                    psmash(k, w, gfn)
                rmp_make_shared(k, w, gfn, False)
        w.arr("attr")[gfn] = False
    stale_inflight_fault(w)
    w.ret = 0


def host_fault(k: Any, w: Work, index: int) -> None:
    """guest_memfd.c:kvm_gmem_fault_user_mapping: a host userspace access to a shared
    page through mmap gets (or allocates) the folio and maps it (DOMAIN.md §1.1, S-7)."""
    r = k.kvm_gmem_get_folio(w, index, True)
    if isinstance(r, int):
        w.ret = r
        return
    w.arr("host")[index] = HOST_MAPPED
    w.ret = 0


def host_user_write(k: Any, w: Work, index: int) -> None:
    """Host userspace stores through the mapping guest_memfd.c:kvm_gmem_fault_user_mapping
    gave it; on SNP a store to a page still assigned in the RMP takes an RMP #PF
    (arch/x86/mm/fault.c:do_user_addr_fault, user mode, DOMAIN.md §2.15 [U])."""
    from .snp import fault
    from .state import USER_RMP_PF

    if k.snp and w.get("rmp")[index] != RMP_SHARED:
        fault(w, USER_RMP_PF, index, "host userspace store to an RMP-assigned page")
        return
    w.arr("content")[index] = DATA
    w.event(f"host userspace writes index {index}")


def kvm_gmem_zero_range(k: Any, w: Work, lo: int, hi: int) -> None:
    """HugeTLB RFC v2 (May 2025, patch 33) guest_memfd.c:kvm_gmem_zero_range: for each
    folio with a page in ``[lo, hi)`` (filemap_get_folios), folio_zero_segment from the
    folio's *first* page to ``hi`` (or its end): a huge folio that starts before ``lo``
    has its pages before the hole zeroed too. No refcount check, no split, nothing
    freed; on SNP a store to an RMP-assigned page is an RMP #PF (docs/kernel-notes.md)."""
    for h, e in folios_in(w, lo, hi):
        for p in range(h, min(e, hi)):
            if not k.host_write(w, p, "folio_zero_segment (kvm_gmem_zero_range)"):
                return


def truncate_inode_range_rfc_v2(k: Any, w: Work, lo: int, hi: int) -> None:
    """HugeTLB RFC v2 (May 2025) guest_memfd.c:kvm_gmem_truncate_inode_range: any
    page-aligned punch is accepted (kvm_gmem_fallocate checks PAGE_ALIGNED only); the
    partial huge page at each end is zeroed in place (kvm_gmem_zero_range), the whole
    huge pages in between go through merge_truncate_range (safe-refcount gated; its
    -EAGAIN is returned after the zeroing of the end part, as the source does)."""
    n = k.N
    full_lo = -(-lo // n) * n
    full_hi = hi // n * n
    pun = w.arr("punched")
    if lo < full_lo:
        for i in range(lo, min(full_lo, hi)):
            pun[i] = True
        kvm_gmem_zero_range(k, w, lo, min(full_lo, hi))
    if w.faulted:
        return
    if full_hi > full_lo:
        merge_truncate_range(k, w, full_lo, full_hi)
    if w.faulted:
        return
    if hi > full_hi and hi > full_lo:
        z = max(full_hi, lo)
        for i in range(z, hi):
            pun[i] = True
        kvm_gmem_zero_range(k, w, z, hi)
