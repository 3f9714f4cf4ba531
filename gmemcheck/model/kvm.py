"""KVM's side: stage-2 mappings, the end of a private fault, memory attributes, and the
SNP RMP-fault handler (DOMAIN.md §1.3, §2.9 "x86 MMU after get_pfn", §2.12, §2.14).

Sources: arch/x86/kvm/mmu/mmu.c (``kvm_tdp_page_fault``, ``kvm_mmu_max_mapping_level``,
``hugepage_has_attrs``), arch/x86/kvm/mmu/tdp_mmu.c (``kvm_tdp_mmu_map``),
include/linux/kvm_host.h (``mmu_invalidate_retry_gfn``, ``kvm_release_faultin_page``),
virt/kvm/kvm_main.c (``kvm_vm_set_mem_attributes``, ``kvm_set_page_dirty``) and
arch/x86/kvm/svm/sev.c (``sev_private_max_mapping_level``, ``sev_handle_rmp_fault``).
"""

from __future__ import annotations

from typing import Any

from .mm import put_extra_ref, span_at
from .snp import psmash
from .state import DATA, NPT_4K, NPT_HUGE, NPT_NONE, RMP_2M, ZERO
from .work import Work


def zap(k: Any, w: Work, lo: int, hi: int, why: str) -> None:
    """kvm_mmu_unmap_gfn_range over ``[lo, hi)``: a huge SPTE that overlaps the range
    is zapped whole, 4K SPTEs outside it stay. On TDX a zapped private page leaves the
    TD (tdx_sept_remove_private_spte), is cleared by the TDX code, and its pin
    dropped."""
    npt = w.get("npt")
    gone: list[int] = []
    for g in range(lo, hi):
        if npt[g] == NPT_HUGE:
            gone.extend(x for x in k.region_span(g) if x not in gone)
        elif npt[g] == NPT_4K and g not in gone:
            gone.append(g)
    if not gone:
        return
    a = w.arr("npt")
    for g in gone:
        a[g] = NPT_NONE
    w.event(f"{why}: zap gfn {', '.join(map(str, sorted(gone)))}")
    if k.tdx:
        content = w.arr("content")
        for g in gone:
            content[g] = ZERO
        if k.tdx_pins:
            for g in gone:
                put_extra_ref(k, w, g)


def attrs_mixed(k: Any, s: Any, gfn: int) -> bool:
    """KVM_LPAGE_MIXED_FLAG for the huge range around gfn (hugepage_has_attrs)."""
    attr = s.attr
    span = k.region_span(gfn)
    return any(attr[g] != attr[span[0]] for g in span)


def max_mapping_huge(k: Any, s: Any, gfn: int) -> bool:
    """Can the fault map ``gfn`` with a huge SPTE? The folio order bounds the level
    (max_order from kvm_gmem_get_pfn), mixed attributes forbid it (KVM_LPAGE_MIXED_FLAG),
    and on SNP the vendor cap is the RMP level of the pfn
    (sev_private_max_mapping_level). Existing 4K SPTEs of the range do not prevent it:
    tdp_mmu_map_handle_target_level replaces the table with the huge leaf."""
    if s.order[gfn] < k.HUGE:
        return False
    if attrs_mixed(k, s, gfn):
        return False
    return not (k.snp and s.rmp[gfn] != RMP_2M)


def kvm_tdp_mmu_map(k: Any, w: Work) -> None:
    """The end of a private fault (mmu.c:kvm_tdp_page_fault -> kvm_tdp_mmu_map): under
    mmu_lock, retry if the fault is stale (mmu_invalidate_retry_gfn: an invalidation
    of this gfn in progress, or one completed since the fault began); otherwise install
    the SPTE at the allowed level. Either way kvm_release_faultin_page drops the
    folio reference, marking the folio dirty when it was mapped (map_writable is always
    true for guest_memfd slots, so kvm_set_page_dirty -> SetPageDirty) (§1.1, §2.9)."""
    gfn, stale = w.get("vcpu")
    s = w.s
    if stale or k.invalidation_covers(s, gfn) or not s.attr[gfn] or span_at(w, gfn) is None:
        w.event("is_page_fault_stale: RET_PF_RETRY, kvm_release_faultin_page(unused)")
        w.put("vcpu", ())
        put_extra_ref(k, w, gfn)
        w.ret = 1  # RET_PF_RETRY
        return
    npt = w.arr("npt")
    if k.kvm_mmu_max_mapping_level(s, gfn):
        for g in k.region_span(gfn):
            npt[g] = NPT_HUGE
        w.event(f"map gfn {k.region_span(gfn)[0]}..{k.region_span(gfn)[-1]} huge")
    else:
        npt[gfn] = NPT_4K
        w.event(f"map gfn {gfn} 4K")
    # The staleness check above looks at the faulting gfn only
    # (is_page_fault_stale -> mmu_invalidate_retry_gfn): a huge SPTE can cover gfns of
    # an invalidation still in progress (docs/kernel-notes.md, KVM Q1).
    head, end = span_at(w, gfn)  # type: ignore[misc]
    dirty = w.arr("dirty")
    for i in range(head, end):
        dirty[i] = True
    w.put("vcpu", ())
    w.ret = 0


def stale_inflight_fault(w: Work) -> None:
    """kvm_mmu_invalidate_end bumps mmu_invalidate_seq: a fault that began before it
    will see a changed sequence and retry."""
    vc = w.get("vcpu")
    if vc and not vc[1]:
        w.put("vcpu", (vc[0], 1))


def set_memory_attributes(k: Any, w: Work, gfn: int, private: bool) -> None:
    """virt/kvm/kvm_main.c:kvm_vm_set_mem_attributes for one gfn: return at once if the
    attribute is already set; else invalidate begin, zap the SPTEs of the old type
    (kvm_arch_pre_set_memory_attributes), store, recompute KVM_LPAGE_MIXED, invalidate
    end. guest_memfd folios, preparedness and the RMP are not touched (§2.14)."""
    if bool(w.get("attr")[gfn]) == private:
        w.ret = 0
        return
    if not private:
        zap(k, w, gfn, gfn + 1, "kvm_arch_pre_set_memory_attributes")
    w.arr("attr")[gfn] = private
    stale_inflight_fault(w)
    w.ret = 0


def guest_write(k: Any, w: Work, gfn: int) -> None:
    """The guest stores to a private page through the stage-2 mapping that
    mmu/tdp_mmu.c:kvm_tdp_mmu_map installed: the page now holds guest data, which a
    punch must not lose outside its range (DOMAIN.md I-10). An access that would take
    an RMP #NPF (unassigned page, or 4K SPTE on a 2M RMP entry, §2.12) is not a store."""
    w.arr("content")[gfn] = DATA


def sev_handle_rmp_fault(k: Any, w: Work, gfn: int) -> None:
    """arch/x86/kvm/svm/sev.c:sev_handle_rmp_fault for an access through a 4K SPTE to a
    page in a 2M RMP entry (size mismatch): snp_rmptable_psmash the 2M-aligned entry,
    then kvm_zap_gfn_range(gfn, gfn + PTRS_PER_PMD) from the faulting gfn, not the
    aligned one (§2.12)."""
    psmash(k, w, gfn)
    zap(k, w, gfn, min(gfn + k.N, k.P), "sev_handle_rmp_fault: kvm_zap_gfn_range")
