"""The explicit engine, liveness, simulation and replay on toy models with known answers."""

from __future__ import annotations

import dataclasses

import pytest
from toy_models import (
    DIE_HARD_NOT_4,
    DIE_HARD_TYPE_OK,
    MUTEX_EXCLUSION,
    MUTEX_NO_STARVATION,
    Counter,
    Jugs,
    Mutex,
    bounded_counter,
    counters_grid,
    die_hard,
    mutex,
)

from gmemcheck.checker import Caps, EngineBug, Kind, Property, ReplayError, Result, check, explore
from gmemcheck.checker.core import Step, Trace
from gmemcheck.checker.replay import replay
from gmemcheck.checker.run import replay_all

BACK_TO_0 = Property("back-to-0", Kind.RECOVERABLE, "", predicate=lambda s: s.x == 0)

DEADLOCK = Property("no-deadlock", Kind.DEADLOCK, "some step is always enabled")


def labels(trace: Trace) -> list[tuple[str, tuple]]:
    return [(s.action, s.args) for s in trace.steps]


# ------------------------------------------------------------------ state counts
@pytest.mark.parametrize("model, states, transitions", [
    (die_hard(), 16, 96),
    (mutex(), 8, 14),
    (mutex(atomic=False), 23, 44),
    (bounded_counter(5), 6, 5),
    (counters_grid(3, 3), 64, 396),
])
def test_distinct_state_counts_are_pinned(model, states, transitions):
    exp = explore(model)
    assert exp.complete
    assert (len(exp.states), exp.transitions) == (states, transitions)


def test_state_ids_follow_bfs_depth_order():
    exp = explore(counters_grid(2, 4))
    assert list(exp.depth) == sorted(exp.depth)
    assert exp.depth[-1] == 8


# ------------------------------------------------------------------ safety
def test_die_hard_shortest_counterexample_is_exact():
    run = check(die_hard(), [DIE_HARD_NOT_4, DIE_HARD_TYPE_OK])
    bad, ok = run.verdicts
    assert bad.result is Result.VIOLATED and bad.bound == "shortest: 6 steps"
    assert labels(bad.trace) == [("fill_big", ()), ("big_to_small", ()), ("empty_small", ()),
                                 ("big_to_small", ()), ("fill_big", ()), ("big_to_small", ())]
    assert [tuple(s) for s in bad.trace.states] == [
        (0, 0), (0, 5), (3, 2), (0, 2), (2, 0), (2, 5), (3, 4)]
    assert ok.result is Result.HOLDS and ok.bound == "exhaustive"
    assert run.states == 16 and run.complete


def test_reachable_property_gives_a_witness_or_fails_when_unreachable():
    four = Property("big-4", Kind.REACHABLE, "", predicate=lambda s: s.big == 4)
    six = Property("big-6", Kind.REACHABLE, "", predicate=lambda s: s.big == 6)
    run = check(die_hard(), [four, six])
    assert run.verdicts[0].result is Result.HOLDS and len(run.verdicts[0].trace) == 6
    assert run.verdicts[1].result is Result.VIOLATED and run.verdicts[1].trace is None


def test_step_property_violation_is_a_shortest_transition():
    no_pour_into_full = Property(
        "no-pour-when-big-full", Kind.SAFETY, "", step=lambda pre, lbl, post:
        not (lbl[0] == "small_to_big" and pre.big == 5 and pre.small > 0))
    v = check(die_hard(), [no_pour_into_full]).verdicts[0]
    assert v.result is Result.VIOLATED
    assert labels(v.trace) == [("fill_small", ()), ("fill_big", ()), ("small_to_big", ())]


def test_racy_mutex_breaks_exclusion_in_six_steps():
    v = check(mutex(atomic=False), [MUTEX_EXCLUSION]).verdicts[0]
    assert v.result is Result.VIOLATED
    assert labels(v.trace) == [("try", (0,)), ("try", (1,)), ("check", (0,)), ("check", (1,)),
                               ("take", (0,)), ("take", (1,))]


def test_initial_state_violation_is_a_zero_step_trace():
    v = check(die_hard(), [Property("never", Kind.SAFETY, "", predicate=lambda s: s.big != 0)]
              ).verdicts[0]
    assert v.result is Result.VIOLATED and len(v.trace) == 0


# ------------------------------------------------------------------ caps
def test_state_cap_gives_bounded_verdict_naming_the_cap():
    v = check(bounded_counter(10), [DIE_HARD_LIKE], caps=Caps(max_states=4)).verdicts[0]
    assert (v.result, v.bound) == (Result.HOLDS_BOUNDED, "states<=4")


def test_depth_cap_gives_bounded_verdict_naming_the_cap():
    run = check(bounded_counter(10), [DIE_HARD_LIKE], caps=Caps(max_depth=3))
    assert (run.verdicts[0].result, run.verdicts[0].bound) == (Result.HOLDS_BOUNDED, "depth<=3")
    assert run.states == 4 and not run.complete


def test_time_cap_gives_bounded_verdict_naming_the_cap():
    anything = Property("true", Kind.SAFETY, "", predicate=lambda s: True)
    run = check(counters_grid(6, 9), [anything], caps=Caps(max_seconds=0.2))
    assert (run.verdicts[0].result, run.verdicts[0].bound) == (Result.HOLDS_BOUNDED, "time<=0.2s")


def test_a_time_cap_not_reached_leaves_the_graph_properties_judged():
    # a safety violation reported before a recoverable property (the counter never
    # returns to 0: violated), with a time cap far
    # off: the recoverable property is judged, not "time cap reached" (the trace's start
    # state id once overwrote the clock's start, so any violation made them inconclusive)
    x3 = Property("x<3", Kind.SAFETY, "", predicate=lambda s: s.x < 3)
    run = check(bounded_counter(5), [x3, BACK_TO_0], caps=Caps(max_seconds=600))
    assert [(v.result, v.bound) for v in run.verdicts] == [
        (Result.VIOLATED, "shortest: 3 steps"), (Result.VIOLATED, "exhaustive")]


def test_a_violation_within_the_cap_is_still_reported():
    v = check(bounded_counter(10), [Property("x<3", Kind.SAFETY, "", predicate=lambda s: s.x < 3)],
              caps=Caps(max_states=5)).verdicts[0]
    assert v.result is Result.VIOLATED and len(v.trace) == 3


def test_caps_must_be_positive():
    with pytest.raises(ValueError):
        Caps(max_states=0)


DIE_HARD_LIKE = Property("x>=0", Kind.SAFETY, "", predicate=lambda s: s.x >= 0)


# ------------------------------------------------------------------ deadlock
def test_deadlock_found_with_shortest_trace():
    v = check(bounded_counter(5), [DEADLOCK]).verdicts[0]
    assert v.result is Result.VIOLATED
    assert labels(v.trace) == [("inc", ())] * 5
    assert v.trace.states[-1] == Counter(5)


def test_no_deadlock_when_a_step_is_always_enabled():
    assert check(die_hard(), [DEADLOCK]).verdicts[0].result is Result.HOLDS


def test_terminal_states_are_not_deadlocks():
    m = bounded_counter(5)
    m.is_terminal = lambda s: s.x == 5
    assert check(m, [DEADLOCK]).verdicts[0].result is Result.HOLDS


def test_environment_steps_do_not_count_as_progress():
    m = bounded_counter(2, idle=True)
    tick = m.actions[-1]
    m.actions = [m.actions[0], dataclasses.replace(tick, environment=True)]
    v = check(m, [DEADLOCK]).verdicts[0]
    assert v.result is Result.VIOLATED and len(v.trace) == 2


# ------------------------------------------------------------------ liveness
def test_mutex_starvation_is_a_lasso_under_weak_fairness():
    run = check(mutex(), [MUTEX_EXCLUSION, MUTEX_NO_STARVATION])
    excl, live = run.verdicts
    assert excl.result is Result.HOLDS
    assert live.result is Result.VIOLATED
    t = live.trace
    assert t.loop == 1 and not t.stutter
    assert labels(t) == [("try", (0,)), ("try", (1,)), ("acquire", (1,)), ("release", (1,))]
    assert t.states[-1] == t.states[t.loop] == Mutex(("trying", "idle"), -1)


def test_eventually_needs_fairness_to_hold():
    m = bounded_counter(3, wrap=True, idle=True)
    unfair = Property("reach-3", Kind.LIVENESS, "", predicate=lambda s: s.x == 3)
    fair = dataclasses.replace(unfair, fairness=("inc",))
    v_unfair, = check(m, [unfair]).verdicts
    assert v_unfair.result is Result.VIOLATED
    assert labels(v_unfair.trace) == [("tick", ())] and v_unfair.trace.loop == 0
    assert check(m, [fair]).verdicts[0].result is Result.HOLDS


def test_leads_to_lasso_has_shortest_stem():
    m = bounded_counter(3, wrap=True, idle=True)
    p = Property("3-leads-to-1", Kind.LIVENESS, "", trigger=lambda s: s.x == 3,
                 predicate=lambda s: s.x == 1, fairness=("inc",))
    v = check(m, [p]).verdicts[0]
    assert v.result is Result.VIOLATED
    assert labels(v.trace) == [("inc", ())] * 3 + [("tick", ())]
    assert v.trace.loop == 3
    fair_both = dataclasses.replace(p, fairness=("inc", "reset"))
    assert check(m, [fair_both]).verdicts[0].result is Result.HOLDS


def test_deadlock_breaks_an_eventuality_as_a_stutter():
    v = check(bounded_counter(3), [Property("x=4", Kind.LIVENESS, "", predicate=lambda s: s.x == 4)]
              ).verdicts[0]
    assert v.result is Result.VIOLATED and v.trace.stutter and v.trace.loop == 3


def test_terminal_states_carry_no_liveness_obligation():
    m = bounded_counter(3)
    m.is_terminal = lambda s: s.x == 3
    v = check(m, [Property("x=4", Kind.LIVENESS, "", predicate=lambda s: s.x == 4)]).verdicts[0]
    assert v.result is Result.HOLDS


def test_unknown_fairness_action_is_an_error():
    with pytest.raises(ValueError, match="unknown actions: nope"):
        check(die_hard(), [Property("l", Kind.LIVENESS, "", predicate=lambda s: True,
                                    fairness=("nope",))])


# ------------------------------------------------------------------ recoverable
def test_recoverable_violation_is_the_first_stuck_state():
    p = Property("back-to-0", Kind.RECOVERABLE, "", predicate=lambda s: s.x == 0)
    v = check(bounded_counter(3), [p]).verdicts[0]
    assert v.result is Result.VIOLATED and labels(v.trace) == [("inc", ())]
    assert check(bounded_counter(3, wrap=True), [p]).verdicts[0].result is Result.HOLDS


# ------------------------------------------------------------------ graph and coverage
def test_graph_is_built_only_when_asked():
    assert explore(die_hard()).edges is None
    g = explore(die_hard(), keep_graph=True).graph()
    assert g.number_of_nodes() == 16
    assert g.nodes[0]["init"] is True
    assert g.edges[0, 1]["label"] == ("fill_small", ())
    assert sum(len(d["labels"]) for _, _, d in g.edges(data=True)) == 96


def test_coverage_counts_every_action_and_names_the_dead_ones():
    m = bounded_counter(3, idle=True)
    run = check(m, [DIE_HARD_LIKE])
    assert run.coverage == {"inc": 3, "tick": 4}
    never = Property("x>=0", Kind.SAFETY, "", predicate=lambda s: True)
    m2 = bounded_counter(0, wrap=False)
    assert check(m2, [never]).never_fired == ["inc"]


# ------------------------------------------------------------------ simulation
def test_simulation_is_reproducible_from_its_seed():
    a = check(die_hard(), [DIE_HARD_NOT_4], engine="simulate", walks=200, walk_depth=30, seed=7)
    b = check(die_hard(), [DIE_HARD_NOT_4], engine="simulate", walks=200, walk_depth=30, seed=7)
    assert a.verdicts[0].result is Result.VIOLATED
    assert labels(a.verdicts[0].trace) == labels(b.verdicts[0].trace)
    assert a.coverage == b.coverage


def test_simulation_never_claims_more_than_bounded():
    run = check(die_hard(), [DIE_HARD_TYPE_OK, MUTEX_LIKE_LIVE], engine="simulate", walks=5,
                walk_depth=5, seed=1)
    safety, live = run.verdicts
    assert safety.result is Result.HOLDS_BOUNDED
    assert safety.bound == "simulate walks=5 depth=5 seed=1"
    assert live.result is Result.INCONCLUSIVE


MUTEX_LIKE_LIVE = Property("l", Kind.LIVENESS, "", predicate=lambda s: s.big == 4)


# ------------------------------------------------------------------ replay
def test_replay_accepts_the_engine_trace_and_rejects_tampering():
    m = die_hard()
    v = check(m, [DIE_HARD_NOT_4]).verdicts[0]
    replay(m, v.trace, DIE_HARD_NOT_4)
    steps = list(v.trace.steps)
    steps[2] = Step("empty_big", (), Jugs(0, 2))
    with pytest.raises(ReplayError, match=r"step 3: empty_big\(\) leads to a different state"):
        replay(m, Trace(v.trace.init, tuple(steps)), DIE_HARD_NOT_4)
    with pytest.raises(ReplayError, match="step 1: unknown action 'pour'"):
        replay(m, Trace(Jugs(0, 0), (Step("pour", (), Jugs(0, 0)),)))
    with pytest.raises(ReplayError, match="state 0 is not an initial state"):
        replay(m, Trace(Jugs(1, 1), ()))
    short = Trace(v.trace.init, v.trace.steps[:3])
    with pytest.raises(ReplayError, match="does not violate big-is-not-4"):
        replay(m, short, DIE_HARD_NOT_4)


def test_replay_rejects_a_disabled_step():
    m = mutex()
    t = Trace(Mutex(("idle", "idle"), -1), (Step("release", (0,), Mutex(("idle", "idle"), -1)),))
    with pytest.raises(ReplayError, match=r"step 1: release\(p=0\) is not enabled in state 0"):
        replay(m, t)


def test_replay_rejects_an_unfair_lasso():
    m = bounded_counter(3, wrap=True, idle=True)
    p = Property("reach-3", Kind.LIVENESS, "", predicate=lambda s: s.x == 3, fairness=("inc",))
    t = Trace(Counter(0), (Step("tick", (), Counter(0)),), loop=0)
    with pytest.raises(ReplayError, match=r"unfair to inc\(\)"):
        replay(m, t, p)


def test_a_trace_that_does_not_replay_is_an_engine_bug():
    m = die_hard()
    v = check(m, [DIE_HARD_NOT_4]).verdicts[0]
    v.trace = Trace(v.trace.init, v.trace.steps[:-1])
    with pytest.raises(EngineBug, match="does not replay"):
        replay_all(m, [DIE_HARD_NOT_4], [v])
