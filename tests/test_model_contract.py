"""The Action contract of the guest_memfd model, checked with hypothesis on random walks
over every built-in preset: ``apply`` changes only fields in ``modifies``, is
deterministic, and keeps the state well-formed (folios aligned, per-folio flags the same
on every page of a folio). Every action also cites its kernel function."""

from __future__ import annotations

import re

from helpers import model
from hypothesis import given, settings
from hypothesis import strategies as st

from gmemcheck.checker.core import changed_fields
from gmemcheck.model import builtin_presets
from gmemcheck.model.state import folio_heads

PRESETS = builtin_presets()
MODELS = {p: model(p) for p in PRESETS}


def well_formed(m, s) -> None:
    n = m.k.P
    i = 0
    while i < n:
        o = s.order[i]
        if o < 0:
            assert not s.uptodate[i] and not s.dirty[i] and not s.private[i]
            i += 1
            continue
        size = 1 << o
        assert i % size == 0, f"folio at {i} of order {o} is not aligned"
        for j in range(i, i + size):
            assert s.order[j] == o
            assert s.uptodate[j] == s.uptodate[i] and s.dirty[j] == s.dirty[i]
            assert s.held[j] < 0, "a frame both in the page cache and held"
        i += size
    for h, o in folio_heads(s.order):
        assert h + (1 << o) <= n
    if s.vcpu:
        assert s.order[s.vcpu[0]] >= 0 or s.held[s.vcpu[0]] >= 0
    if s.spec >= 0:
        assert s.order[s.spec] >= 0 or s.held[s.spec] >= 0


@settings(max_examples=60, deadline=None)
@given(preset=st.sampled_from(PRESETS), data=st.data())
def test_apply_respects_modifies_and_is_deterministic(preset, data):
    m = MODELS[preset]
    s = next(iter(m.init_states()))
    for _ in range(data.draw(st.integers(1, 40), label="steps")):
        if m.terminal(s):
            break
        enabled = [(a, args) for a in m.actions for args in a.domain if a.guard(s, args)]
        if not enabled:
            break
        a, args = data.draw(st.sampled_from(enabled), label="step")
        t = a.apply(s, args)
        assert a.apply(s, args) == t, f"{a.label(args)} is not deterministic"
        extra = changed_fields(s, t) - a.modifies
        assert not extra, f"{a.label(args)} changed {extra} outside its modifies"
        out = a.explain(s, args)
        assert out is not None and all(isinstance(e, str) for e in out.events)
        well_formed(m, t)
        s = t


CITE = re.compile(r"[a-z0-9_]+\.[ch]:[a-z_0-9]+")
SECTION = re.compile(r"DOMAIN\.md|§")


def test_every_action_cites_its_kernel_function_and_domain_section():
    for m in [*MODELS.values(), model("rfc-thp-tdx")]:
        for a in m.actions:
            assert CITE.search(a.doc), f"{a.name}: no file.c:function in {a.doc[:80]!r}"
            assert SECTION.search(a.doc), f"{a.name}: no DOMAIN.md section"


def test_every_named_step_cites_its_kernel_function_and_domain_section():
    from gmemcheck.model.registry import BASE_STEPS, STEP_DOCS

    for name in BASE_STEPS:
        assert CITE.search(STEP_DOCS[name]), f"step {name}: {STEP_DOCS[name]}"
        assert SECTION.search(STEP_DOCS[name]), f"step {name}: {STEP_DOCS[name]}"


def test_work_done_writes_fields_in_place_like_replace():
    """Work.done builds the successor from the written fields by position: the same
    state _replace gives, the state itself when nothing was written, and a clear error
    for a field the state does not have."""
    from gmemcheck.model.work import Work

    s = next(iter(MODELS["rfc-thp"].init_states()))
    assert Work(s).done() is s
    w = Work(s)
    w.arr("order")[0] = 1
    w.put("spec", 1)
    t = w.done()
    assert type(t) is type(s)
    assert t == s._replace(order=(1,) + s.order[1:], spec=1)
    w = Work(s)
    w.put("no_such_field", 1)
    try:
        w.done()
    except ValueError as e:
        assert "no_such_field" in str(e)
    else:
        raise AssertionError("a write to an unknown field was accepted")


def test_memo_cap_bounds_entries_and_keeps_the_search_exact(monkeypatch):
    """With the memo capped at 200 entries the search stops memoizing, not exploring:
    the pinned count is reached and the memo holds no more than the cap. (The Python
    loop's memo; the C loop's has its own cap, tests/test_accel.py.)"""
    from gmemcheck.checker import accel
    from gmemcheck.checker.explicit import explore

    monkeypatch.setattr(accel, "ENABLED", False)
    m = model("mainline-6.13")
    m.k.memo.cap = 200
    assert len(explore(m, []).states) == 11917
    assert m.k.memo.entries == 200


def test_memo_falls_back_when_a_body_uses_the_whole_state():
    """A body that uses the state as a whole (here iterating it) cannot be memoized on
    the fields it reads: its action runs unmemoized, with the plain successors."""
    from gmemcheck.model.actions import make

    m = model("mainline-6.13")
    s = next(iter(m.init_states()))

    def body(k, w):
        w.put("spec", len(tuple(w.s)) - len(s) - 1 + int(w.get("launched")))

    a = make(m.k, "t", (), [()], lambda s, a: True, body, frozenset({"spec"}), "")
    assert a.apply(s, ()) == s._replace(spec=-1)
    t = s._replace(launched=True)
    assert a.apply(t, ()) == t._replace(spec=0)


def test_memo_falls_back_when_a_body_swallows_the_proxy_refusal():
    """A body that uses the whole state inside a broad ``except`` (so the proxy's
    MemoUnsafe never reaches the memo) still runs unmemoized: its fallback answer on the
    proxy is not recorded and replayed on other states."""
    from gmemcheck.model.actions import make

    m = model("mainline-6.13")
    s = next(iter(m.init_states()))

    def body(k, w):
        try:
            launched = w.s._asdict()["launched"]
        except Exception:
            launched = None
        w.put("spec", {None: -1, False: 0, True: 1}[launched])

    a = make(m.k, "t", (), [()], lambda s, a: True, body, frozenset({"spec"}), "")
    assert a.apply(s, ()) == s._replace(spec=0)
    t = s._replace(launched=True)
    assert a.apply(t, ()) == t._replace(spec=1)


def test_guard_memo_answers_as_the_guards_and_gives_up_when_it_misses(monkeypatch):
    """enabled_labels gives the labels whose guards hold, state by state; a guard memo
    that misses more than GUARD_MISS_PCT percent of its lookups turns itself off (the
    search is the same either way). (The Python loop's guard memo.)"""
    import sys

    from gmemcheck.checker import accel
    from gmemcheck.checker.explicit import explore, label_table

    monkeypatch.setattr(accel, "ENABLED", False)

    build_mod = sys.modules["gmemcheck.model.build"]  # (the package exports build())

    m = model("hugetlb")
    states = list(explore(m, []).states)
    labels = label_table(m)
    for s in states[:3000]:
        want = tuple(lid for lid, (ai, args) in enumerate(labels)
                     if m.actions[ai].guard(s, args))
        assert m.enabled_labels(s) == want
    assert m._guard_memo and m._guard_misses > 0
    monkeypatch.setattr(build_mod, "GUARD_TRIAL", 100)
    monkeypatch.setattr(build_mod, "GUARD_MISS_PCT", 0)
    m = model("mainline-6.13")
    assert len(explore(m, []).states) == 11917
    assert not m._guard_memo and m.enabled_labels(states[0]) is None
