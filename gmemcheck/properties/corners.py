"""Reachability witnesses for the interesting corners, so that no design passes
vacuously: a model too constrained to split a folio, create a 2M RMP entry or fall
back to order 0 makes the corresponding witness fail (DOMAIN.md §2.3, §2.6, §2.10-§2.12,
§2.5 HT)."""

from __future__ import annotations

from typing import Any

from ..checker.core import Kind, Property
from ..model.mm import intermediate_orders
from ..model.state import OP_PUNCH, RMP_2M, RMP_4K

EAGAIN = -11


def _punch_range(pre: Any, label: tuple[str, tuple[Any, ...]]) -> tuple[int, int] | None:
    vm = pre.vmm
    if label[0] == "truncate_inode_pages_range" and vm and vm[0] == OP_PUNCH:
        return vm[1], vm[2]
    return None


def split_failed_dirty(m: Any) -> Property:
    def step(pre: Any, label: tuple[str, tuple[Any, ...]], post: Any) -> bool:
        r = _punch_range(pre, label)
        return r is not None and m.k.axes["partial_punch"] == "truncate" and any(
            post.order[i] >= 0 and pre.dirty[i] for i in range(*r))

    return Property("reach-split-failed-dirty", Kind.REACHABLE,
                    "A punch leaves a dirty huge folio in place because split_folio failed "
                    "(truncate_inode_partial_folio returns false, §2.6, §3.3).", step=step)


def split_failed_clean(m: Any) -> Property:
    def step(pre: Any, label: tuple[str, tuple[Any, ...]], post: Any) -> bool:
        r = _punch_range(pre, label)
        return r is not None and any(
            pre.order[i] >= 0 and post.order[i] < 0 and not r[0] <= i < r[1]
            for i in range(len(pre.order)))

    return Property("reach-split-failed-clean", Kind.REACHABLE,
                    "A punch removes pages outside its range: a clean folio dropped whole "
                    "after a failed split, or a straddling piece (§3.4, §3.8).", step=step)


def rmp_2m_created(m: Any) -> Property | None:
    if not m.k.snp:
        return None
    return Property("reach-rmp-2m-entry", Kind.REACHABLE,
                    "sev_gmem_prepare creates a 2M RMP entry (§2.10).",
                    predicate=lambda s: RMP_2M in s.rmp)


def psmash_taken(m: Any) -> Property | None:
    if not m.k.snp:
        return None

    def step(pre: Any, label: tuple[str, tuple[Any, ...]], post: Any) -> bool:
        return any(a == RMP_2M and b == RMP_4K for a, b in zip(pre.rmp, post.rmp, strict=True))

    return Property("reach-psmash", Kind.REACHABLE,
                    "A 2M RMP entry is PSMASHed (sev_gmem_invalidate or sev_handle_rmp_fault, "
                    "§2.11, §2.12).", step=step)


def fallback_order0(m: Any) -> Property:
    def step(pre: Any, label: tuple[str, tuple[Any, ...]], post: Any) -> bool:
        if label[0] != "kvm_gmem_get_pfn":
            return False
        g = label[1][0]
        return pre.order[g] < 0 and post.order[g] == 0 and m.k.axes["allocation"] != "order0"

    return Property("reach-fallback-order0", Kind.REACHABLE,
                    "A fault in a huge-capable design gets an order-0 folio "
                    "(kvm_gmem_get_huge_folio gave up, §2.3).", step=step)


def eagain_refcount(m: Any) -> Property | None:
    if m.k.axes["refcount_gating"] not in ("safe-refcount", "safe-refcount-range"):
        return None
    return Property("reach-eagain-refcount", Kind.REACHABLE,
                    "A punch returns -EAGAIN because a folio holds more than its safe "
                    "refcount (kvm_gmem_has_safe_refcount, §2.5 HT, S-7).",
                    predicate=lambda s: bool(s.vmm) and s.vmm[0] == OP_PUNCH
                    and s.vmm[4] == EAGAIN)


def intermediate_order(m: Any) -> Property | None:
    k = m.k
    if not intermediate_orders(k):
        return None     # pages_per_huge < 4, or no non-uniform split of a THP folio
    huge = k.HUGE
    return Property("reach-intermediate-order", Kind.REACHABLE,
                    "A folio of order strictly between 0 and the huge order exists: the "
                    "6.15+ non-uniform split (mm/huge_memory.c:__split_unmapped_folio, "
                    "buddy halves around split_at) is exercised (§2.7).",
                    predicate=lambda s: any(0 < o < huge for o in s.order))


# size witnesses: they apply only where pages_per_huge >= 4 (a size, not a design,
# decides whether the corner exists)
SIZE_WITNESSES = {"reach-intermediate-order"}

PROPERTIES = {
    "reach-split-failed-dirty": split_failed_dirty,
    "reach-split-failed-clean": split_failed_clean,
    "reach-rmp-2m-entry": rmp_2m_created,
    "reach-psmash": psmash_taken,
    "reach-fallback-order0": fallback_order0,
    "reach-eagain-refcount": eagain_refcount,
    "reach-intermediate-order": intermediate_order,
}
