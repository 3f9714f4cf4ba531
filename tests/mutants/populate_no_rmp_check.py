"""Mutant: sev_gmem_post_populate without its "RMP entry already assigned" check, to
show that populate-refuses-prepared is not vacuous."""

from gmemcheck.api import DATA, add_axis


def post_populate_unchecked(k, w, gfn):
    """arch/x86/kvm/svm/sev.c:sev_gmem_post_populate with the -EEXIST check removed
    (deliberately broken)."""
    from gmemcheck.model.snp import rmp_make_private

    if not k.host_write(w, gfn, "sev_gmem_post_populate copy from the source", DATA):
        return -5
    if not rmp_make_private(k, w, gfn, False):
        return -5
    return 0


add_axis("mutant_populate", "test-only: break sev_gmem_post_populate", {
    "mainline": ("unchanged", {}, {}),
    "no-rmp-check": ("no -EEXIST for an assigned page",
                     {"sev_gmem_post_populate": post_populate_unchecked}, {}),
})
