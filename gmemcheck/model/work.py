"""A copy-on-write view of a :class:`GmemState` for writing one step.

Guards read the immutable state directly. ``apply`` wraps it in a :class:`Work`,
mutates array fields through :meth:`Work.arr` (copied to a list on first write),
scalars through :meth:`Work.put`, and freezes the result with :meth:`Work.done`.
When a step is explained for a trace, the same code runs with a log: the return
value (``ret``) and the side effects worth showing (host writes, RMP updates) are
recorded by :meth:`Work.event`. One implementation serves the search and the trace.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
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
            raise _not_a_field(f) from None
        return tuple.__new__(cls, vals)

    def writes(self, pos: dict[str, int]) -> tuple[tuple[int, Any], ...]:
        """What the step wrote, as (field position, value) pairs in ``pos``'s numbering,
        lists frozen to tuples as :meth:`done` freezes them (the writes a memo replays)."""
        try:
            return tuple((pos[f], tuple(v) if type(v) is list else v)
                         for f, v in self.m.items())
        except KeyError as e:
            raise _not_a_field(e.args[0]) from None


def _not_a_field(f: str) -> ValueError:
    return ValueError(f"a step wrote {f!r}, which is not a field of the state")


# ------------------------------------------------------------------ memoized steps
# A step's successor depends only on the fields its body reads (and on its arguments, the
# kernel context and the declared choices): the body is deterministic (the plug-in loader
# checks it). So a body is run once per distinct (arguments, values of the fields it
# read) and its writes are replayed on every other state agreeing on those fields. The
# fields read are recorded while the body runs, through a proxy standing for the state
# (Work.get and Work.arr read through it, and so does a body or helper reading w.s).
# Sound by induction over the reads: a state agreeing with the recorded one on every
# field read makes the body take the same branches and read the same fields in the same
# order, so it writes the same values. Anything the proxy cannot stand for (iterating
# the state, comparing it, a NamedTuple method) raises MemoUnsafe, and the action then
# runs unmemoized for good. Bodies built by a plug-in (gmemcheck.api.make) are never
# memoized: the memo cannot see what foreign code reads outside the state.

MEMO_CAP = 250_000  # memo entries per model (steps and guards together); then no more
_FIELDS: dict[type, frozenset[str]] = {}


class MemoUnsafe(Exception):
    """A memoized body used the state in a way the read-recording proxy cannot follow."""


class _Reads:
    """Stands for a NamedTuple state while a memoized body or guard runs: every field
    read is recorded (in order of first read)."""

    __slots__ = ("_s", "_fields", "_read", "_unsafe")

    def __init__(self, s: Any, fields: frozenset[str]) -> None:
        self._s, self._fields = s, fields
        self._read: dict[str, None] = {}
        # set before MemoUnsafe is raised, so that code catching it (a broad except in
        # a guard or body) still turns the memo off: its answer came from the fallback
        self._unsafe = False

    def __getattr__(self, f: str) -> Any:
        if f not in self._fields:
            self._unsafe = True
            raise MemoUnsafe(f"the state's attribute {f!r} read through the memo proxy")
        self._read[f] = None
        return getattr(self._s, f)

    def _refuse(self, *a: Any) -> Any:
        self._unsafe = True
        raise MemoUnsafe("the state used as a whole through the memo proxy")

    __iter__ = __len__ = __getitem__ = __eq__ = __ne__ = __hash__ = __bool__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __contains__ = __reduce__ = _refuse
    __repr__ = __str__ = __format__ = _refuse


def recorded(fn: Callable[..., Any], fields: frozenset[str], *states: Any
             ) -> tuple[tuple[tuple[str, ...], ...], Any] | None:
    """``fn(*proxies)``, one recording proxy standing for each of ``states``: the fields
    read through each (in order of first read) and ``fn``'s answer; None where a proxy
    could not follow (MemoUnsafe, whether ``fn`` let it through or caught it). The one
    way the memos (:func:`memoized`, ``GmemModel.enabled_labels``, the C loop's
    ``checker/accel.py``) learn what a computation read."""
    proxies = [_Reads(s, fields) for s in states]
    try:
        r = fn(*proxies)
    except MemoUnsafe:
        r = None  # the proxy flagged it (and code catching it is flagged too)
    if any(p._unsafe for p in proxies):
        return None
    return tuple(tuple(p._read) for p in proxies), r


def fields_of(cls: type) -> frozenset[str] | None:
    """The fields of a NamedTuple state class (None: not a NamedTuple, no memo)."""
    f = _FIELDS.get(cls)
    if f is None:
        names = getattr(cls, "_fields", None)
        if names is None or not issubclass(cls, tuple):
            return None
        f = _FIELDS[cls] = frozenset(names)
        _POSITIONS.setdefault(cls, {n: i for i, n in enumerate(names)})
    return f


class Memo:
    """The memo of one model: an on/off switch and the shared entry count (the cap)."""

    __slots__ = ("on", "entries", "cap")

    def __init__(self, on: bool, cap: int = MEMO_CAP) -> None:
        self.on, self.entries, self.cap = on, 0, cap


def _getter(fields: tuple[str, ...]) -> Callable[[Any], Any]:
    if not fields:
        return lambda s: ()
    return operator.attrgetter(*fields)


class ReadTables:
    """Answers keyed on the values of the fields a computation read (the memo of one
    step's argument tuple, or of a design's guards): one table per distinct read set,
    each from those fields' values to the answer. A state is looked up under each read
    set seen so far; the read sets that hit most drift to the front."""

    __slots__ = ("sets",)

    def __init__(self) -> None:
        self.sets: list[tuple[Callable[[Any], Any], tuple[str, ...], dict[Any, Any]]] = []

    def get(self, s: Any) -> Any:
        """The answer recorded for ``s``, or None."""
        sets = self.sets
        for j, (get, _, table) in enumerate(sets):
            r = table.get(get(s))
            if r is not None:
                if j:
                    sets[j - 1], sets[j] = sets[j], sets[j - 1]
                return r
        return None

    def put(self, s: Any, read: tuple[str, ...], answer: Any, memo: Memo) -> None:
        """Record ``answer`` for every state agreeing with ``s`` on the fields ``read``,
        unless the model's memo is full (its cap)."""
        if memo.entries >= memo.cap:
            return
        entry = next((e for e in self.sets if e[1] == read), None)
        if entry is None:
            entry = (_getter(read), read, {})
            self.sets.append(entry)
        get, _, table = entry
        table[get(s)] = answer
        memo.entries += 1


def memoized(body: Callable[..., None], k: Any, memo: Memo
             ) -> Callable[[Any, tuple[Any, ...]], Any]:
    """``apply(s, args)`` for ``body(k, w, *args)``, memoized on the fields it reads.

    Per argument tuple (with the declared choices in force, ``CHOSEN``), the
    :class:`ReadTables` from the values of the fields read to the writes (field
    position, new value). The writes are applied to the state as Work.done would."""
    tables: dict[Any, ReadTables] = {}
    on = [True]

    def plain(s: Any, a: tuple[Any, ...]) -> Any:
        w = Work(s)
        body(k, w, *a)
        return w.done()

    def apply(s: Any, a: tuple[Any, ...]) -> Any:
        if not (on[0] and memo.on):
            return plain(s, a)
        cls = type(s)
        ak = (a, tuple(CHOSEN.items())) if CHOSEN else a
        rt = tables.get(ak)
        p = rt.get(s) if rt is not None else None
        if p is None:
            fields = fields_of(cls)
            if fields is None:
                on[0] = False
                return plain(s, a)
            def run(proxy: Any) -> Work:
                w = Work(proxy)
                body(k, w, *a)
                return w

            got = recorded(run, fields, s)
            if got is None:
                on[0] = False
                return plain(s, a)
            (read,), w = got
            p = w.writes(_POSITIONS[cls])
            if rt is None:
                rt = tables[ak] = ReadTables()
            rt.put(s, read, p, memo)
        if not p:
            return s
        vals = list(s)
        for i, v in p:
            vals[i] = v
        return tuple.__new__(cls, vals)

    # what the C search loop (checker/accel.py) runs on a recording proxy itself
    apply.body, apply.kernel = body, k  # type: ignore[attr-defined]
    return apply
