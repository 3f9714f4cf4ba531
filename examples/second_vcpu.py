"""Example plug-in (b): a second vCPU whose in-flight fault holds a folio reference.

Between guest_memfd.c:kvm_gmem_get_pfn (which returns with a reference on the folio)
and mmu.c:kvm_release_faultin_page, a faulting vCPU holds a reference that neither the
page cache nor the truncation owns: on a PMD folio that is the realistic transient
reference that makes mm/huge_memory.c:split_folio fail with -EAGAIN (can_split_folio)
and that keeps a truncated folio allocated until the fault lets go. The built-in model
has one vCPU; this plug-in adds a second one, ``vcpu1``, whose fault only ever holds the
reference and retries (is_page_fault_stale: RET_PF_RETRY), which is all a second fault
adds to the page-cache side, and only faults on PMD folios already in the page cache
(one gfn per huge range: a fault anywhere in the folio holds the same reference), to
keep the state space small.

What it uses: ``add_thread`` (its program counter), ``add_field`` (the gfn it faults
on), ``add_action`` for its two steps, ``add_value(..., wraps=True)`` to extend the
reference count (the ``extra_refs`` step) without rewriting it, and ``add_property``.

Each part has its Z3 form next to it (the actions' ``symbolic=(sym_guard, sym_body)``,
the twin of ``extra_refs``, the property's ``symbolic=``), so the design gets bmc,
k-induction and the proofs at 512 and 262,144 pages; the package checks each form
against its Python body before any symbolic verdict.
"""

from gmemcheck.api import (
    Kind,
    Property,
    add_action,
    add_axis,
    add_field,
    add_property,
    add_thread,
    make,
    put_extra_ref,
    sym_between,
    sym_eq,
    sym_invalidate_lock_exclusive,
    sym_put_extra_ref,
    z3,
)

IDLE, IN_FAULT = "idle", "in fault holding a folio ref"


def extra_refs_with_vcpu1(k, prev, s, lo, hi):
    """mm/huge_memory.c:can_split_folio's unexpected references, plus the one an
    in-flight fault of vcpu1 holds."""
    g = s.vcpu1_gfn
    return prev(s, lo, hi) + (1 if lo <= g < hi else 0)


def extra_refs_with_vcpu1_twin(k, s, prev, lo, hi):
    """The twin: some reference besides vcpu1's, or vcpu1's fault on [lo, hi)."""
    return z3.Or(prev(lo, hi), sym_between(lo, s.vcpu1_gfn, hi))


add_axis("second_vcpu", "example plug-in (b): a second vCPU faulting on guest_memfd", {
    "none": ("one vCPU (the built-in model)", {}, {}),
    "on": ("a second vCPU whose fault holds a folio reference",
           {"extra_refs": extra_refs_with_vcpu1}, {}, True,
           {"extra_refs": extra_refs_with_vcpu1_twin}),
})
add_thread("vcpu1", "a second vCPU: a private fault between kvm_gmem_get_pfn and "
           "kvm_release_faultin_page", pcs=(IDLE, IN_FAULT))
add_field("vcpu1_gfn", "thread", thread="vcpu1", initial=-1,
          domain=lambda k: tuple(range(-1, k.P)),
          doc="the gfn of vcpu1's fault in flight (-1: none)",
          render=lambda k, s: {} if s.vcpu1_gfn < 0 else {"vcpu1 fault": f"gfn {s.vcpu1_gfn}"})


def _get_pfn(k):
    if k.axes["second_vcpu"] != "on":
        return None
    locked = k.axes["fault_locking"] == "invalidate-shared"

    def guard(s, a):
        g = a[0]
        if not s.launched or s.vcpu1_pc != IDLE or not s.attr[g] or s.order[g] != k.HUGE:
            return False
        return not (locked and k.invalidate_lock_exclusive(s))

    def body(k, w, g):
        w.put("vcpu1_pc", IN_FAULT)
        w.put("vcpu1_gfn", g)
        w.event(f"vcpu1: kvm_gmem_get_pfn(gfn {g}) takes a reference on the folio")
        w.ret = 0

    def sym_guard(k, s, g):
        parts = [s.launched, sym_eq(s, "vcpu1_pc", IDLE), s.attr[g], s.order[g] == k.HUGE]
        if locked:
            parts.append(z3.Not(sym_invalidate_lock_exclusive(s)))
        return z3.And(parts)

    def sym_body(k, w, g):
        w.put("vcpu1_pc", IN_FAULT)
        w.put("vcpu1_gfn", g)

    # one gfn per huge range: a fault anywhere in a PMD folio holds the same reference
    return make(k, "vcpu1_kvm_gmem_get_pfn", ("gfn",), [(r * k.N,) for r in range(k.R)], guard,
                body, frozenset({"vcpu1_pc", "vcpu1_gfn"}),
                "guest_memfd.c:kvm_gmem_get_pfn on the second vCPU, for the first gfn of a "
                "PMD folio already in the page cache: the fault holds a folio reference.",
                symbolic=(sym_guard, sym_body))


def _release(k):
    if k.axes["second_vcpu"] != "on":
        return None

    def body(k, w):
        g = w.get("vcpu1_gfn")
        w.put("vcpu1_pc", IDLE)
        w.put("vcpu1_gfn", -1)
        w.event("vcpu1: RET_PF_RETRY, kvm_release_faultin_page drops the reference")
        put_extra_ref(k, w, g)

    def sym_body(k, w):
        g = w.get("vcpu1_gfn")
        w.put("vcpu1_pc", IDLE)
        w.put("vcpu1_gfn", -1)
        sym_put_extra_ref(k, w, g)

    return make(k, "vcpu1_kvm_release_faultin_page", (), [()],
                lambda s, a: s.vcpu1_pc == IN_FAULT, body,
                frozenset({"vcpu1_pc", "vcpu1_gfn", "held", "content"}),
                "mmu.c:kvm_release_faultin_page on the second vCPU: the fault retried "
                "(is_page_fault_stale) and drops its folio reference; a folio truncated "
                "meanwhile is freed now (mm/swap.c:folio_put).",
                symbolic=(lambda k, s: sym_eq(s, "vcpu1_pc", IN_FAULT), sym_body))


add_action("vcpu1_kvm_gmem_get_pfn", _get_pfn, thread="vcpu1")
add_action("vcpu1_kvm_release_faultin_page", _release, thread="vcpu1")


def _witness(m):
    if m.k.axes["second_vcpu"] != "on":
        return None
    return Property(
        "reach-vcpu1-ref-keeps-folio", Kind.REACHABLE,
        "A folio truncated while vcpu1's fault holds it stays allocated "
        "(freed-but-referenced) until kvm_release_faultin_page.",
        predicate=lambda s: s.vcpu1_gfn >= 0 and s.held[s.vcpu1_gfn] >= 0,
        symbolic=lambda k, s: z3.And(s.vcpu1_gfn >= 0, s.held[s.vcpu1_gfn] >= 0),
        source="examples/second_vcpu.py")


add_property("reach-vcpu1-ref-keeps-folio", _witness)
