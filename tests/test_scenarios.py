"""The concrete syscall sequences of DOMAIN.md §5, step by step through the model.

Page numbers: a huge folio here has 2 pages (pages_per_huge = 2 stands for 512), so
DOMAIN's "4G+H" is gfn 0 and "4G+H+P" is gfn 1 of the huge range.
"""

from __future__ import annotations

from helpers import Driver, model

from gmemcheck.model.state import (
    DATA,
    NPT_4K,
    NPT_HUGE,
    NPT_NONE,
    RMP_2M,
    RMP_4K,
    RMP_PF,
    RMP_SHARED,
    STALE,
    ZERO,
)

EINVAL, EAGAIN = -22, -11


def punch(d: Driver, offset: int, length: int, rmp_fail: bool = False) -> None:
    d("kvm_gmem_punch_hole", offset, length)
    d("truncate_inode_pages_range", rmp_fail, False)
    if "kvm_gmem_mark_range_unprepared" in d.acts:
        d("kvm_gmem_mark_range_unprepared")
    d("kvm_gmem_invalidate_end")


def fault(d: Driver, gfn: int, huge_ok: bool = True) -> None:
    d("kvm_gmem_get_pfn", gfn, huge_ok)
    d("kvm_tdp_mmu_map")


def test_s0_baseline_mainline_order0_keeps_every_invariant():
    d = Driver(model("mainline-6.13"))
    d("kvm_gmem_populate", 0)                       # LAUNCH_UPDATE of the first page
    assert d.s.rmp[0] == RMP_4K and d.s.content[0] == DATA and d.s.uptodate[0]
    d("snp_launch_finish")
    fault(d, 1)                                     # the vCPU touches 4G+H+P
    assert d.s.order[1] == 0 and d.s.uptodate[1] and d.s.dirty[1]
    assert d.s.rmp[1] == RMP_4K and d.s.npt[1] == NPT_4K and d.s.content[1] == ZERO
    punch(d, 1, 1)                                  # fallocate(PUNCH_HOLE, H+P, P)
    assert d.s.npt[1] == NPT_NONE and d.s.order[1] == -1 and d.s.rmp[1] == RMP_SHARED
    assert d.s.content[1] == STALE                  # back in the allocator
    fault(d, 1)                                     # touches it again: a new folio
    assert d.s.rmp[1] == RMP_4K and d.s.content[1] == ZERO and d.s.npt[1] == NPT_4K
    assert d.broken() == set()


def test_s1_rfc_dirty_split_failure_oopses_the_host():
    d = Driver(model("rfc-thp"))
    d("snp_launch_finish")
    fault(d, 0)                                     # 2M folio, prepared, RMP 2M, NPT 2M
    assert d.s.order == (1, 1) and d.s.prepared == (True, True)
    assert d.s.rmp == (RMP_2M, RMP_2M) and d.s.npt == (NPT_HUGE, NPT_HUGE)
    assert d.s.dirty == (True, True)                # kvm_release_faultin_page dirtied it
    d("alloc_contig_range", 0)                      # an unexpected reference
    d("kvm_gmem_punch_hole", 1, 1)
    d("truncate_inode_pages_range", False, False)
    assert d.s.order == (1, 1)                      # split -EAGAIN, dirty: kept whole
    assert d.s.rmp == (RMP_2M, RMP_2M)              # free_folio never ran
    d("kvm_gmem_mark_range_unprepared")
    assert d.s.prepared == (True, False)            # the bit is cleared anyway
    d("kvm_gmem_invalidate_end")
    d("kvm_gmem_get_pfn", 1, True)                  # the vCPU touches 4G+H+P
    assert d.s.fault == (RMP_PF, 1)                 # clear_highpage on an assigned pfn
    assert {"host-never-writes-guest-owned", "punched-private-never-host-written",
            "prepared-agrees-with-rmp"} <= d.broken()


def test_s1_liveness_variant_partial_punches_never_free_the_folio():
    d = Driver(model("rfc-thp"))
    d("snp_launch_finish")
    fault(d, 0)
    for page in (0, 1):                             # punch every 4K page, one at a time
        d("alloc_contig_range", 0)
        punch(d, page, 1)
        d("folio_put")
    assert d.s.punched == (True, True)
    assert d.s.order == (1, 1)                      # still allocated, all of it
    d("kvm_gmem_punch_hole", 0, 2)                  # only a punch of the whole 2M frees it
    d("truncate_inode_pages_range", False, False)
    assert d.s.order == (-1, -1) and d.s.rmp == (RMP_SHARED, RMP_SHARED)


def _s2_setup() -> Driver:
    d = Driver(model("rfc-thp"))
    d("kvm_gmem_populate", 0)
    d("kvm_gmem_populate", 1)                       # 2 x 4K RMP private, bits set, clean
    assert d.s.order == (1, 1) and d.s.dirty == (False, False)
    assert d.s.rmp == (RMP_4K, RMP_4K) and d.s.prepared == (True, True)
    d("alloc_contig_range", 0)
    punch(d, 1, 1)
    assert d.s.order == (-1, -1)                    # clean: the whole folio is removed
    assert d.s.rmp == (RMP_SHARED, RMP_SHARED)      # free_folio made both shared
    assert d.s.prepared == (True, False)            # only the hole's bit is cleared
    assert "no-data-loss-outside-punch" in d.broken()
    d("snp_launch_finish")
    d("folio_put")
    return d


def test_s2a_rfc_new_huge_folio_exposes_stale_host_data():
    d = _s2_setup()
    fault(d, 0, huge_ok=True)                       # new 2M folio; bit 0 still set
    assert d.s.content == (STALE, ZERO)             # only page 1 was cleared
    assert d.s.rmp == (RMP_2M, RMP_2M) and d.s.npt == (NPT_HUGE, NPT_HUGE)
    assert "zeroed-before-guest-visible" in d.broken()


def test_s2b_rfc_order0_fallback_maps_an_unassigned_page():
    d = _s2_setup()
    fault(d, 0, huge_ok=False)                      # order-0 folio, bit set: no prepare
    assert d.s.order == (0, -1) and d.s.rmp[0] == RMP_SHARED and d.s.npt[0] == NPT_4K
    assert "private-mapping-implies-assigned" in d.broken()


def test_s3_pb_lockless_bitmap_race_oopses_the_host():
    d = Driver(model("pb-bitmap"))
    d("snp_launch_finish")
    d("kvm_gmem_allocate", 0, 2)                    # an old folio, never prepared
    d("kvm_gmem_punch_hole", 0, 1)                  # B: invalidate_begin
    d("truncate_inode_pages_range", False, False)   # B: the old folio is freed
    assert d.s.order[0] == -1
    d("kvm_gmem_get_pfn", 0, True)                  # A: new folio, prepared, bit set
    assert d.s.rmp[0] == RMP_4K and d.s.prepared[0]
    d("kvm_gmem_mark_range_unprepared")             # B: clears the bit
    d("kvm_gmem_invalidate_end")
    assert not d.s.prepared[0] and d.s.vcpu == (0, 1)
    d("kvm_tdp_mmu_map")                            # A: stale, RET_PF_RETRY
    assert d.s.npt[0] == NPT_NONE and d.s.vcpu == ()
    assert "prepared-agrees-with-rmp" in d.broken()
    d("kvm_gmem_get_pfn", 0, True)                  # A retries: clear_highpage, oops
    assert d.s.fault == (RMP_PF, 0)


def test_s3_pb_race_other_order_misses_the_prepare():
    """Sean's other outcome (§3.5 (A)): A sees the bit before B clears it."""
    d = Driver(model("pb-bitmap"))
    d("snp_launch_finish")
    fault(d, 0)                                     # prepared: bit set, RMP private
    d("kvm_gmem_punch_hole", 0, 1)
    d("truncate_inode_pages_range", False, False)   # freed and made shared, bit still set
    d("kvm_gmem_get_pfn", 0, True)                  # A: new folio, bit set: no prepare
    assert d.s.order[0] == 0 and d.s.rmp[0] == RMP_SHARED and d.s.prepared[0]
    assert "prepared-agrees-with-rmp" in d.broken()


def test_s3_rfc_lock_serializes_the_race():
    d = Driver(model("rfc-thp"))
    d("snp_launch_finish")
    d("kvm_gmem_punch_hole", 0, 1)
    assert not d.enabled("kvm_gmem_get_pfn", 0, True)   # invalidate_lock held exclusive


def test_s6_rmp_size_mismatch_takes_the_psmash_path():
    d = Driver(model("rfc-thp"))
    d("snp_launch_finish")
    fault(d, 0)                                     # RMP 2M and NPT 2M
    d("kvm_vm_set_mem_attributes", 1, False)        # convert 4G+H+P to shared
    assert d.s.npt == (NPT_NONE, NPT_NONE)          # the 2M SPTE is zapped
    fault(d, 0)                                     # mixed attributes: NPT 4K only
    assert d.s.npt == (NPT_4K, NPT_NONE) and d.s.rmp == (RMP_2M, RMP_2M)
    assert not d.enabled("guest_write", 0)          # the access takes an RMP #NPF
    d("sev_handle_rmp_fault", 0)                    # psmash, zap [gfn, gfn+512)
    assert d.s.rmp == (RMP_4K, RMP_4K) and d.s.npt == (NPT_NONE, NPT_NONE)
    punch(d, 1, 1)                                  # split ok; free_folio on [1]
    assert d.s.order == (0, -1) and d.s.rmp == (RMP_4K, RMP_SHARED)
    assert d.broken() == set()


def test_s6_invalidate_psmashes_when_the_fault_handler_did_not():
    d = Driver(model("rfc-thp"))
    d("snp_launch_finish")
    fault(d, 0)
    d("kvm_vm_set_mem_attributes", 1, False)
    fault(d, 0)
    d("kvm_gmem_punch_hole", 1, 1)
    out = d("truncate_inode_pages_range", False, False)
    assert out is not None and "psmash(pfn 0)" in out.events
    assert d.s.rmp == (RMP_4K, RMP_SHARED) and not d.s.fault


def test_s7_hugetlb_partial_punch_rejected_and_refcount_gated():
    d = Driver(model("hugetlb"))
    out = d("kvm_gmem_punch_hole", 1, 1)            # not huge-aligned
    assert out is not None and out.ret == EINVAL and d.s.vmm == ()
    d("kvm_gmem_allocate", 0, 2)
    assert d.s.order == (1, 1)
    d("kvm_gmem_convert", 1, False)                 # to shared: split to order 0
    assert d.s.order == (0, 0) and d.s.attr == (True, False)
    d("kvm_gmem_fault_user_mapping", 1)             # mmap and fault from userspace
    d("pin_user_pages", 1)                          # a GUP pin (vhost)
    out = d("kvm_gmem_convert", 1, True)            # to private with the pin held
    assert out is not None and out.ret == EAGAIN and d.s.attr == (True, False)
    d("kvm_gmem_punch_hole", 0, 2)
    d("truncate_inode_pages_range", False, False)
    assert d.s.vmm[4] == EAGAIN and d.s.order == (0, 0)     # punch -EAGAIN too
    d("kvm_gmem_invalidate_end")
    d("unpin_user_page", 1)
    out = d("kvm_gmem_convert", 1, True)            # merges back to 1G (here: huge)
    assert out is not None and out.ret == 0 and d.s.order == (1, 1)
    punch(d, 0, 2)
    assert d.s.order == (-1, -1) and d.s.held == (-1, -1)
    assert d.broken() == set()


def test_compaction_skips_huge_folios_only_alloc_contig_range_takes_a_reference():
    """isolate_migratepages_block skips compound pages at or above pageblock order
    unless cc->alloc_contig (docs/kernel-notes.md): on a huge folio the transient
    reference comes from alloc_contig_range; on an order-0 folio from compaction."""
    d = Driver(model("rfc-thp"))
    d("kvm_gmem_populate", 0)
    assert d.s.order == (1, 1)
    assert not d.enabled("isolate_migratepages_block", 0)
    assert d.enabled("alloc_contig_range", 0)
    d = Driver(model("mainline-latest"))
    d("kvm_gmem_populate", 0)
    assert d.s.order == (0, -1)
    assert d.enabled("isolate_migratepages_block", 0)
    # order-0 only: no folio of pageblock order, so no alloc_contig_range at all
    assert "alloc_contig_range" not in d.acts
    # huge-only: every folio is of pageblock order, so compaction never takes one
    assert "isolate_migratepages_block" not in Driver(model("always-huge-zero")).acts


def test_hugetlb_rfc_v2_partial_punch_zeroes_from_the_folios_first_page():
    """RFC v2 (2025-05-14) accepts a partial punch and kvm_gmem_zero_range zeroes the
    huge folio in place from its first page: the store to page 0, outside the hole
    [1, 2) and RMP-assigned by populate, is a host oops. The later rule (-EINVAL) is
    preset hugetlb (docs/kernel-notes.md)."""
    d = Driver(model("hugetlb-rfc-v2"))
    d("kvm_gmem_populate", 0)
    assert d.s.order == (1, 1) and d.s.rmp == (RMP_4K, RMP_SHARED)
    out = d("kvm_gmem_punch_hole", 1, 1)
    assert out is not None and out.ret == 0
    out = d("truncate_inode_pages_range", False, False)
    assert out is not None
    assert d.s.fault == (RMP_PF, 0)                 # page 0, not the punched page 1
    assert d.s.order == (1, 1)                      # nothing removed
    broken = d.broken()
    assert "host-never-writes-guest-owned" in broken
    assert "punched-private-never-host-written" not in broken   # page 0 was not punched
    d = Driver(model("hugetlb"))
    d("kvm_gmem_populate", 0)
    out = d("kvm_gmem_punch_hole", 1, 1)
    assert out is not None and out.ret == EINVAL


def test_hugetlb_rfc_v2_partial_punch_of_shared_pages_only_zeroes():
    d = Driver(model("hugetlb-rfc-v2"))
    d("kvm_gmem_allocate", 0, 2)
    d("kvm_gmem_convert", 1, False)                 # to shared: order 0
    d("kvm_gmem_fault_user_mapping", 1)
    d("host_user_write", 1)
    assert d.s.content[1] == DATA and d.s.order == (0, 0)
    punch(d, 1, 1)
    assert d.s.content[1] == ZERO and d.s.order == (0, 0) and d.s.punched == (False, True)
    assert d.s.vmm == () and not d.s.fault


def _convert_back_with_a_fault_in_flight(*sets: str) -> Driver:
    d = Driver(model("hugetlb", *sets))
    d("snp_launch_finish")
    d("kvm_gmem_allocate", 0, 2)
    d("kvm_gmem_convert", 1, False)                 # split: [0] private, [1] shared
    d("kvm_gmem_get_pfn", 0, True)                  # the vCPU holds page 0's folio
    assert d.s.order == (0, 0) and d.s.vcpu and d.s.vcpu[0] == 0
    return d


def test_in_place_conversion_checks_only_the_converted_range_and_the_merge_spins():
    """kvm_gmem_convert_should_proceed checks the safe refcount of the converted page
    only; the merge then spins (filemap_remove_folio_for_restructuring, WARN_ONCE) on
    the vCPU's reference to page 0 instead of returning -EAGAIN: the conversion waits
    until the fault completes, then merges (docs/kernel-notes.md)."""
    d = _convert_back_with_a_fault_in_flight()
    assert not d.enabled("kvm_gmem_convert", 1, True)      # spinning, no -EAGAIN
    d("kvm_tdp_mmu_map")                            # the fault completes, ref dropped
    out = d("kvm_gmem_convert", 1, True)
    assert out is not None and out.ret == 0 and d.s.order == (1, 1)


def test_whole_range_refcount_check_returns_eagain_instead():
    d = _convert_back_with_a_fault_in_flight("refcount_gating=safe-refcount")
    out = d("kvm_gmem_convert", 1, True)
    assert out is not None and out.ret == EAGAIN and d.s.attr == (True, False)


def _convert_region_back_to_private(d: Driver) -> None:
    d("kvm_gmem_convert", 0, False)
    d("kvm_gmem_fault_user_mapping", 0)
    d("kvm_gmem_convert", 1, False)
    assert d.s.order == (0, 0)
    d("kvm_gmem_convert", 0, True)
    d("kvm_gmem_convert", 1, True)


def test_only_hugetlb_guest_memfd_merges_a_region_converted_back_to_private():
    """kvm_gmem_restructure folds the pieces back into one huge folio for a HugeTLB
    huge page; buddy-allocated order-0 folios (THP design with in-place conversion) are
    not contiguous and stay order 0 (hugetlb.py:restructures)."""
    d = Driver(model("hugetlb", "regions=1"))
    _convert_region_back_to_private(d)
    assert d.s.order == (1, 1)
    assert "merge folios of index 0..1 into one huge folio" in d.outcomes[-1].events
    d = Driver(model("rfc-thp", "conversion=in-place", "regions=1"))
    _convert_region_back_to_private(d)
    assert d.s.order == (0, 0)
