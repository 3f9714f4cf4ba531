"""SEV-SNP RMP ownership and the host writes it polices (DOMAIN.md §1.4, §2.10-§2.12,
§2.15), with TDX as the contrast (§1.5).

Sources: arch/x86/virt/svm/sev.c (``rmpupdate``, ``adjust_direct_map``,
``rmp_make_private``, ``rmp_make_shared``, ``psmash``) and arch/x86/kvm/svm/sev.c
(``sev_gmem_prepare``, ``sev_gmem_invalidate``, ``sev_handle_rmp_fault``), as
paraphrased in DOMAIN.md and docs/kernel-notes.md.

A host store to an assigned pfn, or through a 2 MB direct-map entry whose 2 MB region
holds an assigned pfn, raises an RMP #PF that oopses the host: the model records the
fault and stops. On TDX the guest owns a page while it is mapped in the S-EPT; a host
store to such a page is recorded as the TD's memory being corrupted.
"""

from __future__ import annotations

from typing import Any

from .registry import step
from .state import (
    NPT_NONE,
    RMP_2M,
    RMP_4K,
    RMP_PF,
    RMP_SHARED,
    RMPUPDATE_LIVELOCK,
    TD_POISON,
    ZERO,
)
from .work import Work


def fault(w: Work, kind: str, pfn: int, why: str) -> None:
    if not w.get("fault"):
        w.put("fault", (kind, pfn))
        w.event(f"FAULT {kind} at pfn {pfn}: {why}")


@step("host_write", "a host kernel store to a page (clear_highpage, folio_zero_range, the "
      "populate copy) checked as arch/x86/mm/fault.c:show_fault_oops would see it: an RMP "
      "#PF oopses the host (DOMAIN.md §2.15). Returns False when the store faulted")
def host_write(k: Any, w: Work, pfn: int, what: str, value: int = ZERO) -> bool:
    if w.faulted:
        return False
    if k.snp:
        rmp = w.get("rmp")
        if rmp[pfn] != RMP_SHARED:
            fault(w, RMP_PF, pfn, f"{what}: store to an RMP-assigned page")
            return False
        r = k.region(pfn)
        if not w.get("dm4k")[r] and any(rmp[q] != RMP_SHARED for q in k.region_span(pfn)):
            fault(w, RMP_PF, pfn, f"{what}: store through a 2M direct map over an assigned page")
            return False
    elif k.tdx and w.get("npt")[pfn] != NPT_NONE:
        fault(w, TD_POISON, pfn, f"{what}: store to a page the TD owns (mapped in S-EPT)")
        return False
    w.arr("content")[pfn] = value
    w.event(f"{what}: host writes pfn {pfn}")
    return True


def adjust_direct_map(k: Any, w: Work, pfn: int, level_2m: bool) -> None:
    """arch/x86/virt/svm/sev.c:adjust_direct_map: a 4K RMP update splits a larger
    direct-map entry of that pfn down to 4K; a 2M update needs no split."""
    if not level_2m:
        dm = w.get("dm4k")
        r = k.region(pfn)
        if not dm[r]:
            w.arr("dm4k")[r] = True


def rmpupdate(k: Any, w: Work, pfn: int, new: int, level_2m: bool) -> bool:
    """arch/x86/virt/svm/sev.c:rmpupdate: a 4K update of a pfn inside a 2M entry hits
    RMPUPDATE_FAIL_OVERLAP, which the wrapper retries forever (§1.4)."""
    rmp = w.get("rmp")
    if not level_2m and rmp[pfn] == RMP_2M:
        fault(w, RMPUPDATE_LIVELOCK, pfn,
              "4K RMPUPDATE inside a 2M RMP entry: FAIL_OVERLAP forever")
        return False
    adjust_direct_map(k, w, pfn, level_2m)
    a = w.arr("rmp")
    if level_2m:
        for q in k.region_span(pfn):
            a[q] = new
    else:
        a[pfn] = new
    return True


def rmp_make_private(k: Any, w: Work, pfn: int, level_2m: bool) -> bool:
    ok = rmpupdate(k, w, pfn, RMP_2M if level_2m else RMP_4K, level_2m)
    if ok:
        w.event(f"rmp_make_private(pfn {pfn}, {'2M' if level_2m else '4K'})")
    return ok


def rmp_make_shared(k: Any, w: Work, pfn: int, level_2m: bool) -> bool:
    ok = rmpupdate(k, w, pfn, RMP_SHARED, level_2m)
    if ok:
        w.event(f"rmp_make_shared(pfn {pfn}, {'2M' if level_2m else '4K'})")
    return ok


def psmash(k: Any, w: Work, pfn: int) -> None:
    """arch/x86/virt/svm/sev.c:psmash on the 2M-aligned entry: 512 4K entries with the
    same owner (the KVM wrapper snp_rmptable_psmash aligns down)."""
    rmp = w.arr("rmp")
    for q in k.region_span(pfn):
        if rmp[q] == RMP_2M:
            rmp[q] = RMP_4K
    w.event(f"psmash(pfn {pfn - pfn % k.N})")


# ------------------------------------------------------------------ prepare
@step("kvm_arch_gmem_prepare", "arch/x86/kvm/svm/sev.c:sev_gmem_prepare, mainline form: no-op "
      "if the pfn is assigned; 2M if max_order is huge and the whole 2M range is shared; else "
      "4K for the faulting pfn only (§2.10). TDX has no prepare hook")
def sev_gmem_prepare_mainline(k: Any, w: Work, pfn: int, max_order: int) -> None:
    if not k.snp:
        return
    rmp = w.get("rmp")
    if rmp[pfn] != RMP_SHARED:
        return
    span = k.region_span(pfn)
    if max_order >= k.HUGE and all(rmp[q] == RMP_SHARED for q in span):
        rmp_make_private(k, w, span[0], True)
    else:
        rmp_make_private(k, w, pfn, False)


def sev_gmem_prepare_rfc(k: Any, w: Work, pfn: int, max_order: int) -> None:
    """Roth's RFC patch 4/5 form of sev_gmem_prepare: walk the whole
    ``[ALIGN_DOWN(pfn, 2**max_order), +2**max_order)`` range, skip assigned runs and make
    each shared run private, with 2M entries where a run covers an aligned 2M range
    (§2.10)."""
    if not k.snp:
        return
    n = 1 << max_order
    lo = pfn - pfn % n
    p = lo
    while p < lo + n and not w.faulted:
        if w.get("rmp")[p] != RMP_SHARED:
            p += 1
            continue
        rmp = w.get("rmp")
        if p % k.N == 0 and p + k.N <= lo + n and all(rmp[q] == RMP_SHARED
                                                      for q in range(p, p + k.N)):
            rmp_make_private(k, w, p, True)
            p += k.N
        else:
            rmp_make_private(k, w, p, False)
            p += 1


# ------------------------------------------------------------------ invalidate
@step("rmp_make_shared_failed", "what svm/sev.c:sev_gmem_invalidate does when "
      "rmp_make_shared fails: WARN_ONCE and skip, so the page is freed still assigned "
      "(DOMAIN.md §2.11, §3.6)")
def rmp_make_shared_failed(k: Any, w: Work, pfn: int, level_2m: bool) -> None:
    w.event(f"rmp_make_shared(pfn {pfn}) failed: WARN_ONCE, page freed still assigned")


@step("kvm_arch_gmem_invalidate", "arch/x86/kvm/svm/sev.c:sev_gmem_invalidate over the frames "
      "of a folio being freed: psmash a 2M entry not freed whole, then rmp_make_shared (§2.11)")
def sev_gmem_invalidate(k: Any, w: Work, lo: int, hi: int) -> None:
    if not k.snp:
        return
    fail = w.opt.get("rmp_fail", False)
    pfn = lo
    while pfn < hi and not w.faulted:
        rmp = w.get("rmp")
        if rmp[pfn] == RMP_SHARED:
            pfn += 1
            continue
        is_2m = rmp[pfn] == RMP_2M
        use_2m = pfn % k.N == 0 and hi >= pfn + k.N and is_2m
        if is_2m and not use_2m:
            psmash(k, w, pfn)
        if fail:
            k.rmp_make_shared_failed(w, pfn, use_2m)
        else:
            rmp_make_shared(k, w, pfn, use_2m)
        pfn += k.N if use_2m else 1
