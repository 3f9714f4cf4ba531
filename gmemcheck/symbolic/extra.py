"""Plug-in state in Z3: each field a plug-in declares (``add_field``, a thread's
program counter from ``add_thread``, a lock from ``add_lock``) gets Z3 variables from
its declaration alone:

* a domain of bools: a Bool;
* a domain of ints: an integer (Int or the space's bit-vector) limited to the domain
  (:meth:`Codec.in_domain`, part of every fresh state's well-formedness);
* any other domain (pc names, lock holders, tuples): an integer index into the
  domain tuple, in its declared order.

A ``page`` field is a per-page array (positions, as the built-in page fields), a
``region`` field a per-region array, a ``scalar``/``thread`` field one variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3


@dataclass(frozen=True)
class Codec:
    name: str
    scope: str                      # page | region | scalar | thread
    sort: str                       # "bool" | "int"
    values: tuple[Any, ...]         # the domain, in declared order
    index: bool                     # stored as an index into ``values``

    def enc(self, v: Any) -> Any:
        """The Z3-side Python value of the domain value ``v``."""
        if self.index:
            try:
                return self.values.index(v)
            except ValueError:
                raise ValueError(f"field {self.name}: {v!r} is not in its domain") from None
        return v

    def dec(self, x: Any) -> Any:
        if self.index:
            return self.values[x]
        return bool(x) if self.sort == "bool" else x

    def in_domain(self, e: Any) -> Any:
        if self.sort == "bool":
            return z3.BoolVal(True)
        if self.index:
            return z3.And(e >= 0, e < len(self.values))
        vs = sorted(self.values)
        if vs == list(range(vs[0], vs[-1] + 1)):
            return z3.And(e >= vs[0], e <= vs[-1])
        return z3.Or([e == v for v in vs])


def codec_of(f: Any, k: Any) -> Codec:
    d = f.domain
    vals = tuple(d(k) if callable(d) else d)
    if all(isinstance(v, bool) for v in vals):
        return Codec(f.name, f.scope, "bool", vals, False)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return Codec(f.name, f.scope, "int", vals, False)
    return Codec(f.name, f.scope, "int", vals, True)


def codecs(model: Any, k: Any) -> list[Codec]:
    """The Z3 form of every plug-in field of ``model``'s design, at ``k``'s sizes."""
    return [codec_of(f, k) for f in getattr(model, "extra_fields", ())]
