"""Strengthening lemmas for k-induction, kept apart from the goal properties.

Two sources:

* **well-formedness** (:func:`well_formed`), written by hand: every field within the
  values the model can give it, a huge folio (or a held one) covering its whole aligned
  region, the scalar encoding canonical. These hold by construction; the induction engine
  still checks them and reports it if one does not.
* **mined candidates** (:func:`mine`): two-literal clauses ``a -> b`` over per-page
  atoms (a field of page ``p``, the same field of the head of ``p``'s huge region, the
  relation of ``p`` to the vCPU's gfn, to the VMM's range or to the recorded fault, and
  the scalar state), kept when they hold on every (state, page) of the design's
  explicit reachable set at the preset's small size. Houdini then keeps the largest
  subset that is inductive at the size being proved; a candidate that survives is a
  proved invariant, whatever size it was mined at.

Atoms name values, not sizes: the order of a huge folio is "H" at every
``pages_per_huge``, and page indices are only ever compared with ``p``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from ..model.state import FIELDS, GmemState
from .encode import scalars_of
from .space import PAGE_FIELDS, SymState
from .steps import at, hpos, mid, npos, rnum, site
from .work import FAULT_CODES, PC_CODES, VM_POPULATE, VM_PUNCH

PyFn = Callable[[dict[str, Any], int, Any], bool]
ZFn = Callable[[SymState, int, Any], Any]


@dataclass(frozen=True)
class Atom:
    name: str
    py: PyFn          # (scalars-and-fields view, page, kernel) -> bool
    z: ZFn            # (symbolic state, page, kernel) -> BoolRef


@dataclass(frozen=True)
class Lemma:
    """``forall p. clause(p)``; ``clause`` is a disjunction of (atom, polarity)."""

    name: str
    z: Callable[[SymState, int, Any], Any]
    py: Callable[[dict[str, Any], int, Any], bool]   # the same clause on a state view

    def formula(self, s: SymState, k: Any) -> Any:
        """The clause at every page of the symbolic state ``s``."""
        site(k)
        return z3.And([self.z(s, p, k) for p in range(npos(k))])

    def holds_on(self, s: GmemState, k: Any) -> bool:
        """The clause at every page of the explicit state ``s`` (of size ``k``)."""
        v = view(s)
        return all(self.py(v, p, k) for p in range(k.P))


def _head(k: Any, p: int) -> int:
    """The head's position (of page p in an explicit state, of position p in a
    symbolic one)."""
    return p - p % k.N


def _zhv(k: Any, p: int) -> Any:
    """The head's page number, for position p of a symbolic state."""
    return at(k, hpos(k, p))


def _value_name(field: str, v: Any, k: Any) -> str:
    if field in ("order", "held") and v == k.HUGE and v > 0:
        return "H"
    return str(v)


def _value_of(name: str, k: Any) -> int:
    return k.HUGE if name == "H" else int(name)


def _atoms(k: Any, values: dict[str, set[str]]) -> list[Atom]:
    out: list[Atom] = []
    for f, sort in PAGE_FIELDS.items():
        if sort == "bool":
            out.append(Atom(f"{f}[p]", lambda v, p, k, f=f: v[f][p],
                            lambda s, p, k, f=f: s.f[f][p]))
            if f in ("uptodate", "dirty", "private", "prepared", "attr"):
                out.append(Atom(f"{f}[head]", lambda v, p, k, f=f: v[f][_head(k, p)],
                                lambda s, p, k, f=f: s.f[f][hpos(k, p)]))
            continue
        for val in sorted(values.get(f, ())):
            out.append(Atom(f"{f}[p]={val}",
                            lambda v, p, k, f=f, val=val: v[f][p] == _value_of(val, k),
                            lambda s, p, k, f=f, val=val: s.f[f][p] == _value_of(val, k)))
            if f in ("order", "held", "rmp", "npt"):
                out.append(Atom(
                    f"{f}[head]={val}",
                    lambda v, p, k, f=f, val=val: v[f][_head(k, p)] == _value_of(val, k),
                    lambda s, p, k, f=f, val=val: s.f[f][hpos(k, p)] == _value_of(val, k)))
    out.append(Atom("dm4k[region]", lambda v, p, k: v["dm4k"][p // k.N],
                    lambda s, p, k: s.f["dm4k"][rnum(k, p)]))
    # relations of p to the scalar state
    out += [
        Atom("vcpu@p", lambda v, p, k: v["vc_on"] and v["vc_gfn"] == p,
             lambda s, p, k: z3.And(s.vc_on, s.vc_gfn == at(k, p))),
        Atom("vcpu-fresh@p", lambda v, p, k: v["vc_on"] and v["vc_gfn"] == p
             and not v["vc_stale"],
             lambda s, p, k: z3.And(s.vc_on, s.vc_gfn == at(k, p), z3.Not(s.vc_stale))),
        Atom("vcpu@region", lambda v, p, k: v["vc_on"] and _head(k, v["vc_gfn"]) == _head(k, p),
             lambda s, p, k: z3.And(s.vc_on, s.vc_gfn >= _zhv(k, p),
                                    s.vc_gfn < _zhv(k, p) + k.N)),
        Atom("spec@p", lambda v, p, k: v["spec"] == p, lambda s, p, k: s.spec == at(k, p)),
        Atom("spec@region", lambda v, p, k: v["spec"] >= 0 and _head(k, v["spec"]) == _head(k, p),
             lambda s, p, k: z3.And(s.spec >= _zhv(k, p), s.spec < _zhv(k, p) + k.N)),
        Atom("punch-covers-p",
             lambda v, p, k: v["vm_op"] == VM_PUNCH and v["vm_lo"] <= p < v["vm_hi"],
             lambda s, p, k: z3.And(s.vm_op == VM_PUNCH, s.vm_lo <= at(k, p),
                                    at(k, p) < s.vm_hi)),
        Atom("punch-covers-region",
             lambda v, p, k: v["vm_op"] == VM_PUNCH and v["vm_lo"] <= _head(k, p)
             and _head(k, p) + k.N <= v["vm_hi"],
             lambda s, p, k: z3.And(s.vm_op == VM_PUNCH, s.vm_lo <= _zhv(k, p),
                                    _zhv(k, p) + k.N <= s.vm_hi)),
        Atom("punch-touches-region",
             lambda v, p, k: v["vm_op"] == VM_PUNCH and v["vm_lo"] < _head(k, p) + k.N
             and v["vm_hi"] > _head(k, p),
             lambda s, p, k: z3.And(s.vm_op == VM_PUNCH, s.vm_lo < _zhv(k, p) + k.N,
                                    s.vm_hi > _zhv(k, p))),
        Atom("populate@p", lambda v, p, k: v["vm_op"] == VM_POPULATE and v["vm_lo"] == p,
             lambda s, p, k: z3.And(s.vm_op == VM_POPULATE, s.vm_lo == at(k, p))),
        Atom("fault@p", lambda v, p, k: v["f_kind"] != 0 and v["f_pfn"] == p,
             lambda s, p, k: z3.And(s.f_kind != 0, s.f_pfn == at(k, p))),
        Atom("vc_on", lambda v, p, k: v["vc_on"], lambda s, p, k: s.vc_on),
        Atom("vc_stale", lambda v, p, k: v["vc_stale"], lambda s, p, k: s.vc_stale),
        Atom("launched", lambda v, p, k: v["launched"], lambda s, p, k: s.launched),
        Atom("spec-idle", lambda v, p, k: v["spec"] < 0, lambda s, p, k: s.spec < 0),
    ]
    for sc in ("vm_op", "vm_pc", "vm_ret", "f_kind"):
        for val in sorted(values.get(sc, ())):
            out.append(Atom(f"{sc}={val}", lambda v, p, k, sc=sc, val=val: v[sc] == int(val),
                            lambda s, p, k, sc=sc, val=val: s.f[sc] == int(val)))
    return out


def view(s: GmemState) -> dict[str, Any]:
    """The fields and encoded scalars of ``s``, as the atoms' Python side reads them."""
    v: dict[str, Any] = {f: getattr(s, f) for f in PAGE_FIELDS}
    v["dm4k"] = s.dm4k
    v.update(scalars_of(s))
    return v


def mine(model: Any, states: list[GmemState],
         check_time: Callable[[], None] | None = None) -> list[Lemma]:
    """Two-literal clauses over per-page atoms true on every (state, page) of
    ``states`` (the explicit reachable set of ``model``). ``check_time`` is called
    every thousand states and may raise to stop (the run's time cap)."""
    k = model.k
    views = []
    for i, s in enumerate(states):
        if check_time is not None and i % 1000 == 0:
            check_time()
        views.append(view(s))
    values: dict[str, set[str]] = {}
    for v in views:
        for f, sort in PAGE_FIELDS.items():
            if sort == "int":
                values.setdefault(f, set()).update(_value_name(f, x, k) for x in v[f])
        for sc in ("vm_op", "vm_pc", "vm_ret", "f_kind"):
            values.setdefault(sc, set()).add(str(v[sc]))
    atoms = _atoms(k, values)
    n = len(atoms)
    vectors: set[int] = set()
    for i, v in enumerate(views):
        if check_time is not None and i % 1000 == 0:
            check_time()
        for p in range(k.P):
            bits = 0
            for i, a in enumerate(atoms):
                if a.py(v, p, k):
                    bits |= 1 << i
            vectors.add(bits)
    full = (1 << n) - 1
    # literal j in [0, 2n): atom j if j < n else not atom (j - n)
    lit_true = [bits | ((full & ~bits) << n) for bits in vectors]
    all_lits = (1 << (2 * n)) - 1

    def neg(j: int) -> int:
        return j + n if j < n else j - n

    def lit(j: int) -> tuple[Atom, bool]:
        return (atoms[j], True) if j < n else (atoms[j - n], False)

    def zlit(j: int) -> Callable[[SymState, int, Any], Any]:
        a, pos = lit(j)
        return (lambda s, p, k: a.z(s, p, k)) if pos else (lambda s, p, k: z3.Not(a.z(s, p, k)))

    def plit(j: int) -> PyFn:
        a, pos = lit(j)
        return a.py if pos else (lambda v, p, k: not a.py(v, p, k))

    def lname(j: int) -> str:
        a, pos = lit(j)
        return a.name if pos else f"!{a.name}"

    def clauses(vecs: list[int]) -> tuple[int, list[tuple[int, int]]]:
        """Unit literals true in every vector, and pairs (j, m): j -> m."""
        always = all_lits
        implied: dict[int, int] = {}
        for lt in vecs:
            always &= lt
        rest_mask = all_lits & ~always
        for lt in vecs:
            x = lt & rest_mask
            while x:
                low = x & -x
                j = low.bit_length() - 1
                implied[j] = implied.get(j, lt) & lt
                x ^= low
        pairs = []
        for j, imp in implied.items():
            r = imp & rest_mask
            while r:
                low = r & -r
                m = low.bit_length() - 1
                r ^= low
                if m != j:
                    pairs.append((j, m))
        return always, pairs

    out: list[Lemma] = []
    seen: set[frozenset[int]] = set()

    def add(lits: tuple[int, ...]) -> None:
        key = frozenset(lits)
        if key in seen or any(frozenset(x) in seen for x in _subsets(lits)):
            return
        seen.add(key)
        zs = [zlit(j) for j in lits]
        ps = [plit(j) for j in lits]
        name = " | ".join(lname(j) for j in lits)
        out.append(Lemma(name, lambda s, p, k, zs=zs: z3.Or([z(s, p, k) for z in zs]),
                         lambda v, p, k, ps=ps: any(f(v, p, k) for f in ps)))

    always, pairs = clauses(lit_true)
    for j in range(2 * n):
        if always >> j & 1:
            add((j,))
    for j, m in pairs:
        add((neg(j), m))
    # three-literal clauses (c & j -> m) under a context literal c that relates the page
    # to a thread or to its attribute / page-cache presence
    ctx_names = {"vcpu-fresh@p", "vcpu@p", "punch-covers-p", "punch-covers-region",
                 "populate@p", "attr[p]", "order[p]=-1", "order[p]=H", "order[p]=0", "spec@p"}
    for c in range(2 * n):
        if lit(c)[0].name not in ctx_names or always >> c & 1:
            continue
        sub = [lt for lt in lit_true if lt >> c & 1]
        if not sub:
            continue
        a2, p2 = clauses(sub)
        for m in range(2 * n):
            if a2 >> m & 1 and m != c:
                add((neg(c), m))
        for j, m in p2:
            if c not in (j, m):
                add((neg(c), neg(j), m))
    return out


def _subsets(lits: tuple[int, ...]) -> list[tuple[int, ...]]:
    if len(lits) <= 1:
        return []
    return [tuple(x for x in lits if x != y) for y in lits]


def well_formed(sm: Any, s: SymState) -> list[tuple[str, Any]]:
    """The hand-written well-formedness lemmas, each as (name, formula)."""
    k = sm.k
    P, H = k.P, k.HUGE
    f = s.f
    out: list[tuple[str, Any]] = []

    # (each is one formula "at every page": one site, which the caller records for the
    # lemma it uses, see kind.build_items)
    def per_page(name: str, fn: Callable[[int], Any]) -> None:
        out.append((name, z3.And([fn(p) for p in range(npos(k))])))

    if mid(k):
        # folios of every order from 0 to H (non-uniform splits): a folio of order j is
        # the aligned block of 2**j pages holding its pages, with j on each of them
        for fld in ("order", "held"):
            per_page(f"{fld} in [-1,H]",
                     lambda p, fld=fld: z3.And(f[fld][p] >= -1, f[fld][p] <= H))
            for j in range(1, H):
                per_page(f"{fld}={j} covers its aligned block",
                         lambda p, fld=fld, j=j: z3.Implies(
                             f[fld][p] == j,
                             z3.And([f[fld][q] == j
                                     for q in range(p - p % (1 << j),
                                                    p - p % (1 << j) + (1 << j))])))
    else:
        orders = (-1, 0, H) if H > 0 else (-1, 0)
        per_page("order in {-1,0,H}", lambda p: z3.Or([f["order"][p] == o for o in orders]))
        per_page("held in {-1,0,H}", lambda p: z3.Or([f["held"][p] == o for o in orders]))
    for name, hi in (("content", 2), ("npt", 2), ("rmp", 2), ("host", 3)):
        per_page(f"{name} in [0,{hi}]",
                 lambda p, name=name, hi=hi: z3.And(f[name][p] >= 0, f[name][p] <= hi))
    if H > 0:
        for fld in ("order", "held"):
            per_page(f"{fld}=H covers its region",
                     lambda p, fld=fld: (f[fld][p] == H) == (f[fld][hpos(k, p)] == H))
    out.append(("spec in [-1,P)", z3.And(f["spec"] >= -1, f["spec"] < P)))
    out.append(("vc_gfn in [0,P)", z3.And(f["vc_gfn"] >= 0, f["vc_gfn"] < P)))
    # a populate records its gfn in vm_lo and leaves vm_hi at 0 (encode.scalars_of)
    out.append(("vm range", z3.And(f["vm_lo"] >= 0, f["vm_lo"] < P, z3.Implies(
        f["vm_op"] == VM_PUNCH, z3.And(f["vm_lo"] <= f["vm_hi"], f["vm_hi"] <= P)))))
    out.append(("vm_op", z3.And(f["vm_op"] >= 0, f["vm_op"] <= 2)))
    out.append(("a punch range is not empty",
                z3.Implies(f["vm_op"] == VM_PUNCH, f["vm_lo"] < f["vm_hi"])))
    # a punch is always at some stage; nothing else has one (a state breaking this is not
    # an encoding of any GmemState)
    out.append(("vm_pc", z3.If(f["vm_op"] == VM_PUNCH,
                               z3.Or([f["vm_pc"] == c for c in PC_CODES.values()]),
                               f["vm_pc"] == 0)))
    out.append(("f_kind", z3.Or([f["f_kind"] == c for c in FAULT_CODES.values()])))
    out.append(("f_pfn in [0,P)", z3.And(f["f_pfn"] >= 0, f["f_pfn"] < P)))
    return out


_ = FIELDS
