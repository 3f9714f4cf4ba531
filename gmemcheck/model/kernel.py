"""The kernel context of one design: sizes, axis values and the bound step functions.

Every step function takes the context ``k`` first, then a :class:`Work` (or, for
queries used by guards, the state). ``k.<step>(...)`` calls the implementation the
design selected; see :mod:`.registry`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from .registry import AXES, BASE_STEPS, ConflictError, StepFn, origin_name, step
from .state import HOST_GUP, HOST_PINNED, OP_POPULATE, OP_PUNCH
from .work import Memo

# Memoize the built-in steps and guards on the fields they read (work.memoized); False
# turns it off for every model built afterwards (the search is then the plain one).
MEMO = True


def _describe_value(v: Any) -> str:
    where = origin_name(v.origin)
    return f"{v.label} ({'built-in' if where == 'built-in' else 'plug-in ' + where})"


class Kernel:
    def __init__(self, axes: Mapping[str, Any], bounds: Mapping[str, int]) -> None:
        self.axes = dict(axes)
        self.bounds = dict(bounds)
        self.N: int = bounds["pages_per_huge"]
        self.R: int = bounds["regions"]
        self.P: int = self.N * self.R
        self.HUGE: int = self.N.bit_length() - 1  # order of a huge folio
        self.snp: bool = axes["platform"] == "snp"
        self.tdx: bool = axes["platform"] == "tdx"
        refs = set(axes["unexpected_refs"])
        self.spec_refs = "speculative" in refs
        self.tdx_pins = "tdx-pin" in refs
        self.gup_refs = "gup" in refs
        steps: dict[str, StepFn] = dict(BASE_STEPS)
        self.step_origin: dict[str, str] = {s: "base" for s in steps}
        bound: dict[str, Any] = {}
        owner: dict[str, Any] = {}
        for name, a in AXES.items():
            if a.kind != "choice":
                continue
            v = a.values[axes[name]]
            for s, fn in v.steps.items():
                if s in v.wraps:
                    # the wrapper receives the implementation selected so far
                    prev = bound.get(s) or functools.partial(steps[s], self)
                    bound[s] = functools.partial(fn, self, prev)
                else:
                    if s in owner:
                        raise ConflictError(
                            f"step {s} is replaced by both {_describe_value(owner[s])} and "
                            f"{_describe_value(v)}; one of them must declare wraps=True")
                    bound.pop(s, None)
                steps[s] = fn
                owner[s] = v
                self.step_origin[s] = f"{name}={v.value}"
        self.steps = steps
        # Memoized only where every selected step is built-in: a plug-in's step may read
        # what the memo cannot see (work.memoized). Shared by the model's actions.
        self.memo = Memo(MEMO and all(v.origin == "built-in" for v in owner.values()))
        # symbolic twins of the selected plug-in steps (registry.TWINNABLE)
        self.sym_twins: dict[str, Any] = {
            s: owner[s].symbolic[s] for s in owner if s in owner[s].symbolic}
        for s, fn in steps.items():
            setattr(self, s, bound.get(s) or functools.partial(fn, self))

    def __getattr__(self, name: str) -> Any:  # for type checkers: steps are bound above
        raise AttributeError(name)

    # ------------------------------------------------------------ geometry
    def region(self, i: int) -> int:
        return i // self.N

    def region_span(self, i: int) -> range:
        h = i - i % self.N
        return range(h, h + self.N)

    # ------------------------------------------------------------ locks
    def invalidate_lock_exclusive(self, s: Any) -> bool:
        """``filemap_invalidate_lock`` is held for write by the VMM thread for the whole
        of a punch and of a populate (§1.6)."""
        return bool(s.vmm) and s.vmm[0] in (OP_PUNCH, OP_POPULATE)

    def invalidation_covers(self, s: Any, gfn: int) -> bool:
        """``mmu_invalidate_in_progress`` with ``gfn`` inside the range added by
        ``kvm_gmem_invalidate_begin`` (kvm_host.h:mmu_invalidate_retry_gfn)."""
        vm = s.vmm
        return bool(vm) and vm[0] == OP_PUNCH and vm[1] <= gfn < vm[2]


@step("extra_refs", "mm/huge_memory.c:can_split_folio: the references to the folio on "
      "[lo, hi) beyond the page cache's and the caller's (k, s, lo, hi; a plug-in thread "
      "holding a folio reference wraps this step; DOMAIN.md §1.1, §3.2)")
def extra_refs(k: Any, s: Any, lo: int, hi: int) -> int:
    """References to the folio on frames ``[lo, hi)`` other than the page cache's
    and the caller's (mm/huge_memory.c:can_split_folio counts these as the
    unexpected ones): a speculative walker (§1.1), an in-flight vCPU fault between
    ``kvm_gmem_get_pfn`` and ``kvm_release_faultin_page``, a populate in progress,
    TDX S-EPT pins of mapped private pages (§1.5, up to ~6.18) and GUP pins of a
    host mapping. Plain host PTE mappings are unmapped by the split itself."""
    n = 0
    if lo <= s.spec < hi:
        n += 1
    vc = s.vcpu
    if vc and lo <= vc[0] < hi:
        n += 1
    vm = s.vmm
    if vm and vm[0] == OP_POPULATE and lo <= vm[1] < hi:
        n += 1
    if k.tdx_pins:
        npt = s.npt
        n += sum(1 for i in range(lo, hi) if npt[i])
    if k.gup_refs:
        host = s.host
        n += sum(1 for i in range(lo, hi) if host[i] in (HOST_GUP, HOST_PINNED))
    return n
