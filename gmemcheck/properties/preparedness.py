"""Preparedness: what guest_memfd believes was prepared against what the RMP and the
page contents say (DOMAIN.md §1.2, §2.9, §3.3-§3.5; invariants I-8, I-9, I-16)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..checker.core import Kind, Property
from ..model.state import NPT_NONE, RMP_SHARED, STALE


def prepared_fn(m: Any) -> Callable[[Any, int], bool]:
    """The design's own notion of "page i is prepared"."""
    tracking = m.k.axes["preparedness"]
    if tracking == "bitmap":
        return lambda s, i: bool(s.prepared[i])
    if tracking == "folio-private":
        return lambda s, i: bool(s.private[i])
    return lambda s, i: bool(s.uptodate[i])


def preparedness_preserved_on_split(m: Any) -> Property:
    prepared = prepared_fn(m)

    def step(pre: Any, label: tuple[str, tuple[Any, ...]], post: Any) -> bool:
        po, qo = pre.order, post.order
        if po is qo or po == qo:
            return True  # no folio changed order: no split (most steps)
        for i, (a, b) in enumerate(zip(po, qo, strict=True)):
            if 0 <= b < a and prepared(pre, i) != prepared(post, i):
                return False
        return True

    return Property(
        "preparedness-preserved-on-split", Kind.SAFETY,
        "The seed thread's second example: a split keeps the prepared state of every 4K "
        "page (none lost, none gained). __split_folio_to_order copies PG_uptodate and "
        "PG_dirty to every new folio but not folio->private (mm/huge_memory.c); the "
        "PB/RFC inode bitmap is not touched by a split.",
        step=step, source="seed thread; DOMAIN.md I-16; §1.1, §2.7")


def prepared_agrees_with_rmp(m: Any) -> Property | None:
    tracking = m.k.axes["preparedness"]
    if not m.k.snp or tracking == "none":
        return None
    prepared = prepared_fn(m)
    both_ways = tracking in ("bitmap", "folio-private")

    def pred(s: Any) -> bool:
        order, rmp = s.order, s.rmp
        for i in range(len(order)):
            if order[i] < 0:
                continue
            assigned = rmp[i] != RMP_SHARED
            p = prepared(s, i)
            if p and not assigned:
                return False
            if both_ways and assigned and not p:
                return False
        return True

    return Property(
        "prepared-agrees-with-rmp", Kind.SAFETY,
        "For a page in the page cache, the design's prepared state agrees with RMP "
        "ownership: prepared implies assigned (else the guest maps an unassigned page and "
        "loops on #NPF, §3.4), and for per-page tracking assigned implies prepared (else "
        "the next fault runs clear_highpage on an assigned page, §3.3, §3.5). "
        "ML-latest keeps no prepared state: not applicable.",
        predicate=pred, source="DOMAIN.md I-8; §3.3, §3.4, §3.5")


def zeroed_before_guest_visible(m: Any) -> Property:
    def pred(s: Any) -> bool:
        npt, content = s.npt, s.content
        return all(npt[g] == NPT_NONE or content[g] != STALE for g in range(len(npt)))

    return Property(
        "zeroed-before-guest-visible", Kind.SAFETY,
        "No page the guest can reach through its stage-2 mapping still holds stale host "
        "data: guest_memfd frames are not zeroed at allocation, so prepare (or populate) "
        "must write every page before it is mapped. A bitmap that outlives the folio can "
        "skip that (§3.4, new 2M folio with stale bits set).",
        predicate=pred, source="DOMAIN.md I-9; §2.3, §3.4")


PROPERTIES = {
    "preparedness-preserved-on-split": preparedness_preserved_on_split,
    "prepared-agrees-with-rmp": prepared_agrees_with_rmp,
    "zeroed-before-guest-visible": zeroed_before_guest_visible,
}
