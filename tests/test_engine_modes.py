"""The explicit engine's options against its default: worker processes give the very same
exploration; hash compaction gives the same counts and traces and weakens what rests on
completeness, saying so; the compact graph passes agree with the toy answers."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest
from toy_models import (
    DIE_HARD_NOT_4,
    DIE_HARD_TYPE_OK,
    MUTEX_EXCLUSION,
    MUTEX_NO_STARVATION,
    Counter,
    bounded_counter,
    counters_grid,
    die_hard,
    mutex,
)

from gmemcheck import properties
from gmemcheck.checker import Action, Caps, Kind, Property, Result, SimpleModel, check, explore
from gmemcheck.checker.explicit import Packer, Replayed, fingerprint
from gmemcheck.model import build, load_preset

DEADLOCK = Property("no-deadlock", Kind.DEADLOCK, "some step is always enabled")
BIG_6 = Property("big-6", Kind.REACHABLE, "", predicate=lambda s: s.big == 6)
POUR_INTO_FULL = Property(
    "no-pour-when-big-full", Kind.SAFETY, "", step=lambda pre, lbl, post:
    not (lbl[0] == "small_to_big" and pre.big == 5 and pre.small > 0))
BACK_TO_0 = Property("back-to-0", Kind.RECOVERABLE, "", predicate=lambda s: s.x == 0)

TOYS = [
    (die_hard, [DIE_HARD_NOT_4, DIE_HARD_TYPE_OK, DEADLOCK, BIG_6, POUR_INTO_FULL]),
    (mutex, [MUTEX_EXCLUSION, MUTEX_NO_STARVATION, DEADLOCK]),
    (lambda: mutex(atomic=False), [MUTEX_EXCLUSION, DEADLOCK]),
    (lambda: bounded_counter(5), [DEADLOCK, BACK_TO_0]),
    (lambda: counters_grid(3, 3), [DEADLOCK]),
]


def labels(trace):
    return [(s.action, s.args) for s in trace.steps]


def summary(run):
    return [(v.property, v.result, v.bound, labels(v.trace) if v.trace else None,
             v.trace.loop if v.trace else None) for v in run.verdicts]


# ------------------------------------------------------------------ workers
@pytest.mark.parametrize("make, props", TOYS)
def test_two_workers_explore_exactly_as_one(make, props):
    one = explore(make(), props, keep_graph=True)
    two = explore(make(), props, keep_graph=True, workers=2, chunk=3)
    assert list(one.states) == list(two.states)
    for col in ("parent", "via", "depth"):
        assert list(getattr(one, col)) == list(getattr(two, col))
    assert (one.transitions, one.fired, one.terminal) == (two.transitions, two.fired,
                                                           two.terminal)
    assert {k: (h.state, h.via) for k, h in one.hits.items()} == {
        k: (h.state, h.via) for k, h in two.hits.items()}
    assert [list(a) for a in one.csr] == [list(a) for a in two.csr]
    assert one.marks == two.marks


@pytest.mark.parametrize("make, props", TOYS)
def test_two_workers_give_the_same_verdicts_and_traces(make, props):
    assert summary(check(make(), props)) == summary(check(make(), props, workers=2))


def test_caps_bound_a_parallel_search_the_same_way():
    p = Property("x>=0", Kind.SAFETY, "", predicate=lambda s: s.x >= 0)
    for caps, bound, states in ((Caps(max_states=4), "states<=4", 4),
                                (Caps(max_depth=3), "depth<=3", 4)):
        run = check(bounded_counter(10), [p], caps=caps, workers=2)
        assert (run.verdicts[0].result, run.verdicts[0].bound) == (Result.HOLDS_BOUNDED, bound)
        assert run.states == states and not run.complete


def test_worker_count_must_be_positive():
    with pytest.raises(ValueError, match="workers must be at least 1"):
        explore(die_hard(), workers=0)


# ------------------------------------------------------------------ hash compaction
def test_hash_compaction_counts_every_state_and_says_what_it_promises():
    exact = check(die_hard(), [DIE_HARD_NOT_4, DIE_HARD_TYPE_OK, BIG_6])
    hc = check(die_hard(), [DIE_HARD_NOT_4, DIE_HARD_TYPE_OK, BIG_6], hash_compaction=True)
    assert (hc.states, hc.transitions) == (exact.states, exact.transitions) == (16, 96)
    bad, ok, big6 = hc.verdicts
    # a violation replays, so it stands, with the same shortest trace
    assert bad.result is Result.VIOLATED
    assert labels(bad.trace) == labels(exact.verdicts[0].trace)
    assert bad.bound == "shortest: 6 steps, hash compaction"
    # what rests on having seen every state is weakened, and says why
    assert (ok.result, ok.bound) == (Result.HOLDS_BOUNDED, "exhaustive, hash compaction")
    assert big6.result is Result.INCONCLUSIVE
    p = 16 * (96 - 16) / 2.0 ** 64
    assert ok.stats["hash_compaction"] == {"bits": 64, "probability": p}
    assert f"probability of a missed state {p:.1e}" in ok.reason
    assert any("hash compaction (64-bit fingerprints)" in n for n in hc.notes)


@pytest.mark.parametrize("make, props", TOYS)
def test_hash_compaction_recomputes_the_states_it_did_not_keep(make, props):
    exact = explore(make(), props, keep_graph=True)
    hc = explore(make(), props, keep_graph=True, hash_compaction=True)
    assert isinstance(hc.states, Replayed)
    assert list(hc.states) == list(exact.states)
    assert list(hc.parent) == list(exact.parent) and hc.marks == exact.marks


def test_liveness_lasso_is_the_same_under_hash_compaction_and_workers():
    want = summary(check(mutex(), [MUTEX_NO_STARVATION]))
    assert want[0][1] is Result.VIOLATED
    assert summary(check(mutex(), [MUTEX_NO_STARVATION], hash_compaction=True,
                         workers=2))[0][3:] == want[0][3:]


class Level(NamedTuple):
    x: int


def test_fingerprints_tell_minus_one_from_minus_two():
    # CPython hashes -1 and -2 alike, so hash(state) would merge these two states.
    assert hash(Level(-1)) == hash(Level(-2))
    assert fingerprint(Level(-1)) != fingerprint(Level(-2))
    down = Action("down", (), ((),), lambda s, a: s.x > -4, lambda s, a: Level(s.x - 1),
                  frozenset({"x"}))
    m = SimpleModel("toy/down", [down], [Level(0)])
    assert len(explore(m, hash_compaction=True).states) == len(explore(m).states) == 5


# ------------------------------------------------------------------ representation
def test_equal_field_values_of_stored_states_are_one_object():
    exp = explore(mutex(atomic=False))
    by_value: dict[object, object] = {}
    for s in exp.states:
        assert by_value.setdefault(s.pc, s.pc) is s.pc


def test_fair_cycle_search_is_iterative_on_a_long_cycle():
    # one strongly connected component of 3,000 states: a recursive search would
    # exceed Python's recursion limit
    m = bounded_counter(2999, wrap=True, idle=True)
    unfair = Property("reach-2999", Kind.LIVENESS, "", predicate=lambda s: s.x == 2999)
    fair = dataclasses.replace(unfair, fairness=("inc",))
    v = check(m, [fair]).verdicts[0]
    assert v.result is Result.HOLDS and v.stats["region"] == 2999
    v = check(m, [unfair]).verdicts[0]
    assert v.result is Result.VIOLATED and labels(v.trace) == [("tick", ())]
    assert v.trace.states[-1] == Counter(0)


# ------------------------------------------------------------------ one preset
@pytest.fixture(scope="module")
def mainline():
    m = build(load_preset("mainline-6.13"))
    props = properties.for_model(m)
    return m, props, check(m, props)


def test_a_preset_on_two_workers_matches_one(mainline):
    m, props, one = mainline
    two = check(m, props, workers=2)
    assert one.states == two.states == load_preset("mainline-6.13").expect_states
    assert summary(one) == summary(two)


def test_a_preset_under_hash_compaction(mainline):
    m, props, exact = mainline
    hc = check(m, props, hash_compaction=True)
    assert (hc.states, hc.transitions) == (exact.states, exact.transitions)
    for e, h in zip(exact.verdicts, hc.verdicts, strict=True):
        if e.result is Result.VIOLATED and e.kind not in (Kind.REACHABLE, Kind.RECOVERABLE):
            assert (h.result, labels(h.trace)) == (e.result, labels(e.trace))
        elif e.result is Result.HOLDS and e.trace is None:
            assert h.result is Result.HOLDS_BOUNDED
        assert h.bound == e.bound + ", hash compaction"


def test_packed_states_widen_their_codes_past_256_and_65536_values():
    exp = explore(bounded_counter(300), [DEADLOCK])
    assert len(exp.states) == 301 and exp.states[300] == Counter(300)
    assert len(exp.trace_to(exp.hits["no-deadlock"].state)) == 300
    stored: list[bytes] = []
    packer = Packer(Counter, 1, lambda convert: stored.__setitem__(
        slice(None), map(convert, stored)))
    for x in range(70_000):
        stored.append(packer.pack(Counter(x)))
    assert packer.width == 2 and len(stored[-1]) == 4
    assert [packer.unpack(b).x for b in stored[::9999]] == list(range(0, 70_000, 9999))


@pytest.mark.parametrize("make, props", TOYS)
def test_packed_and_unpacked_storage_explore_alike(make, props):
    m = make()
    packed = explore(m, props, keep_graph=True)
    plain = explore(m, props, keep_graph=True, pack=False)
    assert list(packed.states) == list(plain.states)
    assert [type(s) for s in packed.states] == [type(s) for s in plain.states]
    assert list(packed.parent) == list(plain.parent) and packed.marks == plain.marks
    assert {k: (h.state, h.via) for k, h in packed.hits.items()} == {
        k: (h.state, h.via) for k, h in plain.hits.items()}
