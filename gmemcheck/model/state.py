"""The state of one guest_memfd file, its KVM mappings and the SEV-SNP RMP (DOMAIN.md §1).

Everything is an array over the file's 4 KiB page indices, so that the explicit engine
and the Z3 encoding read the same shape:

* the page cache (§1.1) as ``order[i]``: the order of the folio covering index ``i``,
  or -1 for a hole. A folio of order k covers ``[i & ~(2**k - 1), +2**k)``; its flags
  (``uptodate``, ``dirty``) are kept on every page it covers, which is also what
  ``__split_folio_to_order`` does with them (mm/huge_memory.c). ``held[i]`` is the
  order of a folio already removed from the page cache (``filemap_remove_folio``) but
  still referenced by someone, so not yet back in the allocator.
* physical frames: the model gives file index ``i`` the frame ``pfn = i``. A folio
  removed from the page cache keeps its frames until its last reference drops; an
  allocation at those indices waits until then (the kernel would pick other frames;
  which frame is used does not change any property checked here). ``content[pfn]`` is
  what the page holds: stale host data, zeroes, or guest data.
* per-index guest_memfd state (§1.2): ``prepared`` is the PB/RFC inode bitmap,
  ``private`` the per-page bits of a design that keeps preparedness in
  ``folio->private``; ``attr`` is the memory attribute of the gfn (gfn = index).
* KVM stage-2 mappings per gfn (§1.3): ``npt`` is none, 4 KiB, or part of a huge
  mapping.
* the RMP per pfn (§1.4): shared, assigned with a 4 KiB entry, or assigned inside a
  2 MB entry (the pagesize bit of the 2M-aligned entry is authoritative, and every pfn
  of an assigned 2M entry reports assigned). ``dm4k[r]`` says the kernel direct map of
  huge region ``r`` was split to 4 KiB by ``adjust_direct_map``.
* threads (§1.6): one vCPU (``vcpu``: idle, or inside a fault holding a folio
  reference) and one VMM thread (``vmm``: idle, or inside a multi-step syscall).
  ``invalidate_lock`` and ``mmu_invalidate_in_progress`` follow from ``vmm``.
* history kept for properties: ``punched[i]`` (index punched since it was last used),
  and ``fault``: the first fatal event (a host RMP #PF oops, a TD poisoned by a host
  write, an RMPUPDATE livelock). A state with a fault is terminal.
"""

from __future__ import annotations

from typing import NamedTuple

# content of a frame
STALE, ZERO, DATA = 0, 1, 2
CONTENT_NAMES = {STALE: "stale-host-data", ZERO: "zero", DATA: "guest-data"}

# stage-2 mapping of a gfn
NPT_NONE, NPT_4K, NPT_HUGE = 0, 1, 2
NPT_NAMES = {NPT_NONE: "none", NPT_4K: "private 4K", NPT_HUGE: "private huge"}

# RMP entry of a pfn
RMP_SHARED, RMP_4K, RMP_2M = 0, 1, 2
RMP_NAMES = {RMP_SHARED: "shared", RMP_4K: "assigned 4K", RMP_2M: "assigned 2M"}

# host userspace mapping of a page (in-place conversion designs only)
HOST_NONE, HOST_MAPPED, HOST_GUP, HOST_PINNED = 0, 1, 2, 3
HOST_NAMES = {HOST_NONE: "none", HOST_MAPPED: "mmapped", HOST_GUP: "mmapped+GUP pin",
              HOST_PINNED: "GUP pin, unmapped"}

# fault kinds: the first fatal event
RMP_PF = "host-rmp-#pf-oops"          # host kernel store to an assigned pfn (§2.15)
USER_RMP_PF = "user-rmp-#pf"          # host userspace store to an assigned pfn (§2.15 [U])
TD_POISON = "td-private-host-write"   # TDX: host store to a TD-private page (§1.5)
RMPUPDATE_LIVELOCK = "rmpupdate-overlap-livelock"  # 4K RMPUPDATE in a 2M entry (§1.4)
HOST_WRITE_FAULTS = (RMP_PF, USER_RMP_PF, TD_POISON)

# VMM thread operations
OP_PUNCH = "punch"
OP_POPULATE = "populate"
PUNCH_BEGUN, PUNCH_TRUNCATED, PUNCH_UNPREPARED = "invalidated", "truncated", "unprepared"


class GmemState(NamedTuple):
    order: tuple[int, ...]
    uptodate: tuple[bool, ...]
    dirty: tuple[bool, ...]
    private: tuple[bool, ...]
    held: tuple[int, ...]
    prepared: tuple[bool, ...]
    content: tuple[int, ...]
    attr: tuple[bool, ...]
    npt: tuple[int, ...]
    rmp: tuple[int, ...]
    dm4k: tuple[bool, ...]
    leaked: tuple[bool, ...]
    host: tuple[int, ...]
    spec: int
    vcpu: tuple[int, ...]
    vmm: tuple[object, ...]
    launched: bool
    punched: tuple[bool, ...]
    fault: tuple[object, ...]


FIELDS = GmemState._fields


def initial_state(pages: int, regions: int, launched: bool, init_private: bool = True
                  ) -> GmemState:
    """``kvm_gmem_create`` + ``kvm_gmem_bind`` + ``KVM_SET_MEMORY_ATTRIBUTES(PRIVATE)``
    (DOMAIN.md §5 S-0 steps 1-3): an empty page cache over stale host memory, every
    gfn private, nothing mapped, every RMP entry shared."""
    f = (False,) * pages
    return GmemState(
        order=(-1,) * pages, uptodate=f, dirty=f, private=f, held=(-1,) * pages, prepared=f,
        content=(STALE,) * pages, attr=(init_private,) * pages, npt=(NPT_NONE,) * pages,
        rmp=(RMP_SHARED,) * pages, dm4k=(False,) * regions, leaked=f, host=(HOST_NONE,) * pages,
        spec=-1, vcpu=(), vmm=(), launched=launched, punched=f, fault=(),
    )


def folio_span(order: tuple[int, ...], i: int) -> tuple[int, int] | None:
    """``[head, end)`` of the page-cache folio covering index ``i``, or None."""
    o = order[i]
    if o < 0:
        return None
    head = i & ~((1 << o) - 1)
    return head, head + (1 << o)


def held_span(held: tuple[int, ...], i: int) -> tuple[int, int] | None:
    o = held[i]
    if o < 0:
        return None
    head = i & ~((1 << o) - 1)
    return head, head + (1 << o)


def folio_heads(order: tuple[int, ...]) -> list[tuple[int, int]]:
    """Every page-cache folio as ``(head, order)``, in index order."""
    out = []
    i = 0
    n = len(order)
    while i < n:
        o = order[i]
        if o < 0:
            i += 1
            continue
        out.append((i, o))
        i += 1 << o
    return out
