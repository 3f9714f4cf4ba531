"""guest_memfd itself: folio allocation, preparedness, the fault-side ``kvm_gmem_get_pfn``,
fallocate, hole punching and populate (DOMAIN.md §1.2, §2.3-§2.5, §2.9, §2.13).

Sources: virt/kvm/guest_memfd.c in its mainline versions (ML-6.13..6.19 where
PG_uptodate means prepared, ML-latest with no tracking), Paolo Bonzini's per-page
bitmap (PB) and Michael Roth's THP RFC on top of it (RFC), as described in DOMAIN.md
§6 S1-S6. Which variant runs is chosen per design by the axes ``allocation``,
``preparedness`` and ``prepare_clear`` (see :mod:`.axes`).
"""

from __future__ import annotations

from typing import Any

from .mm import ENOMEM, frames_free, range_has_page, span_at, split_to_order0
from .registry import step
from .snp import rmp_make_private
from .state import DATA, RMP_SHARED, STALE
from .work import Work

EEXIST = -17
EINVAL = -22
EIO = -5


# ------------------------------------------------------------------ allocation
@step("kvm_gmem_get_folio", "guest_memfd.c:kvm_gmem_get_folio, mainline: an order-0 folio "
      "(filemap_grab_folio) when the index has none (§2.3)")
def get_folio_order0(k: Any, w: Work, index: int, huge_ok: bool) -> tuple[int, int] | int:
    span = span_at(w, index)
    if span is not None:
        return span
    if not frames_free(w, index, index + 1):
        w.event(f"kvm_gmem_get_folio(index {index}): -ENOMEM, frame still referenced")
        return ENOMEM
    k.filemap_add_folio(w, index, 0)
    return index, index + 1


def huge_attempt(k: Any, s: Any, index: int) -> bool:
    """Whether kvm_gmem_get_folio would try a PMD-order allocation for ``index``
    (used to offer the nondeterministic allocation failure only where it matters)."""
    if s.order[index] >= 0:
        return False
    h = index - index % k.N
    return all(s.order[i] < 0 and s.held[i] < 0 and not s.leaked[i] for i in range(h, h + k.N))


def get_folio_thp(k: Any, w: Work, index: int, huge_ok: bool) -> tuple[int, int] | int:
    """RFC ``kvm_gmem_get_folio`` -> ``kvm_gmem_get_huge_folio``: a PMD folio at the
    aligned index unless the 2M range already has a page (filemap_range_has_page) or
    the allocation fails (no __GFP_RETRY_MAYFAIL); then fall back to order 0 (§2.3)."""
    span = span_at(w, index)
    if span is not None:
        return span
    h = index - index % k.N
    if range_has_page(w, h, h + k.N):
        w.event(f"kvm_gmem_get_huge_folio(index {h}): range has a page, fall back to order 0")
    elif not frames_free(w, h, h + k.N):
        w.event(f"kvm_gmem_get_huge_folio(index {h}): frames still referenced, order 0")
    elif not huge_ok:
        w.event(f"kvm_gmem_get_huge_folio(index {h}): PMD allocation failed, order 0")
    else:
        k.filemap_add_folio(w, h, k.HUGE)
        return h, h + k.N
    return get_folio_order0(k, w, index, huge_ok)


def get_folio_huge_only(k: Any, w: Work, index: int, huge_ok: bool) -> tuple[int, int] | int:
    """Always-huge (DOMAIN.md AH, David's suggestion): a PMD folio from the buddy with
    no fallback; failure is -ENOMEM to the caller."""
    span = span_at(w, index)
    if span is not None:
        return span
    h = index - index % k.N
    if not huge_ok or range_has_page(w, h, h + k.N) or not frames_free(w, h, h + k.N):
        w.event(f"kvm_gmem_get_folio(index {index}): no PMD folio and no fallback: -ENOMEM")
        return ENOMEM
    k.filemap_add_folio(w, h, k.HUGE)
    return h, h + k.N


# ------------------------------------------------------------------ preparedness
# is_prepared / mark_prepared / mark_range_unprepared per tracking design (§1.2).
@step("kvm_gmem_is_prepared", "whether guest_memfd.c:__kvm_gmem_get_pfn calls "
      "kvm_gmem_prepare_folio; ML-6.13..6.19: folio_test_uptodate of the folio "
      "(DOMAIN.md §1.2, §2.9)")
def is_prepared_uptodate(k: Any, w: Any, index: int, head: int, end: int, mo: int) -> bool:
    return bool(w.get("uptodate")[index])


def is_prepared_never(k: Any, w: Any, index: int, head: int, end: int, mo: int) -> bool:
    """ML-latest: no tracking; kvm_gmem_get_pfn always calls the prepare path."""
    return False


def is_prepared_bitmap(k: Any, w: Any, index: int, head: int, end: int, mo: int) -> bool:
    """PB/RFC kvm_gmem_is_prepared(index, order): every bit of the aligned range set."""
    n = 1 << mo
    lo = index - index % n
    bits = w.get("prepared")
    return all(bits[i] for i in range(lo, lo + n))


def is_prepared_private(k: Any, w: Any, index: int, head: int, end: int, mo: int) -> bool:
    """Preparedness kept in folio->private: every page's bit of the aligned range set."""
    n = 1 << mo
    lo = index - index % n
    bits = w.get("private")
    return all(bits[i] for i in range(lo, lo + n))


@step("kvm_gmem_mark_prepared", "guest_memfd.c:kvm_gmem_mark_prepared records that a "
      "range is prepared; ML-6.13..6.19: folio_mark_uptodate (DOMAIN.md §2.9)")
def mark_prepared_uptodate(k: Any, w: Work, index: int, head: int, end: int, mo: int) -> None:
    up = w.arr("uptodate")
    for i in range(head, end):
        up[i] = True


def mark_prepared_none(k: Any, w: Work, index: int, head: int, end: int, mo: int) -> None:
    """ML-latest keeps no prepared state (uptodate only means initialized)."""


def mark_prepared_bitmap(k: Any, w: Work, index: int, head: int, end: int, mo: int) -> None:
    n = 1 << mo
    lo = index - index % n
    bits = w.arr("prepared")
    for i in range(lo, lo + n):
        bits[i] = True


def mark_prepared_private(k: Any, w: Work, index: int, head: int, end: int, mo: int) -> None:
    n = 1 << mo
    lo = index - index % n
    bits = w.arr("private")
    for i in range(lo, lo + n):
        bits[i] = True


@step("kvm_gmem_mark_range_unprepared", "PB/RFC guest_memfd.c:kvm_gmem_mark_range_unprepared: "
      "clear the "
      "bitmap over the punched range whether or not the folios were freed (§2.5 step 4); "
      "no-op for designs without an inode bitmap")
def mark_range_unprepared_none(k: Any, w: Work, lo: int, hi: int) -> None:
    pass


def mark_range_unprepared_bitmap(k: Any, w: Work, lo: int, hi: int) -> None:
    bits = w.arr("prepared")
    for i in range(lo, hi):
        bits[i] = False
    w.event(f"kvm_gmem_mark_range_unprepared(index {lo}..{hi - 1})")


def clear_highpages(k: Any, w: Work, pages: list[int]) -> bool:
    for p in pages:
        if not k.host_write(w, p, "clear_highpage (kvm_gmem_prepare_folio)"):
            return False
    return True


@step("kvm_gmem_prepare_folio", "guest_memfd.c:kvm_gmem_prepare_folio: clear_highpage the "
      "pages that need it (host writes through the direct map), kvm_arch_gmem_prepare, then "
      "mark prepared (§2.9). Returns False if a host write faulted")
def prepare_folio(k: Any, w: Work, index: int, head: int, end: int, mo: int) -> bool:
    if k.axes["preparedness"] == "none":
        # ML-latest: clear only a folio that is not uptodate, then always prepare.
        if not w.get("uptodate")[index]:
            if not clear_highpages(k, w, list(range(head, end))):
                return False
            up = w.arr("uptodate")
            for i in range(head, end):
                up[i] = True
        k.kvm_arch_gmem_prepare(w, index, mo)
        return not w.faulted
    if k.axes["prepare_clear"] == "unprepared-pages":
        n = 1 << mo
        lo = index - index % n
        pages = [i for i in range(lo, lo + n)
                 if not k.kvm_gmem_is_prepared(w, i, head, end, 0)]
    else:
        pages = list(range(head, end))
    if not clear_highpages(k, w, pages):
        return False
    k.kvm_arch_gmem_prepare(w, index if mo == 0 else head, mo)
    if w.faulted:
        return False
    k.kvm_gmem_mark_prepared(w, index, head, end, mo)
    return True


@step("kvm_gmem_free_folio", "guest_memfd.c:kvm_gmem_free_folio: the free_folio address-space "
      "operation, kvm_arch_gmem_invalidate over the folio's pfns (§2.8)")
def free_folio(k: Any, w: Work, head: int, end: int) -> None:
    k.kvm_arch_gmem_invalidate(w, head, end)


# ------------------------------------------------------------------ actions' bodies
def get_pfn(k: Any, w: Work, gfn: int, huge_ok: bool) -> None:
    """virt/kvm/guest_memfd.c:kvm_gmem_get_pfn (-> __kvm_gmem_get_pfn): find or
    allocate the folio, prepare it if the design says it is not prepared, return the
    pfn with a folio reference held until kvm_release_faultin_page (§2.9)."""
    r = k.kvm_gmem_get_folio(w, gfn, huge_ok)
    if isinstance(r, int):
        w.ret = r
        return
    head, end = r
    mo = w.get("order")[head]
    if not k.kvm_gmem_is_prepared(w, gfn, head, end, mo):
        if not k.kvm_gmem_prepare_folio(w, gfn, head, end, mo):
            return
    w.arr("punched")[gfn] = False
    w.put("vcpu", (gfn, 0))
    w.ret = 0


def allocate(k: Any, w: Work, lo: int, hi: int) -> None:
    """guest_memfd.c:kvm_gmem_allocate (fallocate without PUNCH_HOLE, under
    invalidate_lock shared): kvm_gmem_get_folio for each index, stepping by folio;
    nothing is zeroed or prepared (§2.4)."""
    i = lo
    while i < hi:
        r = k.kvm_gmem_get_folio(w, i, True)
        if isinstance(r, int):
            w.ret = r
            return
        pun = w.arr("punched")
        for j in range(max(lo, r[0]), min(hi, r[1])):
            pun[j] = False
        i = r[1]
    w.ret = 0


def populate_check(k: Any, w: Work, gfn: int) -> tuple[int, int] | int:
    """The common part of kvm_gmem_populate for one page: the PRIVATE attribute check,
    kvm_gmem_get_folio, and (ML-6.13..6.19, PB, RFC) -EEXIST for a page already
    prepared (§2.13)."""
    if not w.get("attr")[gfn]:
        w.event("kvm_gmem_populate: gfn is not PRIVATE: -EINVAL")
        return EINVAL
    r = k.kvm_gmem_get_folio(w, gfn, True)
    if isinstance(r, int):
        return r
    head, end = r
    if k.axes["preparedness"] != "none" and k.kvm_gmem_is_prepared(w, gfn, head, end, 0):
        w.event("kvm_gmem_populate: page already prepared: -EEXIST")
        return EEXIST
    return r


@step("sev_gmem_post_populate", "arch/x86/kvm/svm/sev.c:sev_gmem_post_populate for one page: "
      "-EEXIST if the RMP entry is assigned, else copy the source in (a host write to a "
      "shared page), rmp_make_private 4K immutable, SNP_LAUNCH_UPDATE (§2.13)")
def sev_gmem_post_populate(k: Any, w: Work, gfn: int) -> int:
    if w.get("rmp")[gfn] != RMP_SHARED:
        w.event(f"sev_gmem_post_populate(pfn {gfn}): RMP entry assigned: -EEXIST")
        return EEXIST
    if not k.host_write(w, gfn, "sev_gmem_post_populate copy from the source", DATA):
        return EIO
    if not rmp_make_private(k, w, gfn, False):
        return EIO
    w.event(f"SNP_LAUNCH_UPDATE(pfn {gfn}, 4K)")
    return 0


def snp_populate(k: Any, w: Work, gfn: int) -> None:
    """KVM_SEV_SNP_LAUNCH_UPDATE of one page: svm/sev.c:snp_launch_update ->
    guest_memfd.c:kvm_gmem_populate (invalidate_lock exclusive) ->
    svm/sev.c:sev_gmem_post_populate; on success the page is marked prepared (uptodate
    / bit) for order 0. Any error reaches userspace as -EIO (DOMAIN.md §2.13,
    docs/kernel-notes.md)."""
    r = populate_check(k, w, gfn)
    if isinstance(r, int):
        w.ret = EIO
        return
    head, end = r
    ret = k.sev_gmem_post_populate(w, gfn)
    if ret:
        w.ret = EIO
        return
    w.arr("punched")[gfn] = False
    if k.axes["preparedness"] == "none":
        # ML-latest __kvm_gmem_populate: folio_mark_uptodate after post_populate
        # ("initialized"); it is a folio flag, set on every page of the folio.
        up = w.arr("uptodate")
        for i in range(head, end):
            up[i] = True
    else:
        k.kvm_gmem_mark_prepared(w, gfn, head, end, 0)
    w.ret = 0


def content_is_stale(s: Any, pfn: int) -> bool:
    return s.content[pfn] == STALE


# ------------------------------------------------------------------ hugetlb allocation
def get_folio_hugetlb(k: Any, w: Work, index: int, huge_ok: bool) -> tuple[int, int] | int:
    """HT ``gmem_hugetlb_alloc_folio`` from the reserved pool (no fallback, no failure
    while the pool has the pages), then ``__maybe_split_fresh_folio``: a fresh folio
    over a range that is not entirely PRIVATE is split to order 0 at once (§2.3)."""
    span = span_at(w, index)
    if span is not None:
        return span
    h = index - index % k.N
    if not frames_free(w, h, h + k.N):
        w.event(f"gmem_hugetlb_alloc_folio(index {h}): pool page still referenced: -ENOMEM")
        return ENOMEM
    k.filemap_add_folio(w, h, k.HUGE)
    attr = w.get("attr")
    if not all(attr[i] for i in range(h, h + k.N)):
        split_to_order0(k, w, h, h + k.N)
        return index, index + 1
    return h, h + k.N
