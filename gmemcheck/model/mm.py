"""Page cache, folio split and truncation (DOMAIN.md §2.3, §2.6, §2.7, §2.8).

Follows mm/filemap.c (``filemap_add_folio``, ``filemap_remove_folio`` ->
``filemap_free_folio`` -> ``a_ops->free_folio``), mm/huge_memory.c (``split_folio``,
``folio_split``, ``can_split_folio``) and mm/truncate.c
(``truncate_inode_pages_range``, ``truncate_inode_partial_folio``,
``truncate_inode_folio``) as read in the linux-next copies listed in DOMAIN.md §6 S10
and the notes in docs/kernel-notes.md.

Three truncate versions are modelled (axis ``truncate``):

* ``zeroing``: before v6.11 ``folio_zero_range`` zeroes the punched part of a partial
  folio unconditionally, then ``split_folio`` splits uniformly to order 0;
* ``uniform``: v6.11..6.14, no zeroing for ``mapping_inaccessible`` (guest_memfd),
  uniform ``split_folio``;
* ``nonuniform``: v6.15 and later, ``try_folio_split`` at the first punched page, then
  a second split at the first page after the hole whose result is ignored (the newest
  code skips it when the hole runs to the folio's end, which is what is modelled).

On every version a failed split keeps a dirty folio (``truncate_inode_partial_folio``
returns false) and removes a clean one whole; pass 3 (``find_get_entries``) removes
every folio with a page in what is left of the range, whole, even one that straddles
its end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .registry import step
from .state import STALE
from .work import Work

EAGAIN = -11
ENOMEM = -12


# ------------------------------------------------------------------ lookups
def span_at(w: Work, i: int) -> tuple[int, int] | None:
    """``[head, end)`` of the page-cache folio covering ``i`` (filemap_get_folio)."""
    o = w.get("order")[i]
    if o < 0:
        return None
    h = i & ~((1 << o) - 1)
    return h, h + (1 << o)


def folios_in(w: Work, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """``[head, end)`` of each page-cache folio with a page in ``[lo, hi)``, in index
    order, read as the walk goes (the caller may remove or change the folio before the
    next one is looked up), stopping once a fatal event happened (the
    find_lock_entries / filemap_get_folios walk of mm/truncate.c and guest_memfd.c)."""
    i = lo
    while i < hi and not w.faulted:
        span = span_at(w, i)
        if span is None:
            i += 1
            continue
        yield span
        i = span[1]


def held_at(w: Work, i: int) -> tuple[int, int] | None:
    o = w.get("held")[i]
    if o < 0:
        return None
    h = i & ~((1 << o) - 1)
    return h, h + (1 << o)


def frames_free(w: Work, lo: int, hi: int) -> bool:
    """Frames ``[lo, hi)`` are in the allocator: in no page-cache folio, no folio that
    is still referenced, and not leaked."""
    order, held, leaked = w.get("order"), w.get("held"), w.get("leaked")
    return all(order[i] < 0 and held[i] < 0 and not leaked[i] for i in range(lo, hi))


def range_has_page(w: Work, lo: int, hi: int) -> bool:
    """mm/filemap.c:filemap_range_has_page."""
    order = w.get("order")
    return any(order[i] >= 0 for i in range(lo, hi))


# ------------------------------------------------------------------ add / free
@step("filemap_add_folio", "mm/filemap.c:filemap_add_folio: insert a new, unlocked-on-return "
      "folio of the given order; flags clear; the frames are not zeroed (§2.3)")
def filemap_add_folio(k: Any, w: Work, head: int, order: int) -> None:
    o, up, di, pr = w.arr("order"), w.arr("uptodate"), w.arr("dirty"), w.arr("private")
    pun = w.get("punched")
    for i in range(head, head + (1 << order)):
        o[i] = order
        up[i] = di[i] = pr[i] = False
        if pun[i]:
            # fresh memory: no longer the punched pages
            w.arr("punched")[i] = False
    w.event(f"filemap_add_folio(index {head}, order {order})")


def free_frames(k: Any, w: Work, lo: int, hi: int) -> None:
    """The last reference to a folio is dropped: its frames go back to the buddy
    allocator, which makes no promise about their content (stale host data)."""
    content = w.arr("content")
    for p in range(lo, hi):
        content[p] = STALE
    w.event(f"folio_put: pfn {lo}..{hi - 1} freed to the page allocator")


@step("filemap_remove_folio", "mm/filemap.c:filemap_remove_folio -> filemap_free_folio: "
      "remove from the page cache, call a_ops->free_folio, drop the page-cache refs (§2.8)")
def filemap_remove_folio(k: Any, w: Work, head: int, end: int) -> None:
    order = w.get("order")[head]
    o, up, di, pr = w.arr("order"), w.arr("uptodate"), w.arr("dirty"), w.arr("private")
    held = w.arr("held")
    # truncate_cleanup_folio: folio_cancel_dirty; then __filemap_remove_folio. Until the
    # page-cache references are dropped the frames are not back in the allocator.
    for i in range(head, end):
        o[i] = -1
        up[i] = di[i] = pr[i] = False
        held[i] = order
    w.event(f"filemap_remove_folio(index {head}, order {order})")
    # filemap_free_folio: ->free_folio runs at removal, whatever the refcount.
    k.kvm_gmem_free_folio(w, head, end)
    if w.faulted:
        return
    if k.extra_refs(w_state(w), head, end):
        w.event(f"folio at index {head} stays allocated: still referenced")
    else:
        for i in range(head, end):
            held[i] = -1
        free_frames(k, w, head, end)


def put_extra_ref(k: Any, w: Work, pfn: int) -> None:
    """A holder other than the page cache dropped its reference (folio_put): a folio
    already removed from the page cache is freed when nobody references it any more."""
    span = held_at(w, pfn)
    if span is None:
        return
    lo, hi = span
    if k.extra_refs(w_state(w), lo, hi) == 0:
        held = w.arr("held")
        for i in range(lo, hi):
            held[i] = -1
        free_frames(k, w, lo, hi)


class _View:
    """Read-only attribute view of a Work, for helpers written against a state."""

    __slots__ = ("w",)

    def __init__(self, w: Work) -> None:
        self.w = w

    def __getattr__(self, f: str) -> Any:
        return self.w.get(f)


def w_state(w: Work) -> Any:
    return _View(w)


# ------------------------------------------------------------------ split
def intermediate_orders(k: Any) -> bool:
    """The design can leave folios of an order strictly between 0 and the huge order:
    the 6.15+ non-uniform truncate (mm/huge_memory.c:__split_unmapped_folio, buddy
    halves around split_at) on THP folios of at least 4 pages (at 2 pages a buddy split
    is the uniform one; HugeTLB folios are split to order 0 or merged whole)."""
    return (k.axes["truncate"] == "nonuniform" and k.axes["partial_punch"] == "truncate"
            and k.axes["allocation"] in ("thp-fallback", "huge-only") and k.HUGE >= 2)


def buddy_pieces(head: int, order: int, at: int) -> list[tuple[int, int]]:
    """Pieces of a non-uniform (buddy) split of ``[head, head + 2**order)`` that leaves
    page ``at`` in an order-0 folio (mm/huge_memory.c:__split_unmapped_folio)."""
    pieces = []
    h, o = head, order
    while o > 0:
        o -= 1
        half = 1 << o
        if at < h + half:
            pieces.append((h + half, o))
        else:
            pieces.append((h, o))
            h += half
    pieces.append((h, 0))
    return sorted(pieces)


@step("split_folio", "mm/huge_memory.c:__folio_split: fail with -EAGAIN on any unexpected "
      "reference (can_split_folio, folio_ref_freeze), else replace the folio by the given "
      "pieces, copying uptodate/dirty but not folio->private (§2.7)")
def split_folio(k: Any, w: Work, head: int, end: int, pieces: list[tuple[int, int]]) -> int:
    if k.extra_refs(w_state(w), head, end):
        w.event(f"split of folio at index {head}: -EAGAIN (unexpected reference)")
        return EAGAIN
    o, pr, host = w.arr("order"), w.arr("private"), w.get("host")
    for h, po in pieces:
        for i in range(h, h + (1 << po)):
            o[i] = po
            # folio->private is not copied to the new folios: only the piece that keeps
            # the original head page keeps it (mm/huge_memory.c:__split_folio_to_order).
            if h != head:
                pr[i] = False
    if any(host[i] for i in range(head, end)):
        k.unmap_host(w, head, end)
    desc = ", ".join(f"[{h}..{h + (1 << po) - 1}]" if po else f"[{h}]" for h, po in pieces)
    w.event(f"split folio at index {head} into {desc}")
    return 0


def split_to_order0(k: Any, w: Work, head: int, end: int) -> int:
    """split_folio(): uniform split to order 0 (the mapping's minimum order)."""
    return k.split_folio(w, head, end, [(i, 0) for i in range(head, end)])


# ------------------------------------------------------------------ truncate
@step("truncate_inode_partial_folio",
      "mm/truncate.c:truncate_inode_partial_folio: zero (old kernels), split, and on split "
      "failure keep a dirty folio (return False) or remove a clean one whole (§2.6)")
def truncate_inode_partial_folio(k: Any, w: Work, head: int, end: int, lo: int, hi: int
                                 ) -> bool:
    """Truncate the pages ``[lo, hi)`` of the folio ``[head, end)``."""
    lo, hi = max(lo, head), min(hi, end)
    if lo == head and hi == end:
        k.filemap_remove_folio(w, head, end)
        return True
    version = k.axes["truncate"]
    if version == "zeroing":
        # Before v6.11 folio_zero_range ran even for mapping_inaccessible mappings.
        for p in range(lo, hi):
            if not k.host_write(w, p, "folio_zero_range (truncate_inode_partial_folio)"):
                return True
    if end - head == 1:
        return True
    order = w.get("order")[head]
    if version == "nonuniform":
        ret = k.split_folio(w, head, end, buddy_pieces(head, order, lo))
        if ret == 0:
            # Second split at the first page after the hole, result ignored; skipped
            # when the hole runs to the folio's end (newest code).
            if hi < end:
                span = span_at(w, hi)
                if span and span[1] - span[0] > 1:
                    if w.opt.get("split_fail", False):
                        w.event(f"second split at index {hi}: fails (trylock/-ENOMEM)")
                    else:
                        po = w.get("order")[span[0]]
                        k.split_folio(w, span[0], span[1], buddy_pieces(span[0], po, hi))
            return True
    else:
        ret = split_to_order0(k, w, head, end)
        if ret == 0:
            return True
    if w.get("dirty")[head]:
        w.event(f"folio at index {head} is dirty: kept whole, nothing freed")
        return False
    w.event(f"folio at index {head} is clean: removed whole (truncate_inode_folio)")
    k.filemap_remove_folio(w, head, end)
    return True


@step("truncate_inode_pages_range",
      "mm/truncate.c:truncate_inode_pages_range over the pages [lo, hi) (§2.6)")
def truncate_inode_pages_range(k: Any, w: Work, lo: int, hi: int) -> None:
    start, end = lo, hi
    # Pass 1 (find_lock_entries): folios wholly inside the range.
    for h, e in folios_in(w, lo, hi):
        if h >= lo and e <= hi:
            k.filemap_remove_folio(w, h, e)
    if w.faulted:
        return
    # The folio at lstart (same_folio from its original size), then the one at lend.
    same_folio = lo == hi - 1
    span = span_at(w, lo)
    if span is not None:
        h, e = span
        same_folio = hi <= e
        if not k.truncate_inode_partial_folio(w, h, e, lo, hi):
            start = e
            if same_folio:
                end = h
    if w.faulted:
        return
    if not same_folio:
        span = span_at(w, hi - 1)
        if span is not None:
            h, e = span
            if not k.truncate_inode_partial_folio(w, h, e, lo, hi):
                end = h
    # Pass 3 (find_get_entries): every folio with a page in [start, end), whole.
    for h, e in folios_in(w, start, end):
        if h < lo or e > hi:
            w.event(f"pass 3 removes folio [{h}..{e - 1}], which straddles the hole")
        k.filemap_remove_folio(w, h, e)
