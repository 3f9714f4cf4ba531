"""A copy-on-write view of a :class:`GmemState` for writing one step.

Guards read the immutable state directly. ``apply`` wraps it in a :class:`Work`,
mutates array fields through :meth:`Work.arr` (copied to a list on first write),
scalars through :meth:`Work.put`, and freezes the result with :meth:`Work.done`.
When a step is explained for a trace, the same code runs with a log: the return
value (``ret``) and the side effects worth showing (host writes, RMP updates) are
recorded by :meth:`Work.event`. One implementation serves the search and the trace.
"""

from __future__ import annotations

from typing import Any


class Work:
    __slots__ = ("s", "m", "log", "ret", "opt")

    def __init__(self, s: Any, log: bool = False, **opt: Any) -> None:
        self.s = s
        self.m: dict[str, Any] = {}
        self.log: list[str] | None = [] if log else None
        self.ret: int | None = None
        # Nondeterministic choices carried by the action's arguments (a failing
        # rmp_make_shared, a failing second split), read by the steps that take them.
        self.opt = opt

    def get(self, f: str) -> Any:
        m = self.m
        return m[f] if f in m else getattr(self.s, f)

    def arr(self, f: str) -> list[Any]:
        m = self.m
        v = m.get(f)
        if v is None:
            v = m[f] = list(getattr(self.s, f))
        return v

    def put(self, f: str, v: Any) -> None:
        self.m[f] = v

    def event(self, msg: str) -> None:
        if self.log is not None:
            self.log.append(msg)

    @property
    def faulted(self) -> bool:
        return bool(self.get("fault"))

    def done(self) -> Any:
        if not self.m:
            return self.s
        upd = {f: tuple(v) if type(v) is list else v for f, v in self.m.items()}
        return self.s._replace(**upd)
