"""Stage-2 mappings against the page cache and the RMP (DOMAIN.md §1.3, §1.4, §3.4,
§3.8; invariants I-2/I-3, I-4, I-5, I-6)."""

from __future__ import annotations

from typing import Any

from ..checker.core import Kind, Property
from ..model.state import NPT_HUGE, NPT_NONE, RMP_2M, RMP_SHARED


def mapping_implies_page_cache(m: Any) -> Property:
    def pred(s: Any) -> bool:
        npt, order = s.npt, s.order
        return all(npt[g] == NPT_NONE or order[g] >= 0 for g in range(len(npt)))

    return Property(
        "mapping-implies-page-cache", Kind.SAFETY,
        "A stage-2 mapping points only at a folio in guest_memfd's page cache at that "
        "index. kvm_gmem_invalidate_begin zaps only the punched gfns, but free_folio runs "
        "for every folio truncate removes, including a clean folio dropped whole after a "
        "failed split (§3.4) and a piece straddling the hole (§3.8): a mapping outside the "
        "zapped range then points at freed memory (use after free).",
        predicate=pred, source="DOMAIN.md I-2, I-3; §2.5, §2.8, §3.4, §3.8")


def private_mapping_implies_assigned(m: Any) -> Property | None:
    if not m.k.snp:
        return None

    def pred(s: Any) -> bool:
        npt, rmp = s.npt, s.rmp
        return all(npt[g] == NPT_NONE or rmp[g] != RMP_SHARED for g in range(len(npt)))

    return Property(
        "private-mapping-implies-assigned", Kind.SAFETY,
        "A private SPTE maps only a pfn the RMP assigns to this guest at that gpa; "
        "otherwise every guest access takes an RMP #NPF and the vCPU loops on "
        "KVM_EXIT_MEMORY_FAULT (Roth, RFC patch 4/5; DOMAIN.md §3.4).",
        predicate=pred, source="DOMAIN.md I-4; §2.10, §3.4")


def npt_level_within_rmp_level(m: Any) -> Property | None:
    if not m.k.snp:
        return None

    def pred(s: Any) -> bool:
        npt, rmp = s.npt, s.rmp
        return all(npt[g] != NPT_HUGE or rmp[g] == RMP_2M for g in range(len(npt)))

    return Property(
        "npt-level-within-rmp-level", Kind.SAFETY,
        "A huge NPT mapping covers only pages in a 2M RMP entry: the fault path caps the "
        "level at sev_private_max_mapping_level (the RMP level), and after a PSMASH a "
        "larger mapping must be zapped (arch/x86/kvm/svm/sev.c).",
        predicate=pred, source="DOMAIN.md I-5; §1.3, §2.12")


def rmp_2m_well_formed(m: Any) -> Property | None:
    if not m.k.snp:
        return None
    n, huge = m.k.N, m.k.HUGE

    def pred(s: Any) -> bool:
        rmp, order = s.rmp, s.order
        for h in range(0, len(rmp), n):
            if any(rmp[p] == RMP_2M for p in range(h, h + n)):
                if not all(rmp[p] == RMP_2M for p in range(h, h + n)):
                    return False
                if order[h] < huge:
                    return False
        return True

    return Property(
        "rmp-2m-well-formed", Kind.SAFETY,
        "A 2M RMP entry covers a 2M-aligned range lying wholly inside one guest_memfd folio "
        "of huge order, all of it assigned: freeing part of it needs a PSMASH first "
        "(sev_gmem_invalidate).",
        predicate=pred, source="DOMAIN.md I-6; §1.4, §2.11")


PROPERTIES = {
    "mapping-implies-page-cache": mapping_implies_page_cache,
    "private-mapping-implies-assigned": private_mapping_implies_assigned,
    "npt-level-within-rmp-level": npt_level_within_rmp_level,
    "rmp-2m-well-formed": rmp_2m_well_formed,
}
