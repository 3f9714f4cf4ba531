"""Example plug-in: make the SEV-SNP free hook leak a page it cannot make shared.

Mainline sev_gmem_invalidate (arch/x86/kvm/svm/sev.c) only WARN_ONCEs when
rmp_make_shared fails, and the page goes back to the page allocator still assigned to
the guest (DOMAIN.md §3.6). kvm_rmp_make_shared, elsewhere in the same file, instead
calls snp_leak_pages: the page is put on a list and never reused. This plug-in adds
that behaviour as the value "leak" of the axis rmp_shared_failure, by replacing the
one step it changes.

Next to the Python body is its symbolic twin (the same effect as a Z3 formula), so the
design also gets bmc, k-induction and the proofs at 512 pages and more; the package
checks automatically that the two agree before giving any symbolic verdict.
"""

from gmemcheck.api import add_value, sym_set


def snp_leak_pages(k, w, pfn, level_2m):
    """arch/x86/virt/svm/sev.c:snp_leak_pages for the pages of the failed entry: they
    are never returned to the page allocator."""
    leaked = w.arr("leaked")
    pfns = k.region_span(pfn) if level_2m else [pfn]
    for p in pfns:
        leaked[p] = True
    w.event(f"rmp_make_shared(pfn {pfn}) failed: snp_leak_pages, never freed")


def snp_leak_pages_twin(k, w, failed):
    """The twin: every page whose rmp_make_shared failed (a whole 2M entry for a 2M
    update) is leaked."""
    sym_set(w, "leaked", failed, True)


add_value(
    "rmp_shared_failure", "leak",
    "snp_leak_pages the page when rmp_make_shared fails (as kvm_rmp_make_shared does)",
    source="arch/x86/kvm/svm/sev.c:kvm_rmp_make_shared",
    steps={"rmp_make_shared_failed": snp_leak_pages},
    symbolic={"rmp_make_shared_failed": snp_leak_pages_twin},
)
