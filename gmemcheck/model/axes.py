"""The design axes of the December 2024 discussion and the designs that followed it.

Each axis cites the DOMAIN.md section it follows. Choice-axis values supply the named
steps that differ (see :mod:`.registry`); the README lists the axes with their
values, and ``gmemcheck list`` prints them.
"""

from __future__ import annotations

from typing import Any

from . import gmem, hugetlb, mm, snp
from .mm import folios_in
from .registry import axis, value
from .work import Work

# Register the default implementations of the named steps (module import side effect).
_ = (gmem, hugetlb, mm, snp)


def truncate_zero_in_place(k: Any, w: Work, lo: int, hi: int) -> None:
    """Always-huge with zero-only partial punch (DOMAIN.md §4 AH, David's "(B) partial
    punches ... only zero-out the memory"): folios wholly inside the range are removed
    as truncate_inode_pages_range would; the punched pages of a partially covered huge
    folio are zeroed in place (folio_zero_range) and the folio is kept."""
    for h, e in folios_in(w, lo, hi):
        if h >= lo and e <= hi:
            k.filemap_remove_folio(w, h, e)
        else:
            for p in range(max(lo, h), min(hi, e)):
                if not k.host_write(w, p, "folio_zero_range (partial punch zeroes in place)"):
                    return


def _define() -> None:
    axis("platform", "confidential-computing platform whose ownership rules police host "
         "writes", "§1.4 (SEV-SNP RMP), §1.5 (TDX)")
    value("platform", "snp", "AMD SEV-SNP: the RMP says who owns each pfn; a host store to an "
          "assigned pfn is an RMP #PF (host oops)", "§1.4, §2.15")
    value("platform", "tdx", "Intel TDX: the TD owns pages mapped in its S-EPT; no prepare hook",
          "§1.5")

    axis("allocation", "which folios kvm_gmem_get_folio allocates", "§2.3")
    value("allocation", "order0", "mainline: order-0 folios only", "§2.3 ML",
          steps={"kvm_gmem_get_folio": gmem.get_folio_order0})
    value("allocation", "thp-fallback", "RFC: a PMD folio unless the 2M range already has a "
          "page or the allocation fails, else order 0", "§2.3 RFC",
          steps={"kvm_gmem_get_folio": gmem.get_folio_thp})
    value("allocation", "huge-only", "always huge from the buddy, no fallback (-ENOMEM)",
          "§4 AH", steps={"kvm_gmem_get_folio": gmem.get_folio_huge_only})
    value("allocation", "hugetlb", "huge folios from a reserved hugetlb pool; a range that is "
          "not all private is split to order 0 at once", "§2.3 HT",
          steps={"kvm_gmem_get_folio": gmem.get_folio_hugetlb})

    axis("huge_alloc_may_fail", "a PMD-order allocation from the buddy may fail "
         "(no __GFP_RETRY_MAYFAIL)", "§2.3", kind="bool")

    axis("partial_punch", "what a punch does to a partially covered huge folio", "§2.5, §2.6, §4")
    value("partial_punch", "truncate", "truncate_inode_pages_range: split, or on failure keep "
          "(dirty) or drop whole (clean)", "§2.6")
    value("partial_punch", "reject", "a punch that is not huge-aligned fails with -EINVAL",
          "§4 AH (a)")
    value("partial_punch", "zero-in-place", "the punched part of a huge folio is zeroed in place "
          "and the folio kept", "§4 AH (b)",
          steps={"truncate_inode_pages_range": truncate_zero_in_place})
    value("partial_punch", "hugetlb", "huge-aligned only (-EINVAL otherwise); "
          "merge_truncate_range with safe-refcount gating", "§2.5 HT",
          steps={"truncate_inode_pages_range": hugetlb.merge_truncate_range})
    value("partial_punch", "hugetlb-zero", "HugeTLB RFC v2 (May 2025): any page-aligned "
          "punch; the partial part of a huge page is zeroed in place (kvm_gmem_zero_range: "
          "folio_zero_segment from the folio's first page), whole huge pages as `hugetlb`",
          "§2.5 HT (corrected in docs/kernel-notes.md)",
          steps={"truncate_inode_pages_range": hugetlb.truncate_inode_range_rfc_v2})

    axis("truncate", "mm/truncate.c version", "§2.6, §3.1, §3.8")
    value("truncate", "zeroing", "before v6.11: folio_zero_range on the punched part of a "
          "partial folio even for guest_memfd; uniform split_folio", "§2.6, §3.1")
    value("truncate", "uniform", "v6.11..6.14: no zeroing for mapping_inaccessible; uniform "
          "split_folio", "§2.6")
    value("truncate", "nonuniform", "v6.15+: try_folio_split at the first punched page, then "
          "a second split after the hole whose result is ignored", "§2.6, §3.8")

    axis("split_may_fail", "the second (ignored) split of a non-uniform truncate may fail "
         "spuriously (folio_trylock, -ENOMEM in xas_try_split)", "§2.7, §3.8", kind="bool")

    axis("preparedness", "how guest_memfd records that a page was prepared", "§1.2")
    value("preparedness", "uptodate", "ML-6.13..6.19: PG_uptodate of the folio means prepared",
          "§1.2 ML, §2.9")
    value("preparedness", "none", "ML-latest: no tracking; uptodate means initialized and the "
          "RMP is the truth", "§1.2 ML-latest, §2.9",
          steps={"kvm_gmem_is_prepared": gmem.is_prepared_never,
                 "kvm_gmem_mark_prepared": gmem.mark_prepared_none})
    value("preparedness", "bitmap", "PB/RFC: one bit per 4K index in the inode, outliving "
          "folios; the punch clears the range", "§1.2 PB/RFC",
          steps={"kvm_gmem_is_prepared": gmem.is_prepared_bitmap,
                 "kvm_gmem_mark_prepared": gmem.mark_prepared_bitmap,
                 "kvm_gmem_mark_range_unprepared": gmem.mark_range_unprepared_bitmap})
    value("preparedness", "folio-private", "per-page bits kept in folio->private, which a split "
          "does not copy to the new folios", "§1.1 flags copied on split",
          steps={"kvm_gmem_is_prepared": gmem.is_prepared_private,
                 "kvm_gmem_mark_prepared": gmem.mark_prepared_private})

    axis("prepare_clear", "which pages kvm_gmem_prepare_folio clears before arch prepare",
         "§2.9")
    value("prepare_clear", "whole-folio", "clear_highpage every page of the folio (ML, PB)",
          "§2.9 ML")
    value("prepare_clear", "unprepared-pages", "clear_highpage only the pages whose bit is "
          "clear (RFC)", "§2.9 RFC")

    axis("snp_prepare", "form of sev_gmem_prepare", "§2.10")
    value("snp_prepare", "mainline", "no-op if the pfn is assigned; 2M if possible, else 4K for "
          "the one pfn", "§2.10 ML")
    value("snp_prepare", "rfc", "walk the whole range, filling shared runs (RFC patch 4/5)",
          "§2.10 RFC", steps={"kvm_arch_gmem_prepare": snp.sev_gmem_prepare_rfc})

    axis("fault_locking", "what kvm_gmem_get_pfn takes", "§1.6, §3.5")
    value("fault_locking", "none", "no invalidate_lock (mainline, PB)", "§1.6")
    value("fault_locking", "invalidate-shared", "filemap_invalidate_lock_shared (RFC patch 3)",
          "§1.6, §2.13")

    axis("refcount_gating", "whether punch and conversion demand a safe refcount", "§2.5 HT")
    value("refcount_gating", "none", "no check", "§2.5")
    value("refcount_gating", "safe-refcount", "-EAGAIN unless refcount == nr_pages + 1 "
          "(kvm_gmem_has_safe_refcount) on every folio of the huge range", "§2.5 HT")
    value("refcount_gating", "safe-refcount-range", "as the in-place conversion source: "
          "conversion to private checks only the converted range; a reference on another "
          "piece of the huge page makes the merge spin (WARN_ONCE) until it is dropped",
          "§2.5 HT (corrected in docs/kernel-notes.md)")

    axis("rmp_make_shared_may_fail", "rmp_make_shared may fail in sev_gmem_invalidate "
         "(the RMPUPDATE instruction failing, or adjust_direct_map unable to split the "
         "direct map: docs/kernel-notes.md says when each can occur)", "§2.11, §3.6", kind="bool")

    axis("rmp_shared_failure", "what sev_gmem_invalidate does when rmp_make_shared fails",
         "§2.11, §3.6")
    value("rmp_shared_failure", "warn-and-free", "WARN_ONCE and continue: the page is freed "
          "still assigned (mainline)", "§3.6")

    axis("unexpected_refs", "sources of references that make split_folio fail", "§3.2",
         kind="set", options=("speculative", "tdx-pin", "gup"))

    axis("conversion", "how private<->shared conversion is done", "§2.14")
    value("conversion", "vm-attributes", "KVM_SET_MEMORY_ATTRIBUTES on the VM: guest_memfd is "
          "not told", "§2.14")
    value("conversion", "in-place", "KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd: split on "
          "to-shared, merge on to-private, host mmap of shared pages", "§2.14 HT")

    axis("convert_arch_hook", "whether in-place conversion to shared makes the SNP RMP entry "
         "shared (not found in the source read)", "§2.14 [U]")
    value("convert_arch_hook", "none", "no arch hook: the RMP entry stays assigned", "§2.14")
    value("convert_arch_hook", "rmp-shared", "assumed: psmash if needed, then rmp_make_shared",
          "§2.14 [U]")


_define()

BOUNDS: dict[str, tuple[int, ...]] = {
    "regions": tuple(range(1, 9)),
    # powers of two: 2..8 for explicit exploration, 512 (2 MB PMD) and 262144 (1 GB PUD)
    # for the symbolic engines
    "pages_per_huge": tuple(1 << i for i in range(1, 19)),
}
BOUND_DOCS = {
    "regions": "number of huge ranges in the file",
    "pages_per_huge": "4 KiB pages per huge folio: stands for PMD order (512 in the kernel)",
}
