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

# the outcomes of the declared choices (registry.Choice) of the action being applied,
# set by the action's wrapper around apply (build.with_choice)
CHOSEN: dict[str, Any] = {}


# NamedTuple state class -> {field: position}, for Work.done
_POSITIONS: dict[type, dict[str, int]] = {}


class StepError(Exception):
    """A step asked for a choice its action does not carry."""


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

    def choose(self, name: str, values: tuple[Any, ...] | None = None) -> Any:
        """The outcome of the declared nondeterministic choice ``name`` for this step
        (``gmemcheck.api.add_choice``): one of its values, fixed by the action's
        argument of the same name, so the label replays. ``values``, if given, must be
        the declared ones."""
        if name in self.opt:
            return self.opt[name]
        try:
            v = CHOSEN[name]
        except KeyError:
            raise StepError(f"a step calls w.choose({name!r}) but the action does not carry "
                              f"that choice (declare it with add_choice(..., actions=[...]))"
                              ) from None
        if values is not None:
            from .registry import CHOICES

            c = CHOICES.get(name)
            if c is not None and tuple(values) != c.values:
                raise StepError(f"w.choose({name!r}, {values!r}): the choice was declared "
                                  f"with {c.values!r}")
        return v

    def holder(self, lock: str) -> str:
        """The thread holding lock ``lock`` ("" when it is free)."""
        from .registry import LOCKS

        return str(self.get(LOCKS[lock].field))

    def acquire(self, lock: str, thread: str) -> None:
        """``thread`` takes ``lock``, which must be free (the action's guard says so)."""
        from .registry import LOCKS

        f = LOCKS[lock].field
        cur = self.get(f)
        if cur:
            raise StepError(f"{thread} acquires {lock}, held by {cur}: the guard of the "
                              "acquiring action must require the lock to be free")
        self.put(f, thread)
        self.event(f"{thread} takes {lock}")

    def release(self, lock: str, thread: str) -> None:
        from .registry import LOCKS

        f = LOCKS[lock].field
        cur = self.get(f)
        if cur != thread:
            raise StepError(f"{thread} releases {lock}, held by {cur or 'nobody'}")
        self.put(f, "")
        self.event(f"{thread} releases {lock}")

    def event(self, msg: str) -> None:
        if self.log is not None:
            self.log.append(msg)

    @property
    def faulted(self) -> bool:
        return bool(self.get("fault"))

    def done(self) -> Any:
        m = self.m
        s = self.s
        if not m:
            return s
        cls = type(s)
        pos = _POSITIONS.get(cls)
        if pos is None:
            if not hasattr(cls, "_fields"):  # a state that is not a NamedTuple
                return s._replace(**{f: tuple(v) if type(v) is list else v
                                     for f, v in m.items()})
            pos = _POSITIONS[cls] = {f: i for i, f in enumerate(cls._fields)}
        # the written fields put in place in one list, then one tuple (cheaper than
        # NamedTuple._replace, which pops a keyword dict per field)
        vals = list(s)
        try:
            for f, v in m.items():
                vals[pos[f]] = tuple(v) if type(v) is list else v
        except KeyError:
            raise ValueError(f"a step wrote {f!r}, which is not a field of the state") from None
        return tuple.__new__(cls, vals)
