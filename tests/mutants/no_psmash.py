"""Mutant: sev_gmem_invalidate without the PSMASH before a 4K update inside a 2M RMP
entry. Its only purpose is to show that no-rmpupdate-overlap is not vacuous."""

from gmemcheck.api import RMP_2M, RMP_SHARED, add_axis


def sev_gmem_invalidate_no_psmash(k, w, lo, hi):
    """arch/x86/kvm/svm/sev.c:sev_gmem_invalidate with the snp_rmptable_psmash call
    removed (deliberately broken)."""
    from gmemcheck.model.snp import rmp_make_shared

    pfn = lo
    while pfn < hi and not w.faulted:
        rmp = w.get("rmp")
        if rmp[pfn] == RMP_SHARED:
            pfn += 1
            continue
        use_2m = pfn % k.N == 0 and hi >= pfn + k.N and rmp[pfn] == RMP_2M
        rmp_make_shared(k, w, pfn, use_2m)
        pfn += k.N if use_2m else 1


add_axis("mutant_invalidate", "test-only: break sev_gmem_invalidate", {
    "mainline": ("unchanged", {}, {}),
    "no-psmash": ("no PSMASH before a 4K RMPUPDATE in a 2M entry",
                  {"kvm_arch_gmem_invalidate": sev_gmem_invalidate_no_psmash}, {}),
})
