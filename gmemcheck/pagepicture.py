"""The picture of one guest_memfd state: a grid with one column per 4 KiB page of the
file and one row per thing a kernel developer draws for it (DOMAIN.md §1).

This is the only model-specific part of the HTML report (:mod:`gmemcheck.htmlreport`);
it reads the state's fields and ``model.k`` and returns a :class:`Picture`, which the
report draws as SVG. A model this module does not know gets no picture: the report then
shows its ``describe()`` items as a table.

Page numbers: gfn = file index, and each index has its own frame (pfn = index), as in
:mod:`gmemcheck.model.state`, so one column is index, gfn and pfn at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .model.state import (
    CONTENT_NAMES,
    HOST_GUP,
    HOST_NAMES,
    HOST_NONE,
    HOST_PINNED,
    NPT_HUGE,
    NPT_NONE,
    OP_POPULATE,
    OP_PUNCH,
    RMP_2M,
    RMP_4K,
    RMP_SHARED,
    folio_heads,
)


@dataclass(frozen=True)
class Seg:
    """One box of the grid: ``span`` pages of ``row`` from page ``start``.

    ``style`` picks the fill (a CSS class ``c-<style>``); ``style == "none"`` is an
    empty box, and a row whose boxes are all empty in every state of a trace is left
    out of that trace's pictures when the row is optional."""

    row: str
    start: int
    span: int
    text: str
    style: str
    title: str = ""


@dataclass
class Picture:
    columns: list[str]                       # one header per page
    groups: list[tuple[int, int, str]]       # (start, span, label): huge regions
    rows: list[tuple[str, str, bool]]        # (key, label, optional)
    segs: list[Seg]
    threads: list[tuple[str, str]] = field(default_factory=list)
    fault: tuple[int, str] | None = None     # (page, what) of the fatal event
    covers: Callable[[str], bool] = lambda key: False   # describe() keys drawn here


def _runs(values: list[Any], group: int, joinable: Callable[[Any], bool]
          ) -> list[tuple[int, int, Any]]:
    """Consecutive equal values inside each group of ``group`` pages, merged when
    ``joinable(value)`` (a 2M RMP entry, a huge stage-2 mapping), else one per page."""
    out: list[tuple[int, int, Any]] = []
    i = 0
    n = len(values)
    while i < n:
        v = values[i]
        j = i + 1
        if joinable(v):
            while j < n and j % group != 0 and values[j] == v:
                j += 1
        out.append((i, j - i, v))
        i = j
    return out


def _covered(key: str) -> bool:
    return (key.startswith(("folio@", "freed-but-referenced@", "pfn ", "gfn ", "index ",
                            "directmap ")) or key in (
        "prepared bitmap", "leaked pfns", "punched", "fault", "speculative ref", "vcpu",
        "vmm", "launched"))


def _vmm_text(vmm: tuple[Any, ...]) -> str:
    if not vmm:
        return "idle"
    if vmm[0] == OP_PUNCH:
        lo, hi, phase = vmm[1], vmm[2], vmm[3]
        rng = f"index {lo}" if hi - lo == 1 else f"indices {lo}..{hi - 1}"
        return f"inside fallocate(PUNCH_HOLE) of {rng}, {phase}; holds invalidate_lock"
    if vmm[0] == OP_POPULATE:
        return f"inside kvm_gmem_populate of gfn {vmm[1]}; holds invalidate_lock"
    return " ".join(str(x) for x in vmm)


def picture(model: Any, s: Any) -> Picture | None:
    """The grid for state ``s`` of the guest_memfd model, or None for another model."""
    if getattr(model, "name", None) != "guest_memfd" or not hasattr(s, "order"):
        return None
    k = model.k
    P, N = len(s.order), k.N
    axes = k.axes
    cols = [f"index {i}" for i in range(P)]
    groups = [(r * N, N, f"huge range {r}: indices {r * N}..{r * N + N - 1}")
              for r in range(P // N)]
    rows: list[tuple[str, str, bool]] = []
    segs: list[Seg] = []

    def row(key: str, label: str, optional: bool = False) -> None:
        rows.append((key, label, optional))

    # what the VMM thread is in the middle of
    row("op", "VMM syscall in progress", optional=True)
    vm = s.vmm
    if vm and vm[0] == OP_PUNCH and vm[2] > vm[1]:
        lo, hi = vm[1], vm[2]
        for i in range(lo):
            segs.append(Seg("op", i, 1, "", "none"))
        segs.append(Seg("op", lo, hi - lo, f"hole punch: {vm[3]}", "punch",
                        "fallocate(PUNCH_HOLE) of these indices, between "
                        "kvm_gmem_invalidate_begin and kvm_gmem_invalidate_end"))
        for i in range(hi, P):
            segs.append(Seg("op", i, 1, "", "none"))
    else:
        pop = vm[1] if vm and vm[0] == OP_POPULATE else -1
        for i in range(P):
            segs.append(Seg("op", i, 1, "populate" if i == pop else "",
                            "punch" if i == pop else "none"))
    # page cache
    row("folio", "page-cache folio")
    heads = dict(folio_heads(s.order))
    i = 0
    while i < P:
        if i in heads:
            o = heads[i]
            n = 1 << o
            extra = k.extra_refs(s, i, i + n)
            huge = " (huge)" if n == N and N > 1 else ""
            text = f"order {o}{huge}" + (f", +{extra} ref" if extra else "")
            segs.append(Seg("folio", i, n, text, "folio",
                            f"folio at index {i}, order {o}, {n} page(s)"))
            i += n
        else:
            segs.append(Seg("folio", i, 1, "hole", "hole", "no folio in the page cache"))
            i += 1
    row("uptodate", "PG_uptodate")
    row("dirty", "PG_dirty")
    for i in range(P):
        if s.order[i] < 0:
            segs.append(Seg("uptodate", i, 1, "", "none"))
            segs.append(Seg("dirty", i, 1, "", "none"))
        else:
            segs.append(Seg("uptodate", i, 1, "uptodate" if s.uptodate[i] else "not uptodate",
                            "yes" if s.uptodate[i] else "no"))
            segs.append(Seg("dirty", i, 1, "dirty" if s.dirty[i] else "clean",
                            "dirty" if s.dirty[i] else "no"))
    row("refs", "extra references", optional=True)
    for i in range(P):
        who = []
        if s.spec == i:
            who.append(_spec_taker(k, s))
        if s.vcpu and s.vcpu[0] == i:
            who.append("vCPU fault")
        if s.vmm and s.vmm[0] == OP_POPULATE and s.vmm[1] == i:
            who.append("populate")
        if k.tdx_pins and s.npt[i]:
            who.append("S-EPT pin")
        if k.gup_refs and s.host[i] in (HOST_GUP, HOST_PINNED):
            who.append("GUP pin")
        segs.append(Seg("refs", i, 1, " + ".join(who), "ref" if who else "none",
                        "references that make split_folio fail (can_split_folio)"))
    row("held", "removed, still referenced", optional=True)
    i = 0
    while i < P:
        o = s.held[i]
        if o >= 0 and i % (1 << o) == 0:
            segs.append(Seg("held", i, 1 << o, f"order {o}: waits for last ref", "held",
                            "removed from the page cache, frames not yet freed"))
            i += 1 << o
        else:
            segs.append(Seg("held", i, 1, "", "none"))
            i += 1
    # preparedness, per design
    prep = axes["preparedness"]
    if prep == "bitmap":
        row("prepared", "prepared (bitmap bit)")
        bits = s.prepared
    elif prep == "folio-private":
        row("prepared", "prepared (folio->private)")
        bits = s.private
    elif prep == "uptodate":
        row("prepared", "prepared (= PG_uptodate)")
        bits = s.uptodate
    else:
        row("prepared", "prepared")
        bits = None
    if bits is None:
        segs.append(Seg("prepared", 0, P, "not tracked: every fault prepares", "none"))
    else:
        for i in range(P):
            segs.append(Seg("prepared", i, 1, "prepared" if bits[i] else "not prepared",
                            "yes" if bits[i] else "no"))
    # guest view
    row("attr", "memory attribute (gfn)")
    for i in range(P):
        segs.append(Seg("attr", i, 1, "private" if s.attr[i] else "shared",
                        "private" if s.attr[i] else "shared"))
    row("npt", "stage-2 mapping (gfn)")
    for st, n, v in _runs(list(s.npt), N, lambda v: v == NPT_HUGE):
        text = {NPT_NONE: "not mapped", NPT_HUGE: "mapped huge (2M)"}.get(v, "mapped 4K")
        segs.append(Seg("npt", st, n, text, "none" if v == NPT_NONE else
                        ("huge" if v == NPT_HUGE else "small")))
    row("content", "content (pfn)")
    for i in range(P):
        c = CONTENT_NAMES[s.content[i]]
        segs.append(Seg("content", i, 1, {"stale-host-data": "stale host data",
                                          "guest-data": "guest data"}.get(c, c),
                        {"stale-host-data": "stale", "guest-data": "data"}.get(c, "zero")))
    if k.snp:
        row("rmp", "RMP entry (pfn)")
        for st, n, v in _runs(list(s.rmp), N, lambda v: v == RMP_2M):
            text = {RMP_SHARED: "shared (hypervisor)", RMP_4K: "assigned 4K",
                    RMP_2M: "assigned 2M"}[v]
            segs.append(Seg("rmp", st, n, text, {RMP_SHARED: "shared", RMP_4K: "assigned",
                                                 RMP_2M: "assigned2m"}[v]))
        row("dm", "kernel direct map")
        for r in range(P // N):
            segs.append(Seg("dm", r * N, N, "split to 4K" if s.dm4k[r] else "2M",
                            "dmsplit" if s.dm4k[r] else "none"))
    if axes["conversion"] == "in-place":
        row("host", "host userspace mapping")
        for i in range(P):
            segs.append(Seg("host", i, 1, HOST_NAMES[s.host[i]] if s.host[i] != HOST_NONE
                            else "not mapped", "none" if s.host[i] == HOST_NONE else "hostmap"))
    row("leaked", "leaked (snp_leak_pages)", optional=True)
    for i in range(P):
        segs.append(Seg("leaked", i, 1, "leaked" if s.leaked[i] else "",
                        "leaked" if s.leaked[i] else "none"))
    row("punched", "punched since last use")
    for i in range(P):
        segs.append(Seg("punched", i, 1, "punched" if s.punched[i] else "",
                        "punched" if s.punched[i] else "none"))

    threads = [
        ("vCPU", "idle" if not s.vcpu else
         f"inside a fault on gfn {s.vcpu[0]}, holding a folio reference"
         + (" (invalidation seen: stale)" if s.vcpu[1] else "")),
        ("VMM thread", _vmm_text(s.vmm)),
        ("transient reference", "none" if s.spec < 0 else
         f"{_spec_taker(k, s)} holds a reference at pfn {s.spec}"),
        ("guest launched", "yes (SNP_LAUNCH_FINISH done)" if s.launched else "no"),
    ]
    fault = (int(s.fault[1]), str(s.fault[0])) if s.fault else None
    return Picture(cols, groups, rows, segs, threads, fault, _covered)


def _spec_taker(k: Any, s: Any) -> str:
    """Who holds the transient reference at ``s.spec``: compaction
    (mm/compaction.c:isolate_migratepages_block) below pageblock order, and
    alloc_contig_range at or above it, which compaction skips (docs/kernel-notes.md)."""
    o = s.order[s.spec] if s.order[s.spec] >= 0 else s.held[s.spec]
    return "alloc_contig_range" if o >= k.HUGE else "compaction"
