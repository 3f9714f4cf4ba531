"""The Z3 side agrees with the explicit side: successors, properties, shortest
violations; k-induction proves what it should and reports what it cannot; a broken
encoding is caught."""

from __future__ import annotations

import functools
import json
import random
import subprocess
import sys
from typing import Any

import pytest
import z3
from helpers import model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmemcheck import properties
from gmemcheck.checker.core import EngineBug, Kind, Result
from gmemcheck.checker.explicit import Caps, explore, successors
from gmemcheck.model.config import builtin_presets
from gmemcheck.symbolic import actions as sa
from gmemcheck.symbolic.bmc import bmc
from gmemcheck.symbolic.kind import kinduction
from gmemcheck.symbolic.model import NoEncoding, SymModel, _bindings
from gmemcheck.symbolic.props import SYM, Label
from gmemcheck.symbolic.space import num

PRESETS = builtin_presets()
SIZES = [(), ("pages_per_huge=4", "regions=2"), ("pages_per_huge=8",)]


def prop(m: Any, name: str) -> Any:
    return properties.select(m, [name])[0]


def explicit_succ(m: Any, s: Any) -> set[tuple[str, tuple[Any, ...], Any]]:
    return set() if m.terminal(s) else set(successors(m, s))


def walk(m: Any, choices: list[int]) -> list[Any]:
    s = next(iter(m.init_states()))
    out = [s]
    for c in choices:
        nxt = sorted(explicit_succ(m, s), key=lambda x: (x[0], x[1]))
        if not nxt:
            break
        s = nxt[c % len(nxt)][2]
        out.append(s)
    return out


# --------------------------------------------------------------------- successors
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(preset=st.sampled_from(PRESETS), size=st.sampled_from(SIZES),
       choices=st.lists(st.integers(0, 10_000), min_size=0, max_size=14), bv=st.booleans())
def test_explicit_and_z3_successors_agree(preset: str, size: tuple[str, ...],
                                          choices: list[int], bv: bool) -> None:
    """Integers as Int or as bit-vectors (the proofs at large sizes use the latter)."""
    m = model(preset, *size)
    sm = SymModel(m, bv=bv)
    s = walk(m, choices)[-1]
    sym = sm.successors(s) if not m.terminal(s) else set()
    assert sym == explicit_succ(m, s)


def test_successor_sets_are_not_trivial() -> None:
    """The agreement above compares non-empty sets on most states."""
    m = model("rfc-thp")
    sm = SymModel(m)
    # the first 30 states in BFS order: those a search capped at 30 states stores
    states = explore(m, caps=Caps(max_states=30)).states[:30]
    assert len(states) == 30
    sizes = [len(sm.successors(s)) for s in states]
    assert sizes == [len(explicit_succ(m, s)) for s in states]
    assert sum(sizes) >= 150 and min(sizes) >= 1


def broken(sm: SymModel, name: str, field: str) -> None:
    """Break one action of ``sm``: ``field`` keeps its pre-state value."""
    a = next(x for x in sm.actions if x.name == name)
    enc = a.encode

    def bad(s: Any, args: list[Any]) -> Any:
        guard, post = enc(s, args)
        post = post.copy()
        post.f[field] = s.f[field]
        return guard, post

    i = sm.actions.index(a)
    sm.actions[i] = sa.SymAction(a.name, a.params, a.sorts, a.domain, bad, a.modifies,
                                 a.environment)
    sm._cache.clear()


def test_broken_encoding_is_caught_by_the_agreement_check() -> None:
    # sev_gmem_invalidate forgotten: truncate no longer makes freed pages shared
    m = model("mainline-6.13")
    sm = SymModel(m)
    broken(sm, "truncate_inode_pages_range", "rmp")
    exp = explore(m)
    punching = [s for s in exp.states if s.vmm and s.vmm[0] == "punch"
                and any(x != 0 for x in s.rmp)]
    assert any(sm.successors(s) != explicit_succ(m, s) for s in punching[:40])
    # and the unbroken encoding agrees on the same states
    good = SymModel(m)
    assert all(good.successors(s) == explicit_succ(m, s) for s in punching[:10])


def test_broken_encoding_trace_fails_replay_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    m = model("mainline-6.13")
    orig = SymModel.__init__

    def init(self: SymModel, *a: Any, **kw: Any) -> None:
        orig(self, *a, **kw)
        broken(self, "truncate_inode_pages_range", "rmp")

    monkeypatch.setattr(SymModel, "__init__", init)
    with pytest.raises(EngineBug, match="does not replay"):
        bmc(m, [prop(m, "freed-pages-are-shared")], 4)


# --------------------------------------------------------------------- properties
def ground(e: Any, pairs: list[tuple[Any, Any]]) -> bool:
    x = z3.simplify(z3.substitute(e, *pairs))
    assert z3.is_true(x) or z3.is_false(x), x
    return z3.is_true(x)


def ground_all(es: list[Any], pairs: list[tuple[Any, Any]]) -> list[bool]:
    """``[ground(e, pairs) for e in es]``, the pairs checked and converted once (what
    z3.substitute does on each call) instead of once per formula."""
    assert all(a.sort().eq(b.sort()) for a, b in pairs)
    frm, to = (z3.Ast * len(pairs))(), (z3.Ast * len(pairs))()
    for i, (a, b) in enumerate(pairs):
        frm[i], to[i] = a.as_ast(), b.as_ast()
    out = []
    for e in es:
        x = z3.simplify(z3.z3._to_expr_ref(
            z3.Z3_substitute(e.ctx.ref(), e.as_ast(), len(pairs), frm, to), e.ctx))
        assert z3.is_true(x) or z3.is_false(x), x
        out.append(z3.is_true(x))
    return out


@functools.cache
def _state_sample(preset: str) -> list[Any]:
    """The 60 reachable states of ``preset`` the property agreement test samples (seed
    5), explored once for both encodings."""
    return random.Random(5).sample(explore(model(preset)).states, 60)


@pytest.mark.parametrize(("preset", "bv"), [
    ("rfc-thp", False), ("hugetlb", False), ("mainline-latest-rmp-fail", False),
    ("thp-folio-private", False), ("rfc-thp-tdx", False), ("rfc-thp", True),
    ("hugetlb", True)])
def test_symbolic_properties_agree_with_python(preset: str, bv: bool) -> None:
    m = model(preset)
    sm = SymModel(m, bv=bv)
    props = [p for p in properties.for_model(m) if p.name in SYM
             and p.kind in (Kind.SAFETY, Kind.REACHABLE)]
    pre_s, post_s = sm.fresh("a"), sm.fresh("b")
    names = [a.name for a in sm.actions]
    ind = [z3.Bool(f"ind.{n}") for n in names]
    args = [a.arg_vars("lab", sm.space) for a in sm.actions]
    lab = Label(names, ind, args)
    seen = {p.name: set() for p in props}
    # each property's formula over (pre_s, label, post_s), built once
    forms = [SYM[p.name].state(sm, post_s) if SYM[p.name].state is not None
             else SYM[p.name].step(sm, pre_s, post_s, lab) for p in props]
    for s in _state_sample(preset):
        for name, a_args, t in sorted(explicit_succ(m, s), key=lambda x: (x[0], x[1]))[:6]:
            pairs = _bindings(pre_s, s) + _bindings(post_s, t)
            j = names.index(name)
            pairs += [(b, z3.BoolVal(i == j)) for i, b in enumerate(ind)]
            for i, vs in enumerate(args):
                vals = a_args if i == j else [False if z3.is_bool(v) else 0 for v in vs]
                pairs += [(v, z3.BoolVal(x) if isinstance(x, bool) else num(x, v))
                          for v, x in zip(vs, vals, strict=True)]
            for p, got in zip(props, ground_all(forms, pairs), strict=True):
                if SYM[p.name].state is not None:
                    want = p.predicate(t)
                else:
                    want = p.step(s, (name, a_args), t)
                assert got == want, (p.name, s, name, a_args)
                seen[p.name].add(want)
    # both truth values were exercised for most properties
    assert sum(len(v) == 2 for v in seen.values()) >= 2


# --------------------------------------------------------------------- BMC vs BFS
BMC_MAX_DEPTH = 5   # the longer ones run in bench/symbolic.py


def _bfs_lengths(preset: str) -> dict[str, int]:
    """Shortest BFS violation lengths of the safety and deadlock properties, from the
    preset's pinned run (explored once per session, shared with test_presets.py)."""
    from helpers import pinned_run

    return {c.property: c.steps for c in pinned_run(preset).cells
            if c.kind in (Kind.SAFETY, Kind.DEADLOCK) and c.outcome == Result.VIOLATED
            and c.steps is not None}


@pytest.mark.parametrize("preset", PRESETS)
def test_bmc_finds_the_bfs_shortest_length(preset: str) -> None:
    lengths = {p: n for p, n in _bfs_lengths(preset).items() if n <= BMC_MAX_DEPTH}
    if not lengths:
        pytest.skip(f"{preset}: no violation within {BMC_MAX_DEPTH} steps")
    m = model(preset)
    props = properties.select(m, list(lengths))
    verdicts = bmc(m, props, max(lengths.values()))
    for v in verdicts:
        assert v.result is Result.VIOLATED, v
        assert v.trace is not None and v.trace.origin == "init"
        assert len(v.trace) == lengths[v.property], v.property


def test_bmc_bounded_and_witness_verdicts() -> None:
    m = model("rfc-thp")
    props = properties.select(m, ["freed-pages-are-shared", "reach-rmp-2m-entry",
                                  "reach-split-failed-clean"])
    v = {x.property: x for x in bmc(m, props, 4)}
    assert v["freed-pages-are-shared"].result is Result.HOLDS_BOUNDED
    assert v["freed-pages-are-shared"].bound == "depth<=4"
    assert v["reach-rmp-2m-entry"].result is Result.HOLDS
    assert v["reach-rmp-2m-entry"].bound == "witness: 2 steps"
    assert v["reach-split-failed-clean"].bound == "witness: 4 steps"


# --------------------------------------------------------------------- k-induction
@pytest.fixture
def mine_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mine each small model's lemmas once per session (helpers.mined_once)."""
    from helpers import mined_once

    from gmemcheck.symbolic import kind

    monkeypatch.setattr(kind, "mined_lemmas", mined_once(kind.mined_lemmas))


def test_kinduction_proves_every_holding_safety_property_of_mainline(mine_once: None) -> None:
    m = model("mainline-6.13")
    props = [p for p in properties.for_model(m) if p.kind in (Kind.SAFETY, Kind.DEADLOCK)]
    from gmemcheck.model import load_preset

    expect = load_preset("mainline-6.13").expect_verdicts
    for v in kinduction(m, props):
        if expect[v.property] == "holds":
            assert v.result is Result.HOLDS, v
            assert v.bound == "proved (k=1, pages_per_huge=2, regions=1)"
        else:
            # a real violation is never reported by induction, only a failed step
            assert v.result is Result.INCONCLUSIVE, v


def test_kinduction_cti_is_marked_arbitrary_and_names_action_and_property(
        mine_once: None) -> None:
    m = model("pb-bitmap")
    p = prop(m, "private-mapping-implies-assigned")
    (v,) = kinduction(m, [p])
    assert v.result is Result.INCONCLUSIVE
    assert v.trace is not None and v.trace.origin == "arbitrary"
    assert len(v.trace) == 1 and v.trace.steps[0].action == "kvm_tdp_mmu_map"
    assert "kvm_tdp_mmu_map" in v.reason and p.name in v.reason
    assert not p.predicate(v.trace.steps[-1].state)
    assert p.predicate(v.trace.init)


def test_kinduction_at_a_larger_size_reuses_small_lemmas(mine_once: None) -> None:
    m = model("mainline-6.13", "pages_per_huge=4")
    props = properties.select(m, ["freed-pages-are-shared", "mapping-implies-page-cache"])
    for v in kinduction(m, props):
        assert v.result is Result.HOLDS, v
        assert v.bound == "proved (k=1, pages_per_huge=4, regions=1)"


def test_kinduction_refines_with_small_size_lemmas_that_block_its_ctis(
        monkeypatch: pytest.MonkeyPatch, mine_once: None) -> None:
    """When the lemmas carried from the small size do not suffice at the large one, the
    reserve lemmas (inductive at the small size) that the counterexamples to induction
    violate are added and Houdini runs again. Carrying no lemma at all breaks a
    well-formedness lemma at 4 pages; two refinements recover every proof."""
    from gmemcheck.symbolic import kind

    def goals_only(sm: Any, items: list[Any], *a: Any) -> set[str]:
        return {it.name for it in items if it.alive and it.role in ("goal", "wf")}

    monkeypatch.setattr(kind, "_needed", goals_only)
    m = model("mainline-6.13", "pages_per_huge=4")
    props = properties.select(m, ["freed-pages-are-shared", "npt-level-within-rmp-level",
                                  "no-rmpupdate-overlap", "mapping-implies-page-cache"])
    vs = kinduction(m, props, mine_from=model("mainline-6.13"))
    for v in vs:
        assert v.result is Result.HOLDS, v
        assert v.stats["refinements"] == 2
    monkeypatch.setattr(kind, "MAX_REFINEMENTS", 0)
    (v,) = kinduction(m, props[:1], mine_from=model("mainline-6.13"))
    assert v.result is Result.INCONCLUSIVE
    assert "wf: held=H covers its region" in v.reason


def test_kinduction_int_and_bitvector_encodings_prove_the_same(mine_once: None) -> None:
    """The bit-vector encoding (the default, used at large sizes) and the Int one give
    the same verdicts and the same CTI action, at a size where each query is split per
    action and run in parallel contexts."""
    m = model("pb-bitmap", "pages_per_huge=8")
    props = properties.select(m, ["freed-pages-are-shared", "private-mapping-implies-assigned",
                                  "no-rmpupdate-overlap"])
    got = {}
    for bv in (False, True):
        got[bv] = [(v.property, v.result, v.bound,
                    v.trace.steps[-1].action if v.trace is not None else None)
                   for v in kinduction(m, props, bv=bv)]
    assert got[False] == got[True]
    assert [r for _, r, _, _ in got[True]] == [Result.HOLDS, Result.INCONCLUSIVE,
                                               Result.HOLDS]
    assert got[True][1][3] == "kvm_tdp_mmu_map"


def test_parallel_checks_translate_models_back() -> None:
    from gmemcheck.symbolic.kind import check_each

    sm = SymModel(model("mainline-6.13"), bv=True)
    s = sm.fresh("q")
    res = check_each(sm, [[s.spec == 1], [s.spec == 1, s.spec == 2], [s.spec >= 0]], None,
                     None, ["a", "b", "c"])
    assert [r for r, _, _ in res] == [z3.sat, z3.unsat, z3.sat]
    assert res[0][1].eval(s.spec).as_signed_long() == 1


# --------------------------------------------------------------------- plug-ins, CLI
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from gmemcheck.cli import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=600)


def test_plugin_step_has_no_encoding_and_says_so() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    # a plug-in step without a symbolic twin (examples/leak_on_failure.py has one now)
    r = run_cli("check", "--config", str(root / "tests/mutants/mutant-no-psmash.toml"),
                "--engine", "bmc", "--depth", "1", "--no-write", "--format", "json",
                "-p", "no-rmpupdate-overlap")
    assert r.returncode == 2, r.stderr
    (cell,) = json.loads(r.stdout)["results"]
    assert cell["outcome"] == "inconclusive"
    assert "plug-in" in cell["reason"] and "no Z3 encoding" in cell["reason"]


def test_no_encoding_raised_for_plugin_axis_value() -> None:
    from pathlib import Path

    from gmemcheck.model import build, load_preset
    from gmemcheck.plugins import load

    root = Path(__file__).resolve().parent.parent
    from gmemcheck import plugins

    snap, loaded = plugins._snapshot(), dict(plugins.LOADED)
    try:  # the mutant adds an axis: undo it for the tests that follow in this process
        load(str(root / "tests/mutants/no_psmash.py"))
        m = build(load_preset(str(root / "tests/mutants/mutant-no-psmash.toml")))
        with pytest.raises(NoEncoding, match="plug-in"):
            SymModel(m)
    finally:
        plugins._restore(snap)
        plugins.LOADED.clear()
        plugins.LOADED.update(loaded)


def test_cli_kinduction_json() -> None:
    r = run_cli("check", "--config", "mainline-latest", "--engine", "kinduction",
                "-p", "freed-pages-are-shared", "-p", "host-never-writes-guest-owned",
                "--format", "json", "--no-write")
    assert r.returncode == 0, r.stderr
    cells = {c["property"]: c for c in json.loads(r.stdout)["results"]}
    assert cells["freed-pages-are-shared"]["engine"] == "kinduction"
    assert cells["freed-pages-are-shared"]["outcome"] == "holds"
    assert cells["freed-pages-are-shared"]["bound"].startswith("proved")


# --------------------------------------------------------------------- representative pages
@pytest.mark.parametrize("preset", ["rfc-thp-zeroing", "hugetlb"])
def test_window_of_every_page_agrees_with_the_explicit_model(preset: str) -> None:
    """With as many representative pages as pages (offsets forced to 0..N-1), the
    window encoding is the unrolled one: the same successors as the explicit model."""
    m = model(preset, "pages_per_huge=4", "regions=2")
    sm = SymModel(m, window=4)
    rng = random.Random(7)
    for _ in range(3):
        s = walk(m, [rng.randrange(10_000) for _ in range(rng.randrange(14))])[-1]
        sym = sm.successors(s) if not m.terminal(s) else set()
        assert sym == explicit_succ(m, s)


def _pick(values: tuple[Any, ...], i: Any, like: Any) -> Any:
    """values[i] for a symbolic page number i (an ite chain over the pages)."""
    conv = (lambda v: z3.BoolVal(v)) if isinstance(values[0], bool) else \
        (lambda v: num(v, like))
    out = conv(values[-1])
    for j in range(len(values) - 2, -1, -1):
        out = z3.If(i == j, conv(values[j]), out)
    return out


def _window_admits(sm: SymModel, a: Any, s: Any, args: tuple[Any, ...], t: Any,
                   built: dict[Any, Any] | None = None) -> Any:
    """Some choice of represented pages makes the window relation of ``a`` hold between
    ``s`` and ``t`` restricted to them (with the action's read obligations). ``built``
    keeps, for one ``sm``, each action's encoding and each ite chain already built (a
    chain over new values is its template's substitution: the same term as _pick's)."""
    from gmemcheck.symbolic.encode import scalars_of
    from gmemcheck.symbolic.space import PAGE_FIELDS, REGION_FIELDS

    win = sm.space
    built = {} if built is None else built
    if ("enc", a.name) not in built:    # each query has its own solver: one encoding
        pre = sm.fresh(f"pre.{a.name}")
        argv = a.arg_vars(f"a.{a.name}", sm.space)
        built["enc", a.name] = (pre, argv, *a.encode(pre, argv))
    pre, argv, guard, eff = built["enc", a.name]
    mod = sa.sym_fields(a.modifies)
    q = [guard, win.constraint(["state", f"action:{a.name}"])]
    q += [v == (z3.BoolVal(x) if isinstance(x, bool) else num(x, v))
          for v, x in zip(argv, args, strict=True)]

    def pick(name: str, values: tuple[Any, ...], p: int) -> Any:
        if ("ite", name, values, p) not in built:
            i, is_bool = win.at(p), isinstance(values[0], bool)
            if ("tmpl", is_bool, p) not in built:
                sort = z3.BoolSort() if is_bool else i.sort()
                xs = [z3.Const(f"tmpl.{p}.{j}", sort) for j in range(len(values))]
                tmpl = xs[-1]      # _pick's chain, over placeholders for the values
                for j in range(len(xs) - 2, -1, -1):
                    tmpl = z3.If(i == j, xs[j], tmpl)
                built["tmpl", is_bool, p] = (tmpl, xs)
                first = _pick(values, i, i)
            else:
                first = None
            tmpl, xs = built["tmpl", is_bool, p]
            conv = z3.BoolVal if is_bool else (lambda v: num(v, i))
            ite = z3.substitute(tmpl, *[(x, conv(v)) for x, v in zip(xs, values,
                                                                   strict=True)])
            assert first is None or ite.eq(first), (name, values, p)
            built["ite", name, values, p] = ite
        return built["ite", name, values, p]

    for name in PAGE_FIELDS:
        post = eff.f[name] if name in mod else pre.f[name]
        for p in range(win.n):
            q.append(pre.f[name][p] == pick(name, getattr(s, name), p))
            q.append(post[p] == pick(name, getattr(t, name), p))
    for name in REGION_FIELDS:
        post = eff.f[name] if name in mod else pre.f[name]
        for r, (x, y) in enumerate(zip(getattr(s, name), getattr(t, name), strict=True)):
            q += [pre.f[name][r] == x, post[r] == y]
    for name, x in scalars_of(s).items():
        q.append(pre.f[name] == (z3.BoolVal(x) if isinstance(x, bool) else num(x, pre.f[name])))
    for name, y in scalars_of(t).items():
        post = eff.f[name] if name in mod else pre.f[name]
        q.append(post == (z3.BoolVal(y) if isinstance(y, bool) else num(y, post)))
    solver = z3.Solver()
    solver.add(q)
    return solver.check()


@pytest.mark.parametrize("preset", ["rfc-thp-zeroing", "hugetlb"])
def test_window_relation_contains_the_concrete_steps(preset: str) -> None:
    """Soundness of representative pages: every concrete step at 32 pages per huge
    folio, restricted to some choice of W < 32 pages (W as window_for counts), satisfies
    the window relation. A term that read a position as a page number, or an aggregate
    the window does not count, breaks this on some step."""
    from gmemcheck.symbolic.kind import window_for

    m = model(preset, "pages_per_huge=32")
    W = window_for(m, 32)
    assert W < 32
    sm = SymModel(m, window=W)
    acts = {a.name: a for a in sm.actions}
    rng = random.Random(3)
    seen = 0
    built: dict[Any, Any] = {}
    for _ in range(1):
        path = walk(m, [rng.randrange(10_000) for _ in range(10)])
        for s in path[::2]:
            succ = sorted(explicit_succ(m, s), key=lambda x: (x[0], x[1]))
            # one instance of each action
            for name, args, t in {x[0]: x for x in succ}.values():
                assert _window_admits(sm, acts[name], s, args, t, built) == z3.sat, \
                    (name, args)
                seen += 1
    assert seen >= 10


def test_strongest_proves_at_one_gigabyte_over_representative_pages(
        capsys: pytest.CaptureFixture[str], mine_once: None) -> None:
    """--prove-at 262144 (a 1 GiB folio) goes through representative pages: every
    safety property BFS finds to hold on mainline-6.13 is proved there. (In this
    process, sharing the lemmas mined from mainline-6.13 with the tests above.)"""
    from helpers import run

    code, out, err = run(capsys, "check", "--config", "mainline-6.13", "--engine",
                         "strongest", "--prove-at", "262144", "--no-write")
    assert code == 0, err
    proved = [ln for ln in out.splitlines()
              if "proved (k=1, pages_per_huge=262144, regions=1, 21 representative pages "
                 "per region)" in ln]
    assert len(proved) == 13, out


def _int_sorted_terms(e: Any, seen: set[int]) -> list[Any]:
    out, stack = [], [e]
    while stack:
        x = stack.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if x.sort() == z3.IntSort():
            out.append(x)
        else:
            stack.extend(x.children())
    return out


@pytest.mark.parametrize("sets", [("hugetlb",),
                                  ("rfc-thp", "truncate=nonuniform", "pages_per_huge=4")])
def test_bitvector_encodings_have_no_integer_terms(sets: tuple[str, ...]) -> None:
    """With bit-vector integers no term is a mathematical integer: the head of the
    folio found at a concrete index (kvm_gmem_allocate's get_folio) was a z3.If of two
    Python ints, an Int term inside a bit-vector query."""
    sm = SymModel(model(*sets), bv=True)
    for a in sm.actions:
        _, _, guard, eff = sm._effects(a)
        seen: set[int] = set()
        bad = _int_sorted_terms(guard, seen)
        for v in eff.f.values():
            for t in ([v] if isinstance(v, z3.ExprRef) else getattr(v, "items", [])):
                bad += _int_sorted_terms(t, seen)
        assert not bad, (a.name, bad[:1])
