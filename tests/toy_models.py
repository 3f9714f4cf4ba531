"""Small models with known answers, for testing the engines (and for bench/)."""

from __future__ import annotations

from typing import NamedTuple

from gmemcheck.checker import Action, Kind, Property, SimpleModel


# --------------------------------------------------------------------- Die Hard
class Jugs(NamedTuple):
    small: int
    big: int


def die_hard() -> SimpleModel:
    """The Die Hard 3 jugs (3 and 5 gallons): 16 distinct states, and the shortest way
    to 4 gallons in the big jug takes 6 steps."""
    t = lambda s, a: True  # noqa: E731
    acts = [
        Action("fill_small", (), ((),), t, lambda s, a: Jugs(3, s.big), frozenset({"small"})),
        Action("fill_big", (), ((),), t, lambda s, a: Jugs(s.small, 5), frozenset({"big"})),
        Action("empty_small", (), ((),), t, lambda s, a: Jugs(0, s.big), frozenset({"small"})),
        Action("empty_big", (), ((),), t, lambda s, a: Jugs(s.small, 0), frozenset({"big"})),
        Action("small_to_big", (), ((),), t,
               lambda s, a: Jugs(max(0, s.small + s.big - 5), min(5, s.small + s.big)),
               frozenset({"small", "big"})),
        Action("big_to_small", (), ((),), t,
               lambda s, a: Jugs(min(3, s.small + s.big), max(0, s.small + s.big - 3)),
               frozenset({"small", "big"})),
    ]
    return SimpleModel("toy/diehard", acts, [Jugs(0, 0)])


DIE_HARD_NOT_4 = Property("big-is-not-4", Kind.SAFETY, "the big jug never holds 4 gallons",
                          predicate=lambda s: s.big != 4)
DIE_HARD_TYPE_OK = Property("type-ok", Kind.SAFETY, "jug contents stay within capacity",
                            predicate=lambda s: 0 <= s.small <= 3 and 0 <= s.big <= 5)


# --------------------------------------------------------------------- counter
class Counter(NamedTuple):
    x: int


def bounded_counter(n: int, wrap: bool = False, idle: bool = False) -> SimpleModel:
    """x counts from 0 to n with ``inc``. With ``wrap`` a ``reset`` returns from n to 0,
    otherwise the counter is stuck (deadlocked) at n. With ``idle`` a ``tick`` step that
    changes nothing is always enabled, so only fairness of ``inc`` forces progress."""
    acts = [Action("inc", (), ((),), lambda s, a: s.x < n, lambda s, a: Counter(s.x + 1),
                   frozenset({"x"}))]
    if wrap:
        acts.append(Action("reset", (), ((),), lambda s, a: s.x == n, lambda s, a: Counter(0),
                           frozenset({"x"})))
    if idle:
        acts.append(Action("tick", (), ((),), lambda s, a: True, lambda s, a: s, frozenset()))
    return SimpleModel(f"toy/counter{n}", acts, [Counter(0)])


# --------------------------------------------------------------------- mutex
class Mutex(NamedTuple):
    pc: tuple[str, str]   # idle | trying | critical
    lock: int             # -1 free, else holder


def _mutex_actions(atomic: bool) -> list[Action]:
    def set_pc(s: Mutex, i: int, v: str) -> tuple[str, str]:
        pc = list(s.pc)
        pc[i] = v
        return (pc[0], pc[1])

    procs = ((0,), (1,))
    acts = [
        Action("try", ("p",), procs, lambda s, a: s.pc[a[0]] == "idle",
               lambda s, a: Mutex(set_pc(s, a[0], "trying"), s.lock), frozenset({"pc"})),
        Action("release", ("p",), procs, lambda s, a: s.pc[a[0]] == "critical",
               lambda s, a: Mutex(set_pc(s, a[0], "idle"), -1), frozenset({"pc", "lock"})),
    ]
    if atomic:
        acts.insert(1, Action(
            "acquire", ("p",), procs, lambda s, a: s.pc[a[0]] == "trying" and s.lock == -1,
            lambda s, a: Mutex(set_pc(s, a[0], "critical"), a[0]), frozenset({"pc", "lock"})))
    else:
        # check-then-set race: test the lock in one step, take it in the next
        acts.insert(1, Action(
            "check", ("p",), procs, lambda s, a: s.pc[a[0]] == "trying" and s.lock == -1,
            lambda s, a: Mutex(set_pc(s, a[0], "checked"), s.lock), frozenset({"pc"})))
        acts.insert(2, Action(
            "take", ("p",), procs, lambda s, a: s.pc[a[0]] == "checked",
            lambda s, a: Mutex(set_pc(s, a[0], "critical"), a[0]), frozenset({"pc", "lock"})))
    return acts


def mutex(atomic: bool = True) -> SimpleModel:
    """Two processes and a test-and-set lock. With ``atomic`` the lock is safe but not
    starvation-free under weak fairness; without it the check-then-set race breaks
    mutual exclusion."""
    return SimpleModel("toy/mutex" + ("" if atomic else "-racy"), _mutex_actions(atomic),
                       [Mutex(("idle", "idle"), -1)])


MUTEX_EXCLUSION = Property("mutual-exclusion", Kind.SAFETY, "at most one process is critical",
                           predicate=lambda s: s.pc != ("critical", "critical"))
MUTEX_NO_STARVATION = Property(
    "p0-eventually-critical", Kind.LIVENESS,
    "a process that tries eventually enters its critical section",
    trigger=lambda s: s.pc[0] == "trying", predicate=lambda s: s.pc[0] == "critical",
    fairness=("try", "acquire", "release"),
    fairness_note="weak fairness of every step: enough for progress, not for starvation freedom")


# --------------------------------------------------------------------- grid (bench)
def counters_grid(k: int, m: int) -> SimpleModel:
    """k counters, each 0..m, with inc, dec and move-one-unit-to-the-next-counter:
    (m+1)**k states. Big enough to measure the engine (bench/engine.py)."""
    Grid = NamedTuple("Grid", [(f"c{i}", int) for i in range(k)])  # type: ignore[misc]
    make = Grid._make

    def inc(s: tuple[int, ...], a: tuple[int]) -> tuple[int, ...]:
        i = a[0]
        return make(s[:i] + (s[i] + 1,) + s[i + 1:])

    def dec(s: tuple[int, ...], a: tuple[int]) -> tuple[int, ...]:
        i = a[0]
        return make(s[:i] + (s[i] - 1,) + s[i + 1:])

    def move(s: tuple[int, ...], a: tuple[int]) -> tuple[int, ...]:
        i = a[0]
        j = (i + 1) % k
        lst = list(s)
        lst[i] -= 1
        lst[j] += 1
        return make(lst)

    idx = tuple((i,) for i in range(k))
    acts = [
        Action("inc", ("i",), idx, lambda s, a: s[a[0]] < m, inc, frozenset(Grid._fields)),
        Action("dec", ("i",), idx, lambda s, a: s[a[0]] > 0, dec, frozenset(Grid._fields)),
        Action("move", ("i",), idx, lambda s, a: s[a[0]] > 0 and s[(a[0] + 1) % k] < m,
               move, frozenset(Grid._fields)),
    ]
    return SimpleModel(f"toy/grid{k}x{m}", acts, [Grid(*([0] * k))])
