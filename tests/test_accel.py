"""The C search loop (gmemcheck/checker/_core.c via accel.py) against the Python loop:
the very same exploration -- states in the same order, parents, labels, depths, hits,
graph columns, fired counts, caps -- on every built-in preset, under every cap, and
where the read-recording proxy cannot follow a predicate or a step (those are asked of
Python on every state). The Python loop stays the reference: each test runs both."""

from __future__ import annotations

import dataclasses

import pytest

from gmemcheck import properties
from gmemcheck.checker import Caps, Kind, Property, accel, explore
from gmemcheck.model import apply_overrides, build, builtin_presets, load_preset


def both(preset, props=None, sets=(), **kw):
    """The exploration of ``preset`` by the C loop and by the Python loop."""
    out = []
    for on in (True, False):
        m = build(apply_overrides(load_preset(preset), list(sets)))
        ps = properties.for_model(m) if props is None else props(m)
        old = accel.ENABLED
        accel.ENABLED = on
        try:
            assert accel.usable(m, False, 1, True) is on
            out.append(explore(m, ps, **kw))
        finally:
            accel.ENABLED = old
    return out


def assert_same(c, p):
    assert len(c.states) == len(p.states)
    assert list(c.states) == list(p.states)
    for col in ("parent", "via", "depth"):
        assert list(getattr(c, col)) == list(getattr(p, col)), col
    assert c.hits == p.hits and list(c.hits) == list(p.hits)
    assert (c.fired, c.terminal, c.initial, c.marks) == (p.fired, p.terminal, p.initial, p.marks)
    assert (c.complete, c.cap, c.expanded, c.transitions) == (
        p.complete, p.cap, p.expanded, p.transitions)
    assert (c.csr is None) == (p.csr is None)
    if c.csr is not None:
        assert [list(x) for x in c.csr] == [list(x) for x in p.csr]


def test_the_c_loop_is_built():
    # pip install compiles it (setup.py); on this project's machines there is a compiler,
    # so a missing extension is a broken build, not a fallback to accept silently
    assert accel._core is not None, "gmemcheck/checker/_core.c was not built: pip install -e ."
    assert accel.available()


@pytest.mark.parametrize("preset", builtin_presets())
def test_every_preset_explores_alike_in_c_and_in_python(preset):
    c, p = both(preset, keep_graph=True)
    assert c.complete and len(c.states) > 1000
    assert_same(c, p)


def test_stopping_when_resolved_and_the_state_cap_alike():
    # no graph: the search stops once every property is resolved
    c, p = both("mainline-6.13", props=lambda m: [p for p in whole_state(m)
                                                   if p.kind is Kind.REACHABLE])
    assert_same(c, p)
    assert not c.complete and set(c.hits) == {"launched"} and c.expanded < 11_917
    c, p = both("rfc-thp", caps=Caps(max_states=5000), keep_graph=True)
    assert_same(c, p)
    assert c.cap == "states<=5000" and len(c.states) == 5000


def test_the_depth_cap_alike():
    c, p = both("rfc-thp", caps=Caps(max_depth=4), keep_graph=True)
    assert_same(c, p)
    assert c.cap == "depth<=4" and max(c.depth) == 4


def test_the_time_cap_stops_the_c_loop():
    m = build(load_preset("hugetlb-rfc-v2"))
    e = explore(m, properties.for_model(m), caps=Caps(max_seconds=0.05), keep_graph=True)
    assert e.cap == "time<=0.05s" and not e.complete
    assert 0 < e.expanded < len(e.states) < 117_085


def test_progress_reports_come_from_the_c_loop():
    m = build(load_preset("rfc-thp"))
    seen = []
    explore(m, properties.for_model(m), progress=seen.append, progress_every=0.0)
    assert seen and seen[-1]["states"] > seen[0]["states"]
    assert {"states", "queue", "rate", "depth", "seconds"} <= set(seen[0])


def whole_state(m):
    """Predicates the recording proxy cannot follow (they use the state whole), a step
    predicate reading both ends, and a reachability witness."""
    def no_fault(s):
        return not tuple(s)[list(type(s)._fields).index("fault")]

    return [
        Property("whole-no-fault", Kind.SAFETY, "", predicate=no_fault),
        Property("order-kept", Kind.SAFETY, "", step=lambda a, lbl, b: len(a) == len(b)
                 and (a.order == b.order or lbl[0] != "guest_write")),
        Property("launched", Kind.REACHABLE, "", predicate=lambda s: bool(s.launched)),
        Property("deadlock", Kind.DEADLOCK, ""),
    ]


def test_predicates_the_proxy_cannot_follow_are_asked_every_time():
    c, p = both("pb-bitmap", props=whole_state, keep_graph=True)
    assert_same(c, p)
    # pb-bitmap reaches a fault (its known violations); the witnesses are pinned
    assert {n: h.state for n, h in c.hits.items()} == {"launched": 7, "whole-no-fault": 4326}


def test_a_step_the_proxy_cannot_follow_is_run_in_python():
    def unproxied(m):
        # an action whose apply is not a memoized body: the C loop asks Python for its
        # guard and successor on every state
        a = m.actions[0]
        inner = a.apply
        m.actions[0] = dataclasses.replace(a, apply=lambda s, args: inner(s, args))
        return properties.for_model(m)

    c, p = both("rfc-thp-tdx", props=unproxied, keep_graph=True)
    assert_same(c, p)


def test_an_error_in_a_predicate_propagates_from_the_c_loop():
    def boom(m):
        def pred(s):
            if s.launched:
                raise RuntimeError("predicate failed")
            return True
        return [Property("boom", Kind.SAFETY, "", predicate=pred)]

    m = build(load_preset("mainline-6.13"))
    with pytest.raises(RuntimeError, match="predicate failed"):
        explore(m, boom(m))


def test_a_plugin_design_stays_in_python():
    m = build(load_preset("rfc-thp"))
    assert m.accel_ok
    m.accel_ok = False
    assert not accel.usable(m, False, 1, True)
    e = explore(m, [], caps=Caps(max_states=10))
    assert type(e.states).__name__ == "PackedStates"


@pytest.mark.parametrize("cap", [0, 200])
def test_the_c_memo_cap_bounds_entries_and_keeps_the_search_exact(monkeypatch, cap):
    # past the cap every answer is asked of Python again: the same search, slower
    monkeypatch.setattr(accel, "MEMO_CAP", cap)
    m = build(load_preset("mainline-6.13"))
    e = explore(m, properties.for_model(m), keep_graph=True)
    assert e.loop == "c" and e.memo_entries == cap
    monkeypatch.setattr(accel, "ENABLED", False)
    pm = build(load_preset("mainline-6.13"))
    p = explore(pm, properties.for_model(pm), keep_graph=True)
    assert p.loop == "python" and len(e.states) == 11_917
    assert_same(e, p)


def test_a_predicate_from_outside_the_registry_is_asked_on_every_state():
    # it may read what the proxy cannot see (here: its own call count), so no answer of
    # it is kept: one call per state, as in the Python loop
    calls = []

    def counting(s):
        calls.append(1)
        return True

    m = build(load_preset("tdx-huge"))
    e = explore(m, [Property("counting", Kind.SAFETY, "", predicate=counting)],
                keep_graph=True)
    assert e.loop == "c" and len(calls) == len(e.states) == 9_783


def test_a_property_with_both_a_state_and_a_step_predicate_stays_in_python():
    both_kinds = Property("both", Kind.SAFETY, "", predicate=lambda s: True,
                          step=lambda a, lbl, b: True)
    m = build(load_preset("tdx-huge"))
    assert not accel.usable(m, False, 1, True, [both_kinds])
    assert explore(m, [both_kinds]).loop == "python"


@pytest.mark.parametrize("sweeps", [1000, 1, 0])
@pytest.mark.parametrize("preset", ["hugetlb", "rfc-thp", "hugetlb-rfc-v2"])
def test_the_recoverable_closure_in_c_is_the_python_one(monkeypatch, preset, sweeps):
    # sweeps until they settle; one sweep then the reverse search; the reverse
    # search alone
    from gmemcheck.checker import liveness
    from gmemcheck.checker.run import verdicts_from_exploration

    m = build(load_preset(preset))
    props = [p for p in properties.for_model(m) if p.kind is Kind.RECOVERABLE]
    assert props
    e = explore(m, props, keep_graph=True)
    monkeypatch.setattr(liveness, "REACH_SWEEPS", sweeps)
    c = verdicts_from_exploration(e, props)
    monkeypatch.setattr(liveness, "_core", None)
    py = verdicts_from_exploration(e, props)
    got = [(v.result, v.bound, v.trace and [(s.action, s.args) for s in v.trace.steps])
           for v in c]
    assert got == [(v.result, v.bound, v.trace and [(s.action, s.args) for s in v.trace.steps])
                   for v in py]
    assert got[0][0].value == load_preset(preset).expect_verdicts["huge-backing-recoverable"]


@pytest.mark.parametrize("wide_at", [1, 3, 12])
def test_codes_widened_to_four_bytes_mid_search_explore_alike(monkeypatch, wide_at):
    # the C loop stores two bytes a code until a field has 65,536 values; here the
    # switch comes with the first new value of a field (1), the third (3) or the 12th of
    # the one field that has 16 (12)
    monkeypatch.setattr(accel, "WIDE_AT", wide_at)
    c, p = both("hugetlb", keep_graph=True)
    assert c.states._codes.format == "I"
    assert_same(c, p)
