"""The claims made in the seed thread (and DOMAIN.md §3), each tied to the preset and
property that test it. ``gmemcheck claims`` runs the checks and writes docs/claims.md;
a test regenerates it and fails if the committed file is not current."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import properties
from .checker.core import Result, Trace, Verdict
from .checker.run import check, steps
from .model import apply_overrides, build, load_preset


@dataclass(frozen=True)
class Claim:
    text: str
    who: str
    preset: str
    prop: str
    sets: tuple[str, ...] = ()
    reading: str = ""   # what the verdict means for the claim


CLAIMS: list[Claim] = [
    Claim("Splitting might fail in some cases if there are unexpected references.",
          "David Hildenbrand", "rfc-thp", "reach-split-failed-dirty",
          reading="Confirmed: a speculative reference or the faulting vCPU's own makes "
                  "split_folio fail with -EAGAIN during a partial punch."),
    Claim("Punching a hole in private memory may make truncate_inode_pages_range() "
          "overwrite it with 0s if splitting the THP failed.",
          "David Hildenbrand", "rfc-thp-zeroing", "punched-private-never-host-written",
          reading="Confirmed on kernels before 6.11, which zero the punched part of a "
                  "partial folio: the store hits a page the RMP still assigns (host oops)."),
    Claim("Since 6.11 truncate no longer zeroes guest_memfd, but a punched page of a folio "
          "kept after a failed split is still written by the host.",
          "DOMAIN.md §3.1 (a), §3.3 (ii)", "rfc-thp", "punched-private-never-host-written",
          reading="Confirmed: the punch clears the prepared bits of the kept folio, and the "
                  "next fault's clear_highpage writes the still-assigned page (S-1)."),
    Claim("Maybe something similar would happen if a private page got zeroed out when "
          "freeing and reallocating it.",
          "David Hildenbrand", "mainline-latest-rmp-fail", "host-never-writes-guest-owned",
          reading="Only if rmp_make_shared fails when the folio is freed: "
                  "sev_gmem_invalidate WARNs and frees the page still assigned, and its next "
                  "host user writes it. With no such failure (mainline-latest) it holds."),
    Claim("A sequence of partial punches that covers the whole huge page will not end up "
          "freeing all parts if splitting failed at some point.",
          "David Hildenbrand", "rfc-thp", "punched-memory-eventually-freed",
          reading="Confirmed: a dirty folio kept by a failed split stays allocated; only a "
                  "punch covering the whole folio removes it."),
    Claim("Once we fall back to small pages or split a THP, the remaining fragments cannot "
          "get reassembled anymore.",
          "David Hildenbrand", "rfc-thp", "huge-backing-recoverable",
          reading="Confirmed: without punching the whole range away, nothing rebuilds a huge "
                  "folio (guest_memfd folios are unmovable; no khugepaged)."),
    Claim("Always allocating huge pages and disallowing partial punches avoids these "
          "problems.",
          "David Hildenbrand", "always-huge-reject", "host-never-writes-guest-owned",
          reading="Holds on the always-huge, reject-partial-punch design, as every other "
                  "goal property does there (see the matrix)."),
    Claim("...or letting partial punches only zero out the memory.",
          "David Hildenbrand", "always-huge-zero", "host-never-writes-guest-owned",
          reading="Refuted on SNP: zeroing in place writes pages the RMP still assigns. "
                  "And such punches never free anything (punched-memory-eventually-freed "
                  "is violated there too)."),
    Claim("If userspace never punches below 2 MB, THP behaves like the HugeTLB-like "
          "design.",
          "Michael Roth", "rfc-thp", "host-never-writes-guest-owned",
          sets=("partial_punch=reject",),
          reading="Holds for every safety and liveness property on the RFC with sub-2M "
                  "punches refused; what remains different is fragmentation: an order-0 "
                  "fallback still never becomes huge again (huge-backing-recoverable is "
                  "violated with this override, not on always-huge-reject)."),
    Claim("The RFC's lockless bitmap races with a punch: a folio that is present and "
          "private with its bit clear, or a missed prepare.",
          "Sean Christopherson (on PB)", "pb-bitmap", "host-never-writes-guest-owned",
          reading="Confirmed (S-3): the retried fault clears an assigned page."),
    Claim("Taking invalidate_lock shared in kvm_gmem_get_pfn fixes that race.",
          "Michael Roth (RFC patch 3)", "pb-bitmap", "host-never-writes-guest-owned",
          sets=("fault_locking=invalidate-shared",),
          reading="Confirmed: with the lock, PB's bitmap never disagrees with the RMP."),
    Claim("...but on TDX it deadlocks populate, which faults through kvm_gmem_get_pfn "
          "while holding invalidate_lock exclusive.",
          "Yan Zhao", "rfc-thp-tdx", "no-deadlock",
          reading="Confirmed (S-4): one step into KVM_TDX_INIT_MEM_REGION."),
    Claim("With huge folios, mainline sev_gmem_prepare updates only the faulting page when "
          "part of the range is already private, and the vCPU can loop on "
          "KVM_EXIT_MEMORY_FAULT.",
          "Michael Roth (RFC patch 4)", "rfc-thp", "private-mapping-implies-assigned",
          sets=("snp_prepare=mainline",),
          reading="Confirmed: a private mapping of a page the RMP never assigned."),
    Claim("A clean huge folio whose split fails is dropped whole: data outside the hole is "
          "lost.", "DOMAIN.md §3.4", "rfc-thp", "no-data-loss-outside-punch",
          reading="Confirmed (S-2): a populated, never-faulted folio is removed whole."),
    Claim("...and its stale prepared bits let a new folio skip zeroing.",
          "DOMAIN.md §3.4", "rfc-thp", "zeroed-before-guest-visible",
          reading="Confirmed (S-2 a): the guest maps stale host data."),
    Claim("sev_gmem_invalidate frees a page it failed to make shared.", "DOMAIN.md §3.6",
          "mainline-latest-rmp-fail", "freed-pages-are-shared",
          reading="Confirmed; examples/leak-on-failure.toml (snp_leak_pages) makes it hold."),
    Claim("A split does not copy folio->private: preparedness kept there is lost.",
          "DOMAIN.md §1.1", "thp-folio-private", "preparedness-preserved-on-split",
          reading="Confirmed: the pieces without the head page look unprepared."),
    Claim("The HugeTLB design refuses partial punches and returns -EAGAIN while a folio "
          "holds unexpected references.", "DOMAIN.md S-7", "hugetlb", "reach-eagain-refcount",
          reading="Witnessed: a GUP pin makes the whole-huge-page punch fail with -EAGAIN."),
]


def _verdicts(claims: list[Claim]) -> dict[tuple[str, tuple[str, ...]], tuple[Any, list[Verdict]]]:
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for c in claims:
        groups.setdefault((c.preset, c.sets), [])
        if c.prop not in groups[(c.preset, c.sets)]:
            groups[(c.preset, c.sets)].append(c.prop)
    out = {}
    for (preset, sets), props in groups.items():
        cfg = apply_overrides(load_preset(preset), list(sets))
        model = build(cfg)
        run = check(model, properties.select(model, props))
        out[(preset, sets)] = (model, run.verdicts)
    return out


def _calls(model: Any, trace: Trace) -> list[str]:
    acts = {a.name: a for a in model.actions}
    lines = []
    for i, st in enumerate(trace.steps, start=1):
        if trace.loop is not None and not trace.stutter and i - 1 == trace.loop:
            lines.append("    --- loop from here ---")
        ret = ""
        if st.outcome is not None and st.outcome.ret not in (None, 0):
            ret = f" = {st.outcome.ret}"
        lines.append(f"    {i:>2}. {acts[st.action].label(st.args)}{ret}")
        if st.outcome is not None:
            lines += [f"        ! {e}" for e in st.outcome.events if e.startswith("FAULT")]
    if trace.loop is not None:
        lines.append("    --- stuck here forever ---" if trace.stutter
                     else f"    --- back to state {trace.loop} ---")
    return lines


def generate(progress: Callable[[str], None] | None = None) -> str:
    res = _verdicts(CLAIMS)
    head = [
        "# Claims from the thread, checked",
        "",
        "Generated by `gmemcheck claims` from `gmemcheck/claims.py`; a test regenerates it "
        "and fails when this file is not current. Each claim from the seed thread "
        "(shared/seed-thread.txt) or DOMAIN.md §3 is tied to the preset (with any `--set` "
        "overrides) and the property that test it. Verdicts come from exhaustive "
        "breadth-first exploration at the preset's bounds; a violation shows the shortest "
        "trace as kernel calls.",
        "",
        "| # | claim | who | preset | property | verdict |",
        "|---|---|---|---|---|---|",
    ]
    body: list[str] = []
    for i, c in enumerate(CLAIMS, start=1):
        model, verdicts = res[(c.preset, c.sets)]
        v = next(v for v in verdicts if v.property == c.prop)
        preset = c.preset + "".join(f" `--set {s}`" for s in c.sets)
        short = v.outcome if v.trace is None else f"{v.outcome}, {steps(len(v.trace))}"
        head.append(f"| {i} | {c.text} | {c.who} | {preset} | `{c.prop}` | {short} |")
        body += ["", f"## {i}. {c.text}", "", f"*{c.who}.* Preset `{c.preset}`"
                 + "".join(f", `--set {s}`" for s in c.sets)
                 + f"; property `{c.prop}` ({v.kind.value}).", ""]
        body.append(f"**{v.outcome}** ({v.engine}, {v.bound}, {v.stats.get('states', '?')} "
                    "states explored). " + c.reading)
        if v.trace is not None:
            kind = "witness" if v.result is Result.HOLDS else "counterexample"
            body += ["", f"Shortest {kind}:", "", "```"]
            body += [ln[4:] for ln in _calls(model, v.trace)]
            body.append("```")
        elif v.result is Result.HOLDS:
            body += ["", "Proof: every reachable state of the preset was explored and none "
                     "violates it."]
    return "\n".join(head + body) + "\n"
