"""Symbolic states: the fields of :class:`GmemState` as Z3 terms, over one of two index
backends.

* :class:`Unrolled`: the number of pages is a Python int and every per-page field is a
  list of Z3 terms; quantifiers over pages are expanded into finite conjunctions. Exact
  and quantifier-free: used for BMC at the presets' bounds and for proofs at 512 pages.
* :class:`Quantified`: per-page fields are Z3 arrays ``Int -> X``, new arrays are
  lambdas, quantifiers over pages are Z3 quantifiers. The formula size does not depend on
  the number of pages, which may even be a free variable: used for 262,144 pages and for
  "every size at once". The solver may answer unknown; that is reported, never hidden.

The encoding code (:mod:`.steps`, :mod:`.actions`) is written once against this API:
``arr[i]`` reads (``i`` a Python int or a Z3 term), ``space.new(fn)`` builds the array
``p -> fn(p)``, ``space.forall/exists(lo, hi, fn)`` quantify over page indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import z3

from ..model.state import DECLARED, FIELDS

# sorts of the built-in per-page and per-region fields, from their declarations
# (model/state.py; plug-in fields get theirs from their domains, symbolic/extra.py)
PAGE_FIELDS: dict[str, str] = {n: DECLARED[n].sort for n in FIELDS
                               if DECLARED[n].scope == "page"}
REGION_FIELDS: dict[str, str] = {n: DECLARED[n].sort for n in FIELDS
                                 if DECLARED[n].scope == "region"}
# scalar encoding of the tuple-valued fields
SCALARS: dict[str, str] = {
    "spec": "int",
    "vc_on": "bool", "vc_gfn": "int", "vc_stale": "bool",
    "vm_op": "int", "vm_lo": "int", "vm_hi": "int", "vm_pc": "int", "vm_ret": "int",
    "launched": "bool",
    "f_kind": "int", "f_pfn": "int",
}
assert set(PAGE_FIELDS) | set(REGION_FIELDS) | {"spec", "vcpu", "vmm", "launched", "fault"} \
    == set(FIELDS)

Expr = Any


def _const(name: str, sort: str, width: int | None = None) -> Expr:
    if sort == "bool":
        return z3.Bool(name)
    return z3.Int(name) if width is None else z3.BitVec(name, width)


def bv_width(pages: int) -> int:
    """Bits of the signed bit-vectors that stand for integers at ``pages`` pages: every
    integer the encoding computes lies in [-64, 8 * pages] (page indices and ends, sums
    of an index and a length or a huge-page size, errno values, small codes), so none
    overflows."""
    return max(8, (8 * pages).bit_length() + 1)


def num(v: int, like: Any) -> Expr:
    """The constant ``v`` in the integer sort of ``like`` (Int or a bit-vector)."""
    if isinstance(like, int):
        return z3.IntVal(v) if like == 0 else z3.BitVecVal(v, like)
    return z3.BitVecVal(v, like.size()) if z3.is_bv(like) else z3.IntVal(v)


def value_of(x: Any) -> Any:
    """A ground Z3 value as a Python bool or int (bit-vectors read as signed)."""
    if z3.is_true(x):
        return True
    if z3.is_false(x):
        return False
    if z3.is_int_value(x):
        return x.as_long()
    if z3.is_bv_value(x):
        return x.as_signed_long()
    raise ValueError(f"not a ground value: {x}")


def is_value(x: Any) -> bool:
    return z3.is_int_value(x) or z3.is_bv_value(x)


class Space:
    """Index backend: how per-page arrays, reads and quantifiers are expressed."""

    P: Any      # number of pages: Python int (Unrolled) or Int expression
    n: Any      # length of the per-page lists (positions): P, or fewer for a Window
    N: Any      # pages per huge folio
    R: Any
    width: int | None = None   # integers as signed bit-vectors of this width, or Int
    extra: tuple[Any, ...] = ()  # the plug-in fields' codecs (symbolic/extra.py)

    def const(self, name: str, sort: str) -> Expr:
        return _const(name, sort, self.width)

    def val(self, v: int) -> Expr:
        return num(v, self.width or 0)

    def fresh_array(self, name: str, sort: str, length: Any) -> Any:
        raise NotImplementedError

    def new(self, fn: Callable[[Any], Expr], length: Any = None) -> Any:
        raise NotImplementedError

    def forall(self, lo: Any, hi: Any, fn: Callable[[Any], Expr]) -> Expr:
        raise NotImplementedError

    def exists(self, lo: Any, hi: Any, fn: Callable[[Any], Expr]) -> Expr:
        return z3.Not(self.forall(lo, hi, lambda p: z3.Not(fn(p))))

    def equal(self, a: Any, b: Any, length: Any = None) -> Expr:
        raise NotImplementedError

    def region_start(self, p: Any) -> Any:
        return p - p % self.N


class UArr:
    """An unrolled array: a list of Z3 terms indexed by Python ints (positions) or Z3
    terms (page numbers). ``win``: the :class:`Window` whose representative pages the
    positions stand for (page arrays of a window space only)."""

    __slots__ = ("items", "win")

    def __init__(self, items: list[Expr], win: Window | None = None) -> None:
        self.items = items
        self.win = win

    def like(self, items: list[Expr]) -> UArr:
        return UArr(items, self.win)

    def __getitem__(self, i: Any) -> Expr:
        if isinstance(i, int):
            return self.items[i]
        if self.win is not None:
            return self.win.read(self.items, i)
        if is_value(i):
            return self.items[value_of(i)]
        # symbolic index: an ite chain (the caller constrains i to the range)
        out = self.items[-1]
        for k in range(len(self.items) - 2, -1, -1):
            out = z3.If(i == k, self.items[k], out)
        return out

    def __len__(self) -> int:
        return len(self.items)


class Unrolled(Space):
    def __init__(self, pages_per_huge: int, regions: int, bv: bool = False) -> None:
        self.N = pages_per_huge
        self.R = regions
        self.P = pages_per_huge * regions
        self.n = self.P
        self.width = bv_width(self.P) if bv else None

    def fresh_array(self, name: str, sort: str, length: Any) -> UArr:
        return UArr([self.const(f"{name}[{i}]", sort) for i in range(length)])

    def new(self, fn: Callable[[Any], Expr], length: Any = None) -> UArr:
        n = self.P if length is None else length
        return UArr([fn(i) for i in range(n)])

    def forall(self, lo: Any, hi: Any, fn: Callable[[Any], Expr]) -> Expr:
        if isinstance(lo, int) and isinstance(hi, int):
            return z3.And([fn(i) for i in range(max(lo, 0), min(hi, self.P))] or [True])
        return z3.And([z3.Implies(z3.And(lo <= i, i < hi), fn(i)) for i in range(self.P)])

    def equal(self, a: UArr, b: UArr, length: Any = None) -> Expr:
        return z3.And([x == y for x, y in zip(a.items, b.items, strict=True)])


class Window(Space):
    """Representative pages: ``W`` pages of each huge region stand for all ``N`` of it.

    The state keeps its fields at ``W * R`` positions only; position ``r * W + i`` is the
    page ``r * N + off[r][i]``, with ``off[r][0] = 0`` (the region's head) and the other
    offsets free, strictly increasing and below ``N``: the solver picks which pages are
    represented. Every Python int page the encoding handles is a position; page numbers
    are Z3 terms (:meth:`at`).

    Soundness. Let a concrete counterexample at size N exist. Take as representative
    pages the head of each region and every page the encoding's terms need to be exact:
    each index the formulas read at (:meth:`read`, an *obligation*: asserted to be a
    representative page), a witness of each region aggregate (:meth:`site`: a page on
    which an "any page of the range" holds, or an "every page" fails) and the page a
    walk stops at, and the page that violates the goal. If there are at most ``W - 1``
    of them, the counterexample restricted to those pages satisfies the query: every
    term is then computed from those pages alone exactly as at full size. So a query
    with :meth:`need` at most ``W - 1`` that is unsatisfiable proves the property at
    size N. Sites and obligations are recorded per scope (the action or item whose
    formula is being built), see :meth:`scope`.
    """

    def __init__(self, pages_per_huge: Any, regions: int, W: int, width: int | None) -> None:
        self.N = pages_per_huge
        self.R = regions
        self.P = pages_per_huge * regions
        self.W = W
        self.n = W * regions
        self.width = width
        self.off = [[self.val(0)] + [self.const(f"win.off[{r}][{i}]", "int")
                                     for i in range(1, W)] for r in range(regions)]
        self.ix = [r * self.N + self.off[r][i] for r in range(regions) for i in range(W)]
        self._by_id = {t.get_id(): q for q, t in enumerate(self.ix)}
        self.sites: dict[str, int] = {}
        self.obligations: dict[str, dict[int, Any]] = {}
        self.cur = "state"
        self._heads: dict[int, Any] = {}
        if pages_per_huge & (pages_per_huge - 1):
            raise ValueError("a window needs a power-of-two pages_per_huge")

    # ---------------------------------------------------------------- accounting
    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Attribute the sites and obligations of the formulas built inside to ``name``."""
        prev, self.cur = self.cur, name
        try:
            yield
        finally:
            self.cur = prev

    def site(self, n: int = 1) -> None:
        self.sites[self.cur] = self.sites.get(self.cur, 0) + n

    def head_of(self, p: Expr) -> Expr:
        """The first page of the region of page ``p`` (a head: always represented)."""
        t = p & self.val(-self.N) if self.width else p - p % self.N
        self._heads[t.get_id()] = t
        return t

    def read(self, items: list[Expr], i: Any) -> Expr:
        """``items`` at the page number ``i``: an ite chain over the represented pages,
        over the heads alone if ``i`` is a head (:meth:`head_of`); else ``i`` is an
        obligation of the current scope."""
        q = self._by_id.get(i.get_id()) if isinstance(i, z3.ExprRef) else None
        if q is not None:
            return items[q]
        if i.get_id() in self._heads:
            pos = [r * self.W for r in range(self.R)]
        else:
            self.obligations.setdefault(self.cur, {})[i.get_id()] = i
            pos = list(range(len(items)))
        out = items[pos[-1]]
        for q in reversed(pos[:-1]):
            out = z3.If(i == self.ix[q], items[q], out)
        return out

    def need(self, act: str | None, goals: list[str], scopes: list[str]) -> int:
        """Representative pages besides the heads that a query needs: the sites of the
        relation built in ``act``, those of the one goal disjunct (built in one of
        ``goals``) it violates at most, and the distinct reads of every scope in it."""
        reads = {i for sc in scopes for i in self.obligations.get(sc, {})}
        return (self.sites.get(act, 0) if act else 0) \
            + max([self.sites.get(g, 0) for g in goals] or [0]) + len(reads)

    def constraint(self, scopes: list[str]) -> Any:
        """The offsets well-formed, and the obligations of these scopes (an index read
        is a represented page, or outside the pages, where nothing uses the value)."""
        parts = []
        for r in range(self.R):
            o = self.off[r]
            parts += [z3.And(o[i - 1] < o[i], o[i] < self.N) for i in range(1, self.W)]
        for sc in scopes:
            for t in self.obligations.get(sc, {}).values():
                parts.append(z3.Or(t < 0, t >= self.P, *[t == x for x in self.ix]))
        return z3.And(parts)

    # ---------------------------------------------------------------- positions
    def at(self, q: int) -> Expr:
        return self.ix[q]

    def head(self, q: int) -> int:
        return q - q % self.W

    def region(self, q: int) -> int:
        return q // self.W

    def positions(self, r: int) -> range:
        return range(r * self.W, r * self.W + self.W)

    def fresh_array(self, name: str, sort: str, length: Any) -> UArr:
        win = self if length == self.n else None
        return UArr([self.const(f"{name}[{i}]", sort) for i in range(length)], win)

    def new(self, fn: Callable[[Any], Expr], length: Any = None) -> UArr:
        n = self.n if length is None else length
        return UArr([fn(i) for i in range(n)], self if n == self.n else None)

    def equal(self, a: UArr, b: UArr, length: Any = None) -> Expr:
        return z3.And([x == y for x, y in zip(a.items, b.items, strict=True)])


class QArr:
    """A quantified array: a Z3 array term."""

    __slots__ = ("a",)

    def __init__(self, a: Expr) -> None:
        self.a = a

    def __getitem__(self, i: Any) -> Expr:
        return z3.Select(self.a, i)


class Quantified(Space):
    def __init__(self, pages_per_huge: Any, regions: Any) -> None:
        self.N = pages_per_huge
        self.R = regions
        self.P = pages_per_huge * regions
        self._n = 0

    def _var(self) -> Expr:
        self._n += 1
        return z3.Int(f"_p{self._n}")

    def fresh_array(self, name: str, sort: str, length: Any) -> QArr:
        rng = z3.BoolSort() if sort == "bool" else z3.IntSort()
        return QArr(z3.Array(name, z3.IntSort(), rng))

    def new(self, fn: Callable[[Any], Expr], length: Any = None) -> QArr:
        p = self._var()
        return QArr(z3.Lambda([p], fn(p)))

    def forall(self, lo: Any, hi: Any, fn: Callable[[Any], Expr]) -> Expr:
        if isinstance(lo, int) and isinstance(hi, int) and hi - lo <= 2:
            return z3.And([fn(i) for i in range(lo, hi)] or [True])
        p = self._var()
        return z3.ForAll([p], z3.Implies(z3.And(lo <= p, p < hi), fn(p)))

    def equal(self, a: QArr, b: QArr, length: Any = None) -> Expr:
        return a.a == b.a


class SymState:
    """One symbolic state: per-page arrays, per-region arrays, scalars."""

    def __init__(self, space: Space, fields: dict[str, Any]) -> None:
        self.space = space
        self.f = fields

    @classmethod
    def fresh(cls, space: Space, tag: str) -> SymState:
        f: dict[str, Any] = {}
        for name, sort in PAGE_FIELDS.items():
            f[name] = space.fresh_array(f"{tag}.{name}", sort, space.n)
        for name, sort in REGION_FIELDS.items():
            f[name] = space.fresh_array(f"{tag}.{name}", sort, space.R)
        for name, sort in SCALARS.items():
            f[name] = space.const(f"{tag}.{name}", sort)
        for c in space.extra:
            if c.scope == "page":
                f[c.name] = space.fresh_array(f"{tag}.{c.name}", c.sort, space.n)
            elif c.scope == "region":
                f[c.name] = space.fresh_array(f"{tag}.{c.name}", c.sort, space.R)
            else:
                f[c.name] = space.const(f"{tag}.{c.name}", c.sort)
        return cls(space, f)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["f"][name]
        except KeyError:
            raise AttributeError(name) from None

    def copy(self) -> SymState:
        return SymState(self.space, dict(self.f))

    def equal(self, other: SymState, only: set[str] | None = None) -> Expr:
        sp = self.space
        parts = []
        for name in PAGE_FIELDS:
            if only is None or name in only:
                parts.append(sp.equal(self.f[name], other.f[name], sp.P))
        for name in REGION_FIELDS:
            if only is None or name in only:
                parts.append(sp.equal(self.f[name], other.f[name], sp.R))
        for name in SCALARS:
            if only is None or name in only:
                parts.append(self.f[name] == other.f[name])
        for c in sp.extra:
            if only is None or c.name in only:
                if c.scope in ("page", "region"):
                    parts.append(sp.equal(self.f[c.name], other.f[c.name]))
                else:
                    parts.append(self.f[c.name] == other.f[c.name])
        return z3.And(parts)
