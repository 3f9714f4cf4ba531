"""The state of one guest_memfd file, its KVM mappings and the SEV-SNP RMP (DOMAIN.md §1).

Everything is an array over the file's 4 KiB page indices, so that the explicit engine
and the Z3 encoding read the same shape:

* the page cache (§1.1) as ``order[i]``: the order of the folio covering index ``i``,
  or -1 for a hole. A folio of order k covers ``[i & ~(2**k - 1), +2**k)``; its flags
  (``uptodate``, ``dirty``) are kept on every page it covers, which is also what
  ``__split_folio_to_order`` does with them (mm/huge_memory.c). ``held[i]`` is the
  order of a folio already removed from the page cache (``filemap_remove_folio``) but
  still referenced by someone, so not yet back in the allocator.
* physical frames: the model gives file index ``i`` the frame ``pfn = i``. A folio
  removed from the page cache keeps its frames until its last reference drops; an
  allocation at those indices waits until then (the kernel would pick other frames;
  which frame is used does not change any property checked here). ``content[pfn]`` is
  what the page holds: stale host data, zeroes, or guest data.
* per-index guest_memfd state (§1.2): ``prepared`` is the PB/RFC inode bitmap,
  ``private`` the per-page bits of a design that keeps preparedness in
  ``folio->private``; ``attr`` is the memory attribute of the gfn (gfn = index).
* KVM stage-2 mappings per gfn (§1.3): ``npt`` is none, 4 KiB, or part of a huge
  mapping.
* the RMP per pfn (§1.4): shared, assigned with a 4 KiB entry, or assigned inside a
  2 MB entry (the pagesize bit of the 2M-aligned entry is authoritative, and every pfn
  of an assigned 2M entry reports assigned). ``dm4k[r]`` says the kernel direct map of
  huge region ``r`` was split to 4 KiB by ``adjust_direct_map``.
* threads (§1.6): one vCPU (``vcpu``: idle, or inside a fault holding a folio
  reference) and one VMM thread (``vmm``: idle, or inside a multi-step syscall).
  ``invalidate_lock`` and ``mmu_invalidate_in_progress`` follow from ``vmm``.
* history kept for properties: ``punched[i]`` (index punched since it was last used),
  and ``fault``: the first fatal event (a host RMP #PF oops, a TD poisoned by a host
  write, an RMPUPDATE livelock). A state with a fault is terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

# content of a frame
STALE, ZERO, DATA = 0, 1, 2
CONTENT_NAMES = {STALE: "stale-host-data", ZERO: "zero", DATA: "guest-data"}

# stage-2 mapping of a gfn
NPT_NONE, NPT_4K, NPT_HUGE = 0, 1, 2
NPT_NAMES = {NPT_NONE: "none", NPT_4K: "private 4K", NPT_HUGE: "private huge"}

# RMP entry of a pfn
RMP_SHARED, RMP_4K, RMP_2M = 0, 1, 2
RMP_NAMES = {RMP_SHARED: "shared", RMP_4K: "assigned 4K", RMP_2M: "assigned 2M"}

# host userspace mapping of a page (in-place conversion designs only)
HOST_NONE, HOST_MAPPED, HOST_GUP, HOST_PINNED = 0, 1, 2, 3
HOST_NAMES = {HOST_NONE: "none", HOST_MAPPED: "mmapped", HOST_GUP: "mmapped+GUP pin",
              HOST_PINNED: "GUP pin, unmapped"}

# fault kinds: the first fatal event
RMP_PF = "host-rmp-#pf-oops"          # host kernel store to an assigned pfn (§2.15)
USER_RMP_PF = "user-rmp-#pf"          # host userspace store to an assigned pfn (§2.15 [U])
TD_POISON = "td-private-host-write"   # TDX: host store to a TD-private page (§1.5)
RMPUPDATE_LIVELOCK = "rmpupdate-overlap-livelock"  # 4K RMPUPDATE in a 2M entry (§1.4)
HOST_WRITE_FAULTS = (RMP_PF, USER_RMP_PF, TD_POISON)

# VMM thread operations
OP_PUNCH = "punch"
OP_POPULATE = "populate"
PUNCH_BEGUN, PUNCH_TRUNCATED, PUNCH_UNPREPARED = "invalidated", "truncated", "unprepared"


# ---------------------------------------------------------------- field declarations
# Every field of the state is declared once, with its scope, domain, initial value and
# how a text trace shows it; the built-in fields below and a plug-in's fields
# (``gmemcheck.api.add_field``) go through the same :func:`declare`. The state type of a
# design is a NamedTuple of the declared fields in declaration order (built-ins first),
# so the built-in designs keep exactly the state, the traces and the ITF files they had.
# A field's name is its ITF variable name.

SCOPES = ("page", "region", "scalar", "thread")

Renderer = Callable[[Any, Any], Mapping[str, str]]  # (kernel, state) -> items


@dataclass(frozen=True)
class Field:
    """One declared state field.

    ``scope``: ``page`` (a tuple with one element per page index), ``region`` (one per
    huge region), ``scalar`` or ``thread`` (a scalar owned by the thread named in
    ``thread``). ``domain``: the values one element (page/region) or the scalar may take:
    a tuple, or a callable ``domain(k)`` returning one for the design's sizes, or None
    for a built-in field whose shape is a tuple of its own. ``render(k, s)`` returns the
    items a text trace shows for it (None: shown with another field's items, named in
    ``shown_with``); fields without a renderer and without ``shown_with`` get the default
    rendering (``name`` or ``name[i]``). ``sort`` is the field's Z3 sort ("bool" or
    "int") where it has one."""

    name: str
    scope: str
    initial: Any
    domain: tuple[Any, ...] | Callable[[Any], Iterable[Any]] | None
    doc: str
    render: Renderer | None = None
    shown_with: str = ""
    thread: str = ""
    sort: str | None = None
    origin: str = "built-in"

    def initial_value(self, pages: int, regions: int) -> Any:
        if self.scope == "page":
            return (self.initial,) * pages
        if self.scope == "region":
            return (self.initial,) * regions
        return self.initial

    def allowed(self, k: Any) -> frozenset[Any] | None:
        d = self.domain
        if d is None:
            return None
        return frozenset(d(k) if callable(d) else d)

    def outside(self, k: Any, value: Any) -> Any:
        """An element of ``value`` outside the domain (``_NONE`` when all are inside)."""
        ok = self.allowed(k)
        if ok is None:
            return _NONE
        vals = value if self.scope in ("page", "region") else (value,)
        for v in vals:
            if v not in ok:
                return v
        return _NONE

    def default_items(self, s: Any) -> dict[str, str]:
        v = getattr(s, self.name)
        if isinstance(v, tuple) and self.scope in ("page", "region"):
            return {f"{self.name}[{i}]": _fmt(x) for i, x in enumerate(v)}
        return {self.name: _fmt(v)}


_NONE = object()


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


_ITF_ATOMS = (bool, int, str)


def itf_value(v: Any) -> bool:
    """Can ``v`` be written to an ITF trace and read back equal (bool, int, str, and
    tuples of those)?"""
    if isinstance(v, tuple):
        return all(itf_value(x) for x in v)
    return isinstance(v, _ITF_ATOMS)


# name -> declaration, in declaration order (built-ins first)
DECLARED: dict[str, Field] = {}
BUILTIN_FIELDS: tuple[str, ...] = ()


def declare(f: Field) -> Field:
    """Declare a state field; refuses a bad name, scope, domain or initial value."""
    if not f.name.isidentifier() or f.name.startswith("_"):
        raise ValueError(f"field {f.name!r}: not a valid field name (an identifier not "
                         "starting with _)")
    if f.name in DECLARED:
        raise ValueError(f"field {f.name!r} is already declared ({DECLARED[f.name].origin})")
    if f.scope not in SCOPES:
        raise ValueError(f"field {f.name!r}: unknown field type {f.scope!r} "
                         f"(one of {', '.join(SCOPES)})")
    if f.scope == "thread" and not f.thread:
        raise ValueError(f"field {f.name!r}: a thread field names its thread")
    d = f.domain
    if d is None and f.origin != "built-in":
        raise ValueError(f"field {f.name!r}: needs a domain (a tuple of values)")
    if d is not None and not callable(d):
        if not isinstance(d, tuple) or not d:
            raise ValueError(f"field {f.name!r}: bad domain {d!r} (a non-empty tuple of "
                             "values)")
        bad = [v for v in d if not itf_value(v)]
        if bad:
            raise ValueError(f"field {f.name!r}: bad domain value {bad[0]!r} (bool, int, str "
                             "or tuples of those)")
        if len(set(d)) != len(d):
            raise ValueError(f"field {f.name!r}: bad domain {d!r} (a value repeats)")
        if f.initial not in d:
            raise ValueError(f"field {f.name!r}: initial value {f.initial!r} is not in its "
                             f"domain {d!r}")
    if not itf_value(f.initial):
        raise ValueError(f"field {f.name!r}: initial value {f.initial!r} cannot be traced "
                         "(bool, int, str or tuples of those)")
    if f.sort not in (None, "bool", "int"):
        raise ValueError(f"field {f.name!r}: unknown Z3 sort {f.sort!r} (bool or int)")
    if f.shown_with and f.render is not None:
        raise ValueError(f"field {f.name!r}: either render or shown_with, not both")
    DECLARED[f.name] = f
    return f


_TYPES: dict[tuple[str, ...], type] = {}


def state_type(names: tuple[str, ...]) -> type:
    """The NamedTuple type of a design whose state has the fields ``names`` (the built-in
    fields first): :class:`GmemState` itself when there are no others."""
    if names == BUILTIN_FIELDS:
        return GmemState
    t = _TYPES.get(names)
    if t is None:
        t = NamedTuple("GmemState", [(n, Any) for n in names])  # type: ignore[misc]
        t.__module__ = __name__
        _TYPES[names] = t
    return t


def initial_state(pages: int, regions: int, launched: bool, init_private: bool = True
                  ) -> GmemState:
    """``kvm_gmem_create`` + ``kvm_gmem_bind`` + ``KVM_SET_MEMORY_ATTRIBUTES(PRIVATE)``
    (DOMAIN.md §5 S-0 steps 1-3): an empty page cache over stale host memory, every
    gfn private, nothing mapped, every RMP entry shared."""
    f = (False,) * pages
    return GmemState(
        order=(-1,) * pages, uptodate=f, dirty=f, private=f, held=(-1,) * pages, prepared=f,
        content=(STALE,) * pages, attr=(init_private,) * pages, npt=(NPT_NONE,) * pages,
        rmp=(RMP_SHARED,) * pages, dm4k=(False,) * regions, leaked=f, host=(HOST_NONE,) * pages,
        spec=-1, vcpu=(), vmm=(), launched=launched, punched=f, fault=(),
    )


def folio_span(order: tuple[int, ...], i: int) -> tuple[int, int] | None:
    """``[head, end)`` of the page-cache folio covering index ``i``, or None."""
    o = order[i]
    if o < 0:
        return None
    head = i & ~((1 << o) - 1)
    return head, head + (1 << o)


def held_span(held: tuple[int, ...], i: int) -> tuple[int, int] | None:
    o = held[i]
    if o < 0:
        return None
    head = i & ~((1 << o) - 1)
    return head, head + (1 << o)


def folio_heads(order: tuple[int, ...]) -> list[tuple[int, int]]:
    """Every page-cache folio as ``(head, order)``, in index order."""
    out = []
    i = 0
    n = len(order)
    while i < n:
        o = order[i]
        if o < 0:
            i += 1
            continue
        out.append((i, o))
        i += 1 << o
    return out


# ---------------------------------------------------------------- the built-in fields
def _r_order(k: Any, s: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for h, o in folio_heads(s.order):
        flags = [f for f, on in (("uptodate", s.uptodate[h]), ("dirty", s.dirty[h])) if on]
        if k.axes["preparedness"] == "folio-private":
            bits = "".join("1" if s.private[i] else "0" for i in range(h, h + (1 << o)))
            flags.append(f"private={bits}")
        extra = k.extra_refs(s, h, h + (1 << o))
        if extra:
            flags.append(f"+{extra} ref")
        span = f"{h}" if o == 0 else f"{h}..{h + (1 << o) - 1}"
        out[f"folio@{h}"] = f"index {span} order {o}" + (f" {' '.join(flags)}" if flags else "")
    return out


def _r_held(k: Any, s: Any) -> dict[str, str]:
    return {f"freed-but-referenced@{i}": f"order {s.held[i]}" for i in range(k.P)
            if s.held[i] >= 0 and (i % (1 << s.held[i]) == 0)}


def _r_content(k: Any, s: Any) -> dict[str, str]:
    return {f"pfn {i} content": CONTENT_NAMES[s.content[i]] for i in range(k.P)}


def _r_rmp(k: Any, s: Any) -> dict[str, str]:
    if not k.snp:
        return {}
    out = {f"pfn {i} rmp": RMP_NAMES[s.rmp[i]] for i in range(k.P)}
    for r in range(k.R):
        out[f"directmap region {r}"] = "4K" if s.dm4k[r] else "2M"
    return out


def _r_prepared(k: Any, s: Any) -> dict[str, str]:
    if k.axes["preparedness"] != "bitmap":
        return {}
    return {"prepared bitmap": "".join("1" if b else "0" for b in s.prepared)}


def _r_attr(k: Any, s: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for g in range(k.P):
        out[f"gfn {g} attr"] = "private" if s.attr[g] else "shared"
        out[f"gfn {g} npt"] = NPT_NAMES[s.npt[g]]
    return out


def _r_host(k: Any, s: Any) -> dict[str, str]:
    if k.axes["conversion"] != "in-place":
        return {}
    return {f"index {i} host": HOST_NAMES[s.host[i]] for i in range(k.P)}


def _r_leaked(k: Any, s: Any) -> dict[str, str]:
    if not any(s.leaked):
        return {}
    return {"leaked pfns": ",".join(str(i) for i in range(k.P) if s.leaked[i])}


def _r_vcpu(k: Any, s: Any) -> dict[str, str]:
    return {"vcpu": "idle" if not s.vcpu else (
        f"in fault on gfn {s.vcpu[0]} holding a folio ref" + (" (stale)" if s.vcpu[1] else ""))}


def _orders(k: Any) -> range:
    return range(-1, k.HUGE + 1)


def _pages_or_none(k: Any) -> range:
    return range(-1, k.P)


_B = (False, True)
for _f in (
    Field("order", "page", -1, _orders, "order of the page-cache folio covering the index "
          "(-1: hole)", _r_order, sort="int"),
    Field("uptodate", "page", False, _B, "PG_uptodate of the folio", shown_with="order",
          sort="bool"),
    Field("dirty", "page", False, _B, "PG_dirty of the folio", shown_with="order", sort="bool"),
    Field("private", "page", False, _B, "per-page preparedness bits in folio->private",
          shown_with="order", sort="bool"),
    Field("held", "page", -1, _orders, "order of a folio removed from the page cache but "
          "still referenced", _r_held, sort="int"),
    Field("prepared", "page", False, _B, "the inode's prepared bitmap", _r_prepared,
          sort="bool"),
    Field("content", "page", STALE, (STALE, ZERO, DATA), "what the frame holds", _r_content,
          sort="int"),
    Field("attr", "page", True, _B, "memory attribute of the gfn (True: private)", _r_attr,
          sort="bool"),
    Field("npt", "page", NPT_NONE, (NPT_NONE, NPT_4K, NPT_HUGE), "stage-2 mapping of the gfn",
          shown_with="attr", sort="int"),
    Field("rmp", "page", RMP_SHARED, (RMP_SHARED, RMP_4K, RMP_2M), "RMP entry of the pfn",
          _r_rmp, sort="int"),
    Field("dm4k", "region", False, _B, "direct map of the region split to 4K",
          shown_with="rmp", sort="bool"),
    Field("leaked", "page", False, _B, "pfn leaked by snp_leak_pages", _r_leaked,
          sort="bool"),
    Field("host", "page", HOST_NONE, (HOST_NONE, HOST_MAPPED, HOST_GUP, HOST_PINNED),
          "host userspace mapping of the index", _r_host, sort="int"),
    Field("spec", "scalar", -1, _pages_or_none, "pfn of a speculative reference (-1: none)",
          lambda k, s: {"speculative ref": "none" if s.spec < 0 else f"pfn {s.spec}"},
          sort="int"),
    Field("vcpu", "thread", (), None, "the vCPU: () idle, or (gfn, stale) in a fault holding "
          "a folio reference", _r_vcpu, thread="vcpu"),
    Field("vmm", "thread", (), None, "the VMM thread: () idle, or the progress of a "
          "multi-step syscall", lambda k, s: {
              "vmm": "idle" if not s.vmm else " ".join(str(x) for x in s.vmm[:4])},
          thread="vmm"),
    Field("launched", "scalar", False, _B, "the launch has finished",
          lambda k, s: {"launched": "yes" if s.launched else "no"}, sort="bool"),
    Field("punched", "page", False, _B, "index punched since it was last used",
          lambda k, s: {"punched": "".join("1" if b else "0" for b in s.punched)},
          sort="bool"),
    Field("fault", "scalar", (), None, "the first fatal event: () or (kind, pfn)",
          lambda k, s: {"fault": "none" if not s.fault else f"{s.fault[0]} at pfn "
                        f"{s.fault[1]}"}),
):
    declare(_f)
del _f
BUILTIN_FIELDS = tuple(DECLARED)
# the order in which a text trace shows the built-in fields' items
BUILTIN_SHOW_ORDER = ("order", "held", "content", "rmp", "prepared", "attr", "host", "leaked",
                      "spec", "vcpu", "vmm", "launched", "punched", "fault")

# The state of the built-in designs, built from the declarations above.
GmemState = NamedTuple("GmemState", [(n, Any) for n in BUILTIN_FIELDS])  # type: ignore[misc]
GmemState.__module__ = __name__
FIELDS = GmemState._fields
assert FIELDS == ("order", "uptodate", "dirty", "private", "held", "prepared", "content",
                  "attr", "npt", "rmp", "dm4k", "leaked", "host", "spec", "vcpu", "vmm",
                  "launched", "punched", "fault")


