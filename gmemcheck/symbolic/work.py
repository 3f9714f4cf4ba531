"""Symbolic counterpart of :class:`gmemcheck.model.work.Work`.

The explicit steps mutate a copy of the state in program order and stop at the first
fatal event. Here every write is a conditional update masked by the conditions of the
enclosing branches (``with w.when(cond):``) and by ``ok``, which turns false once a fault
is recorded; that reproduces "if ...:" and "return early" without forking. The result
is a :class:`SymState` whose fields are Z3 terms over the pre-state and the action's
arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import z3

from .space import SymState

FAULT_CODES = {"": 0, "host-rmp-#pf-oops": 1, "user-rmp-#pf": 2, "td-private-host-write": 3,
               "rmpupdate-overlap-livelock": 4}
FAULT_NAMES = {v: k for k, v in FAULT_CODES.items()}
VM_IDLE, VM_PUNCH, VM_POPULATE = 0, 1, 2
PC_CODES = {"invalidated": 1, "truncated": 2, "unprepared": 3}
PC_NAMES = {v: k for k, v in PC_CODES.items()}


class SW:
    def __init__(self, k: Any, st: SymState) -> None:
        self.k = k
        self.sp = st.space
        self.pre = st
        self.v: dict[str, Any] = dict(st.f)
        self.ok: Any = z3.BoolVal(True)
        self.masks: list[Any] = []

    # ---------------------------------------------------------------- control
    def mask(self) -> Any:
        return z3.And(self.ok, *self.masks) if self.masks else self.ok

    @contextmanager
    def when(self, cond: Any) -> Iterator[None]:
        self.masks.append(cond)
        try:
            yield
        finally:
            self.masks.pop()

    # ---------------------------------------------------------------- reads
    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["v"][name]
        except KeyError:
            raise AttributeError(name) from None

    # ---------------------------------------------------------------- plug-in fields
    def enc(self, name: str, val: Any) -> Any:
        """``val`` as the Z3 term of field ``name`` (a plug-in field's domain value is
        encoded by its codec, symbolic/extra.py)."""
        if isinstance(val, z3.ExprRef):
            return val
        for c in self.sp.extra:
            if c.name == name:
                val = c.enc(val)
                break
        if isinstance(val, bool):
            return z3.BoolVal(val)
        cur = self.v[name]
        return self.sp.val(val) if not hasattr(cur, "items") else val

    def get(self, name: str) -> Any:
        return self.v[name]

    def event(self, text: str) -> None:
        """A trace event: nothing in the Z3 state."""

    def choose(self, name: str) -> Any:
        """The outcome of choice ``name`` (a Z3 variable, an argument of the action)."""
        return self.k.sym_choice[name]

    def acquire(self, lock: str, thread: str) -> None:
        from ..model.registry import LOCKS

        self.put(LOCKS[lock].field, thread)

    def release(self, lock: str, thread: str) -> None:
        from ..model.registry import LOCKS

        self.put(LOCKS[lock].field, "")

    # ---------------------------------------------------------------- writes
    def put(self, name: str, val: Any) -> None:
        self.v[name] = z3.If(self.mask(), self.enc(name, val), self.v[name])

    def upd(self, name: str, fn: Callable[[Any, Any], Any], length: Any = None,
            span: range | None = None) -> None:
        """field[p] := fn(p, field[p]) wherever the current mask holds. ``span`` (a range
        of page indices) promises that no index outside it changes."""
        old = self.v[name]
        m = self.mask()
        if span is None:
            self.v[name] = self.sp.new(lambda p: z3.If(m, fn(p, old[p]), old[p]), length)
        else:
            items = list(old.items)
            for p in span:
                items[p] = z3.If(m, fn(p, old[p]), old[p])
            self.v[name] = old.like(items)

    def set_range(self, name: str, lo: Any, hi: Any, val: Any) -> None:
        self.upd(name, lambda p, o: z3.If(z3.And(lo <= p, p < hi), val, o))

    def fault(self, cond: Any, kind: str, pfn: Any) -> None:
        m = z3.And(self.mask(), cond)
        self.v["f_kind"] = z3.If(m, FAULT_CODES[kind], self.v["f_kind"])
        self.v["f_pfn"] = z3.If(m, pfn, self.v["f_pfn"])
        self.ok = z3.And(self.ok, z3.Not(m))

    def state(self) -> SymState:
        return SymState(self.sp, dict(self.v))
