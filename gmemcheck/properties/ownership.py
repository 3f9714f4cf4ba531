"""Ownership: the host must not write what the guest owns, and freed memory must be the
host's again (DOMAIN.md §2.15, §3.1, §3.3, §3.6; invariants I-1, I-7, I-15, I-17)."""

from __future__ import annotations

from typing import Any

from ..checker.core import Kind, Property
from ..model.state import HOST_WRITE_FAULTS, RMP_SHARED, RMPUPDATE_LIVELOCK


def host_never_writes_guest_owned(m: Any) -> Property:
    def pred(s: Any) -> bool:
        return not (s.fault and s.fault[0] in HOST_WRITE_FAULTS)

    return Property(
        "host-never-writes-guest-owned", Kind.SAFETY,
        "No host store (clear_highpage in kvm_gmem_prepare_folio, folio_zero_range in "
        "truncate_inode_partial_folio, the populate copy, another user reusing a freed page, "
        "a host userspace store) hits a pfn the RMP assigns to the guest, nor goes through "
        "a 2M direct-map entry whose region holds an assigned pfn; on TDX, a page mapped in "
        "the TD's S-EPT. On SNP a violation is an RMP #PF: the host oopses "
        "(arch/x86/mm/fault.c, DOMAIN.md §2.15).",
        predicate=pred, source="DOMAIN.md I-1; §3.1, §3.3, §3.5")


def punched_private_never_host_written(m: Any) -> Property:
    def pred(s: Any) -> bool:
        return not (s.fault and s.fault[0] in HOST_WRITE_FAULTS and s.punched[s.fault[1]])

    return Property(
        "punched-private-never-host-written", Kind.SAFETY,
        "The seed thread's first example (David Hildenbrand): once userspace punched a "
        "range, no page of it that the guest still owns is written by the host, whether by "
        "truncate zeroing the partial folio (kernels before 6.11) or by a later "
        "clear_highpage of a kept folio whose prepared bits the punch cleared.",
        predicate=pred, source="seed thread; DOMAIN.md §3.1, §3.3")


def freed_pages_are_shared(m: Any) -> Property | None:
    if not m.k.snp:
        return None

    def pred(s: Any) -> bool:
        order, held, leaked, rmp = s.order, s.held, s.leaked, s.rmp
        return all(rmp[p] == RMP_SHARED or order[p] >= 0 or held[p] >= 0 or leaked[p]
                   for p in range(len(rmp)))

    return Property(
        "freed-pages-are-shared", Kind.SAFETY,
        "Every frame back in the page allocator is unassigned in the RMP. "
        "sev_gmem_invalidate only WARNs when rmp_make_shared fails and lets the page be "
        "freed (no snp_leak_pages): the next host user of it takes an RMP #PF "
        "(arch/x86/kvm/svm/sev.c:sev_gmem_invalidate).",
        predicate=pred, source="DOMAIN.md I-7; §2.11, §3.6")


def no_rmpupdate_overlap(m: Any) -> Property | None:
    if not m.k.snp:
        return None

    def pred(s: Any) -> bool:
        return not (s.fault and s.fault[0] == RMPUPDATE_LIVELOCK)

    return Property(
        "no-rmpupdate-overlap", Kind.SAFETY,
        "No 4K RMPUPDATE of a pfn inside a 2M RMP entry without a PSMASH first: rmpupdate() "
        "retries FAIL_OVERLAP forever, so in the kernel this is a livelock "
        "(arch/x86/virt/svm/sev.c:rmpupdate).",
        predicate=pred, source="DOMAIN.md I-15; §1.4")


def populate_refuses_prepared(m: Any) -> Property | None:
    if not m.k.snp:
        return None

    def step(pre: Any, label: tuple[str, tuple[Any, ...]], post: Any) -> bool:
        if label[0] != "kvm_gmem_populate":
            return True
        g = label[1][0]
        if pre.rmp[g] == RMP_SHARED:
            return True
        return post.content[g] == pre.content[g] and post.rmp == pre.rmp and not post.fault

    return Property(
        "populate-refuses-prepared", Kind.SAFETY,
        "kvm_gmem_populate never copies into, nor calls SNP_LAUNCH_UPDATE on, a pfn the RMP "
        "already assigns: sev_gmem_post_populate returns -EEXIST "
        "(arch/x86/kvm/svm/sev.c:sev_gmem_post_populate).",
        step=step, source="DOMAIN.md I-17; §2.13")


PROPERTIES = {
    "host-never-writes-guest-owned": host_never_writes_guest_owned,
    "punched-private-never-host-written": punched_private_never_host_written,
    "freed-pages-are-shared": freed_pages_are_shared,
    "populate-refuses-prepared": populate_refuses_prepared,
    "no-rmpupdate-overlap": no_rmpupdate_overlap,
}
