"""Progress: punched memory is freed, nothing deadlocks, huge backing can come back
(DOMAIN.md §3.3 (i), §3.7, §2.13; invariants I-11, I-13, I-14; David's points 2 and 3)."""

from __future__ import annotations

from typing import Any

from ..checker.core import Kind, Property

# Steps that finish what a thread started, or drop a transient reference: weakly fair.
TRANSIENT = ("folio_put", "unpin_user_page", "kvm_tdp_mmu_map", "truncate_inode_pages_range",
             "kvm_gmem_mark_range_unprepared", "kvm_gmem_invalidate_end",
             "tdx_gmem_post_populate")


def punched_memory_eventually_freed(m: Any) -> Property:
    n = m.k.N
    names = {a.name for a in m.actions}

    def stuck(s: Any) -> bool:
        # Every page of huge range 0 punched (and not used since), yet a folio of it is
        # still allocated: in the page cache, or removed but still referenced.
        return all(s.punched[i] for i in range(n)) and any(
            s.order[i] >= 0 or s.held[i] >= 0 for i in range(n))

    return Property(
        "punched-memory-eventually-freed", Kind.LIVENESS,
        "David Hildenbrand: \"a sequence of partial punches that cover the whole huge page "
        "will not end up freeing all parts if splitting failed at some point\". Once every "
        "page of a huge range has been punched, its folios are eventually freed, provided "
        "transient references are dropped and started syscalls finish. A dirty folio kept "
        "by a failed split stays in the page cache (truncate_inode_partial_folio returns "
        "false) and only a punch covering the whole folio removes it.",
        trigger=stuck, predicate=lambda s: not stuck(s),
        fairness=tuple(a for a in TRANSIENT if a in names),
        fairness_note="weak fairness of dropping transient references and of finishing a "
                      "started punch, fault or populate; userspace is not obliged to punch again",
        source="seed thread; DOMAIN.md I-11; §3.3 (i)")


def no_deadlock(m: Any) -> Property:
    return Property(
        "no-deadlock", Kind.DEADLOCK,
        "No reachable state in which no thread can take a step (the environment aside). "
        "With RFC patch 3, kvm_gmem_get_pfn takes invalidate_lock shared; TDX populate "
        "holds it exclusive and faults through kvm_tdp_map_page -> kvm_gmem_get_pfn: a "
        "self-deadlock (Yan Zhao, 2025-04-07).",
        source="DOMAIN.md I-14; §2.13, S-4")


def huge_backing_recoverable(m: Any) -> Property | None:
    if m.k.axes["allocation"] == "order0":
        return None
    n, huge = m.k.N, m.k.HUGE

    return Property(
        "huge-backing-recoverable", Kind.RECOVERABLE,
        "David Hildenbrand's point 3: once guest_memfd falls back to small pages or splits "
        "a THP, \"the remaining fragments cannot get reassembled anymore\". From every "
        "reachable state, a state where huge range 0 is backed by one huge folio must be "
        "reachable without userspace punching memory away (kvm_gmem_punch_hole excluded): "
        "guest_memfd folios are unmovable, so no compaction or khugepaged can do it.",
        predicate=lambda s: s.order[0] == huge and all(s.order[i] == huge for i in range(n)),
        avoid=("kvm_gmem_punch_hole",),
        source="seed thread point 3; DOMAIN.md I-13; §3.7")


PROPERTIES = {
    "punched-memory-eventually-freed": punched_memory_eventually_freed,
    "no-deadlock": no_deadlock,
    "huge-backing-recoverable": huge_backing_recoverable,
}
