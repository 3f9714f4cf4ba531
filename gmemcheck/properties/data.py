"""Guest data: a punch loses nothing outside its range (DOMAIN.md §3.4, §3.8; I-10)."""

from __future__ import annotations

from typing import Any

from ..checker.core import Kind, Property
from ..model.state import DATA, OP_PUNCH


def no_data_loss_outside_punch(m: Any) -> Property:
    def step(pre: Any, label: tuple[str, tuple[Any, ...]], post: Any) -> bool:
        lo = hi = 0
        vm = pre.vmm
        if label[0] == "truncate_inode_pages_range" and vm and vm[0] == OP_PUNCH:
            lo, hi = vm[1], vm[2]
        for i, (a, b) in enumerate(zip(pre.order, post.order, strict=True)):
            if a >= 0 and b < 0 and pre.content[i] == DATA and not lo <= i < hi:
                return False
        return True

    return Property(
        "no-data-loss-outside-punch", Kind.SAFETY,
        "A punch removes no page holding guest data outside [offset, offset+len), and no "
        "other step removes one at all. truncate_inode_partial_folio removes a clean folio "
        "whole when its split fails (§3.4), and pass 3 of truncate_inode_pages_range "
        "removes a piece straddling the hole whole (§3.8) (mm/truncate.c).",
        step=step, source="DOMAIN.md I-10; §3.4, §3.8")


PROPERTIES = {"no-data-loss-outside-punch": no_data_loss_outside_punch}
