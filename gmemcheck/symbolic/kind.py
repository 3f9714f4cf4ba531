"""k-induction with Houdini-pruned strengthening lemmas.

For the size being proved (``pages_per_huge`` and ``regions``, by default the preset's
own), the engine looks for the largest set of items, drawn from

* the hand-written well-formedness lemmas (:func:`.lemmas.well_formed`),
* the candidate lemmas mined from the preset's explicit reachable set (:func:`.lemmas.mine`),
* every state safety property of the design (the goals asked for and the others),

that holds in the states within ``k - 1`` steps of the initial state (base case) and is
preserved by ``k`` consecutive steps from arbitrary states satisfying it (induction
step). Items the solver refutes are dropped and the query repeated (Houdini); what is
left is an inductive invariant, so each goal left in it is proved for traces of any
length at that size. A goal that is dropped in the induction step is INCONCLUSIVE with
the counterexample-to-induction: ``k`` steps from a state that need not be reachable
(``origin = "arbitrary"``), naming the action and the property; never VIOLATED. Step
properties and deadlock freedom are then checked from every state of the invariant.

Lemmas stay lemmas: the verdicts report goals only, and the number of lemmas used is in
the statistics.

At large sizes: the lemmas are pruned at the small size first and only those the goals'
proofs use (unsat cores) are carried over. If an item the small size proved is then
dropped at the large size, the other lemmas that survived at the small size and that
the counterexamples to induction violate (evaluated on the decoded states) are added and
Houdini runs again, at most :data:`MAX_REFINEMENTS` times. Integers are bit-vectors
(``bv``) solved by Z3's finite-domain SAT solver; the induction step is one query per
action of the last step, each in a fresh solver with the hypotheses asserted,
:data:`WORKERS` at a time (:func:`check_each`). Measured on mainline-6.13 at 64 pages
per huge folio: one disjunctive Int query 230 s, per-action bit-vector queries 20 s.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import z3

from ..checker.core import EngineBug, Kind, Property, Result, Trace, Verdict
from ..checker.explicit import Caps, explore
from ..checker.replay import ReplayError, replay
from ..model.build import resized
from . import lemmas as lm
from . import steps as st
from .model import NoEncoding, SymModel
from .props import SYM, Label, deadlock_free, sym_prop, table

ENGINE = "kinduction"
MINE_MAX_STATES = 400_000
# Houdini re-runs at the large size with more of the small size's lemmas (see kinduction)
MAX_REFINEMENTS = 2


@dataclass
class Item:
    name: str
    role: str                  # "wf" | "lemma" | "goal" | "aux" (a non-goal property)
    fn: Any                    # SymState -> BoolRef
    alive: bool = True
    cti: Trace | None = None
    cti_action: str = ""
    # the solver model that dropped it in the induction step, if any
    cex_model: Any = None


def _size(sm: SymModel, k: int) -> str:
    win = f", {sm.window} representative pages per region" if sm.window else ""
    return f"k={k}, pages_per_huge={sm.k.N}, regions={sm.k.R}{win}"


def explicit_at(model: Any, sm: SymModel) -> Any:
    """The explicit model at the symbolic model's size (for replaying its traces)."""
    return resized(model, pages_per_huge=sm.k.N, regions=sm.k.R)


def small_copy(model: Any) -> Any:
    """The same design at two pages per huge folio and at most two regions, the size
    the presets are explored at (the atoms of the mined lemmas do not depend on the
    size, and Houdini re-checks every lemma at the size being proved)."""
    if model.k.N <= 2 and model.k.R <= 2:
        return model
    return resized(model, pages_per_huge=2, regions=min(model.k.R, 2))


def mined_lemmas(model: Any, max_states: int = MINE_MAX_STATES) -> tuple[list[lm.Lemma], int]:
    """Candidate lemmas from the explicit reachable set. Under the run's time cap
    (``DEADLINE``) the exploration stops with it: lemmas mined from fewer states are
    only more candidates, which Houdini prunes as before, so soundness is unchanged."""
    left = None
    if DEADLINE[0] is not None:
        left = DEADLINE[0] - time.perf_counter()
        if left <= 0:
            raise DeadlineReached
    exp = explore(model, [], Caps(max_states=max_states, max_seconds=left),
                  stop_when_resolved=False)

    def check_time() -> None:
        if DEADLINE[0] is not None and time.perf_counter() > DEADLINE[0]:
            raise DeadlineReached

    return lm.mine(model, exp.states, check_time), len(exp.states)


def kinduction(model: Any, props: list[Property], k: int = 1,
               pages_per_huge: int | None = None, regions: int | None = None,
               timeout_ms: int | None = None, use_mined: bool = True,
               mine_from: Any = None, log: Any = None, bv: bool = True,
               window: int | None = None) -> list[Verdict]:
    """Prove the safety and deadlock properties among ``props`` on ``model`` (at its
    own size, or at ``pages_per_huge``/``regions`` if given). Candidate lemmas are
    mined from the explicit reachable set of ``mine_from`` (default: ``model`` itself
    if it is small enough to explore, else ``model`` at ``pages_per_huge = 2``).
    ``bv``: prove over the bit-vector encoding with the SAT-based solver (see
    :class:`.model.SymModel`); the lemma pruning at the small size uses integers.
    ``window``: prove over that many representative pages per huge region
    (:class:`.space.Window`; see :func:`window_for` for the number a design needs): a
    proof holds at ``pages_per_huge``, and counterexamples to induction are abstract."""
    t0 = time.perf_counter()
    if window is not None and k != 1:
        raise ValueError("representative pages: k-induction with k = 1 only")
    try:
        # over representative pages, integers stay integers: the page numbers are only
        # ordered and offset, which linear arithmetic decides directly, where bit-blasting
        # 22-bit comparisons at 262,144 pages did not finish a query in 8 minutes
        # (mainline-6.13 at N=64: 22 s for the whole proof with Int, 110 s with bv)
        sm = SymModel(model, pages_per_huge, regions, bv=bv and window is None,
                      window=window)
    except NoEncoding as e:
        return [Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, "-", reason=str(e))
                for p in props]
    size = _size(sm, k)
    out: dict[str, Verdict] = {}
    goals_state, goals_step, deadlock = [], [], None
    for p in props:
        sp = sym_prop(p)
        if p.kind in (Kind.LIVENESS, Kind.RECOVERABLE, Kind.REACHABLE):
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, "-",
                                  reason="k-induction proves safety properties; use bfs "
                                         "(or bmc for reachability)")
        elif sp is None:
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, "-",
                                  reason=f"property {p.name} has no Z3 encoding")
        elif p.kind is Kind.DEADLOCK:
            deadlock = p
        elif sp.state is not None:
            goals_state.append(p)
        else:
            goals_step.append(p)

    # ------------------------------------------------------------- the items
    def build_items(sm: SymModel, mined: list[lm.Lemma]) -> list[Item]:
        # the well-formedness lemmas of one state are built together, once
        wf: dict[int, tuple[Any, list[tuple[str, Any]]]] = {}

        def wf_of(s: Any) -> list[tuple[str, Any]]:
            if id(s) not in wf:
                wf[id(s)] = (s, lm.well_formed(sm, s))
            return wf[id(s)][1]

        def wf_item(i: int) -> Any:
            def fn(s: Any) -> Any:
                st.site(sm.k)   # a window must represent the page that breaks it
                return wf_of(s)[i][1]
            return fn

        items = [Item(f"wf: {name}", "wf", wf_item(i))
                 for i, (name, _) in enumerate(wf_of(sm.fresh("probe")))]
        goal_names = {p.name for p in goals_state}
        applicable = {p.name for p in model_props(model)}
        for name, sp in table(model_props(model)).items():
            if sp.state is None or name == "no-deadlock" or name.startswith("reach-") \
                    or name not in applicable:
                continue
            items.append(Item(name, "goal" if name in goal_names else "aux",
                              lambda s, sp=sp: sp.state(sm, s)))
        for lem in mined:
            items.append(Item(f"lemma: {lem.name}", "lemma",
                              lambda s, lem=lem: lem.formula(s, sm.k)))
        return items

    mined: list[lm.Lemma] = []
    reserve: list[lm.Lemma] = []
    alive_small: set[str] = set()
    mined_from = 0
    skip_aux: set[str] = set()
    if use_mined:
        small_model = mine_from if mine_from is not None else small_copy(model)
        mined, mined_from = mined_lemmas(small_model)
        if small_model.k.P != sm.k.P:
            # prune at the preset's own (small) size first: a lemma that is not
            # inductive there is very unlikely to be at the large one, and each lemma
            # costs a conjunction over every page at the large size
            small = SymModel(small_model)
            sitems = build_items(small, mined)
            hs = _houdini(small, sitems, k, timeout_ms, small_model, None)
            alive = sum(it.alive and it.role == "lemma" for it in sitems)
            keep = _needed(small, sitems, k, hs, goals_step, deadlock is not None)
            if log:
                log(f"{alive} of {len(mined)} mined lemmas inductive at the preset's size, "
                    f"{sum(n.startswith('lemma: ') for n in keep)} of them needed by the "
                    "goals there")
            alive_small = {it.name for it in sitems if it.alive}
            reserve = [m for m in mined if f"lemma: {m.name}" in alive_small
                       and f"lemma: {m.name}" not in keep]
            mined = [m for m in mined if f"lemma: {m.name}" in keep]
            skip_aux = {it.name for it in sitems if it.role == "aux" and it.name not in keep}
    # the explicit model at this size replays the CTIs; over representative pages there
    # are none to replay (and its action domains at 262,144 pages would not fit)
    exp_model = explicit_at(model, sm) if sm.window is None else None
    refinements = 0
    while True:
        items = [it for it in build_items(sm, mined) if it.name not in skip_aux]
        if log:
            log(f"{len(items)} items ({len(mined)} mined lemmas from {mined_from} states), "
                f"building the {k}-step relation at {size}")
        states, labels, at, base_fail, unknown, rounds, per_action = _houdini(
            sm, items, k, timeout_ms, exp_model, log)
        # an item the small size proved but this size did not: the lemmas carried over
        # were only those the small proofs used; add the reserve lemmas (inductive at
        # the small size) that the counterexamples to induction violate, and try again
        lost = [it for it in items if not it.alive and it.cex_model is not None
                and it.name in alive_small]
        if unknown or not lost or not reserve or refinements >= MAX_REFINEMENTS:
            break
        pre = []
        for m in {id(it.cex_model): it.cex_model for it in lost}.values():
            try:
                pre += [sm.decode(m, s) for s in states[:k]]
            except (KeyError, ValueError):
                pass    # not a well-formed (or not a concrete) state: nothing to evaluate
        add = [m for m in reserve if not all(m.holds_on(s, sm.k) for s in pre)]
        if not add:
            break
        refinements += 1
        if log:
            log(f"refinement {refinements}: {len(add)} more lemmas, inductive at the small "
                "size, rule out the counterexamples to induction of "
                + "; ".join(it.name for it in lost))
        mined = mined + add
        reserve = [m for m in reserve if m not in add]
    inv = [i for i, it in enumerate(items) if it.alive]
    # the encoding of truncate and allocate is exact on well-formed states only
    # (symbolic/steps.py): a proof that lost a well-formedness lemma proves nothing
    broken_wf = [it.name for it in items if it.role == "wf" and not it.alive]
    wf_reason = ("well-formedness lemma(s) not inductive, which the encoding relies on: "
                 + ", ".join(broken_wf))
    stats = {"lemmas": sum(items[i].role == "lemma" for i in inv), "rounds": rounds,
             "mined_from_states": mined_from, "pages_per_huge": sm.k.N, "regions": sm.k.R,
             "k": k, "refinements": refinements}

    def cti_verdict(p: Property, trace: Trace, why: str) -> Verdict:
        try:
            replay(exp_model, trace)
        except ReplayError as e:
            raise EngineBug(f"k-induction CTI for {p.name} does not replay: {e}") from e
        last = trace.steps[-1]
        return Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, f"induction ({size})",
                       trace=trace, stats=dict(stats),
                       reason=f"induction step fails: {last.action}{tuple(last.args)} from a "
                              f"state that need not be reachable {why}")

    for p in goals_state:
        it = next(x for x in items if x.name == p.name)
        if p.name in base_fail:
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                                  reason=base_fail[p.name])
        elif unknown:
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                                  reason=f"solver unknown: {unknown}")
        elif broken_wf:
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                                  reason=wf_reason)
        elif it.alive:
            out[p.name] = Verdict(p.name, p.kind, Result.HOLDS, ENGINE,
                                  f"proved ({size})", stats=dict(stats))
        elif it.cti is None and sm.window:
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE,
                                  f"induction ({size})", stats=dict(stats),
                                  reason=abstract_cti(sm, it.cti_action, p.name))
        elif it.cti is None:
            raise EngineBug(f"k-induction CTI for {p.name} cannot be decoded into a state "
                            f"although every well-formedness lemma holds: {it.cti_action}")
        else:
            out[p.name] = cti_verdict(p, it.cti, f"violates {p.name}")

    # ------------------------------------------------------------- step goals, deadlock
    if goals_step or deadlock is not None:
        hyp = [sm.canonical(states[0]), sm.canonical(states[1])] + [at(i, 0) for i in inv]
        names = [a.name for a in sm.actions]
        lab = Label(names, labels[0][1].ind, labels[0][1].args)
        for p in goals_step:
            if unknown:
                out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                                      reason=f"solver unknown: {unknown}")
                continue
            wq = WindowQueries(sm)
            with wq.scope(f"step:{p.name}"):
                neg = z3.Not(SYM[p.name].step(sm, states[0], states[1], lab))
            extras = [wq.extra(f"action:{n}", [f"step:{p.name}"], (f"step:{p.name}",))
                      for n in names]
            too_small = next((why for _, why in extras if why), "")
            if too_small:
                out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                                      reason=too_small)
                continue
            # one query per action, as in the induction step
            res = check_each(sm, [hyp + [rel, neg] + ex for rel, (ex, _) in
                                  zip(per_action[0], extras, strict=True)], timeout_ms,
                             log, [f"{p.name} / {n}" for n in names])
            sat = [m for r, m, _ in res if r == z3.sat]
            unk = [f"{n}: {why}" for n, (r, _, why) in zip(names, res, strict=True)
                   if r == z3.unknown]
            if sat and sm.window:
                fired = next(n for n, (r, _, _) in zip(names, res, strict=True) if r == z3.sat)
                out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE,
                                      f"induction ({size})", stats=dict(stats),
                                      reason=abstract_cti(sm, fired, p.name))
            elif sat:
                tr = sm.decode_path(sat[0], states[:2], [labels[0][1]], exp_model,
                                     "arbitrary")
                out[p.name] = cti_verdict(p, tr, f"violates {p.name} (from the invariant)")
            elif unk:
                out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                                      reason=f"solver unknown: {unk[0]}")
            elif broken_wf:
                out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                                      reason=wf_reason)
            else:
                out[p.name] = Verdict(p.name, p.kind, Result.HOLDS, ENGINE,
                                      f"proved ({size})", stats=dict(stats))
        if deadlock is not None and sm.window:
            out[deadlock.name] = Verdict(
                deadlock.name, deadlock.kind, Result.INCONCLUSIVE, ENGINE, size,
                reason="deadlock freedom is not checked over representative pages")
        elif deadlock is not None:
            s = solver(sm, timeout_ms)
            s.add([sm.canonical(states[0])] + [at(i, 0) for i in inv])
            out[deadlock.name] = _deadlock(sm, s, states, deadlock, size, stats, exp_model,
                                           (f"solver unknown: {unknown}" if unknown else
                                            wf_reason if broken_wf else ""))
    seconds = time.perf_counter() - t0
    for v in out.values():
        v.stats.setdefault("seconds", round(seconds, 3))
    return [out[p.name] for p in props]


def abstract_cti(sm: SymModel, action: str, prop: str) -> str:
    return (f"induction step fails: {action} from a state of {sm.window} representative "
            f"pages per region (not a concrete state, so not replayed) violates {prop}")


def _needed(sm: SymModel, items: list[Item], k: int, hs: tuple[Any, ...],
            goals_step: list[Property], deadlock: bool) -> set[str]:
    """Names of the surviving items the goals' proofs actually use, found by growing a
    set from the goals with unsat cores until it is closed: every item in it is
    preserved given only the items in it."""
    states, labels, at = hs[0], hs[1], hs[2]
    alive = [i for i, it in enumerate(items) if it.alive]
    lits = {i: z3.Bool(f"need.{i}") for i in alive}
    back = {lits[i].get_id(): i for i in alive}
    s = z3.Solver()
    s.set("core.minimize", True)
    for i in alive:
        s.add(z3.Implies(lits[i], z3.And([at(i, d) for d in range(k)])))
    for d in range(k + 1):
        s.add(sm.canonical(states[d]))
    for rel, _ in labels:
        s.add(rel)
    need = {i for i in alive if items[i].role in ("goal", "wf")}

    def core(extra: Any) -> set[int]:
        s.push()
        s.add(extra)
        r = s.check([lits[i] for i in alive])
        got = {back[c.get_id()] for c in s.unsat_core()} if r == z3.unsat else set(alive)
        s.pop()
        return got

    names = [a.name for a in sm.actions]
    lab = Label(names, labels[0][1].ind, labels[0][1].args)
    for p in goals_step:
        need |= core(z3.Not(SYM[p.name].step(sm, states[0], states[1], lab)))
    if deadlock:
        need |= core(z3.Not(deadlock_free(sm, states[0])))
    while True:
        grown = need | core(z3.Or([z3.Not(at(i, k)) for i in sorted(need)]))
        if grown == need:
            break
        need = grown
    return {items[i].name for i in need}


class DeadlineReached(Exception):
    """The wall-time cap of the run (``DEADLINE``) passed before a query started."""


# perf_counter() time after which no new query starts, and each query's timeout is at
# most the time left (the runner sets it for --max-seconds)
DEADLINE: list[float | None] = [None]


def solver(sm: SymModel, timeout_ms: int | None = None, ctx: Any = None) -> z3.Solver:
    """A solver for queries over ``sm``: Z3's finite-domain (bit-blasting SAT) solver
    when its integers are bit-vectors, else the default one."""
    if DEADLINE[0] is not None:
        left_ms = int((DEADLINE[0] - time.perf_counter()) * 1000)
        if left_ms <= 0:
            raise DeadlineReached
        timeout_ms = min(left_ms, timeout_ms) if timeout_ms else left_ms
    s = z3.SolverFor("QF_FD", ctx=ctx) if sm.bv else z3.Solver(ctx=ctx)
    if timeout_ms:
        s.set("timeout", timeout_ms)
    return s


WORKERS = min(2, os.cpu_count() or 1)


def check_each(sm: SymModel, queries: list[list[Any]], timeout_ms: int | None, log: Any,
               names: list[str]) -> list[tuple[Any, Any, str]]:
    """Check each query (a list of assertions) in a fresh solver: (result, model in the
    main context or None, reason unknown). Queries run ``WORKERS`` at a time, each in
    its own Z3 context (a context is not thread-safe; Z3 releases the GIL while it
    solves), translated there and back on this thread."""
    jobs = []
    for q in queries:
        ctx = z3.Context()
        # one translation, so that subterms shared between assertions are copied once
        jobs.append((ctx, [z3.And(q).translate(ctx)]))

    def run(i: int) -> tuple[Any, Any, str]:
        ctx, fs = jobs[i]
        t = time.perf_counter()
        s = solver(sm, timeout_ms, ctx)
        s.add(fs)
        r = s.check()
        m = s.model() if r == z3.sat else None
        if log:     # as each finishes (log is a print: safe from a worker thread)
            log(f"  {names[i]}: {r} in {time.perf_counter() - t:.1f}s")
        return r, m, s.reason_unknown() if r == z3.unknown else ""

    if WORKERS > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(WORKERS) as pool:
            raw = list(pool.map(run, range(len(jobs))))
    else:
        raw = [run(i) for i in range(len(jobs))]
    main = z3.main_ctx()
    return [(r, m.translate(main) if m is not None else None, why) for r, m, why in raw]


class WindowQueries:
    """For a :class:`.space.Window` model: the scope each formula is built in, and for
    each query the window constraint and the check that the window is large enough
    (see the soundness argument there). A no-op for an unrolled model."""

    def __init__(self, sm: SymModel) -> None:
        self.win = sm.space if sm.window is not None else None

    def scope(self, name: str) -> Any:
        return self.win.scope(name) if self.win is not None else nullcontext()

    def extra(self, act: str | None, goals: list[str], others: tuple[str, ...] = ()
              ) -> tuple[list[Any], str]:
        """(assertions to add, "" or why the window is too small) for a query made of
        the action ``act``'s relation, hypotheses, and a goal that is the disjunction
        of the formulas built in the scopes ``goals``: the goal needs the pages of one
        violated disjunct, the relation those of all its sites, and every scope whose
        formula is in the query its reads."""
        win = self.win
        if win is None:
            return [], ""
        obl = [sc for sc in win.obligations if sc.startswith("item:")]
        obl += ["state", *others] + ([act] if act else [])
        need = win.need(act, goals, obl)
        if need > win.W - 1:
            return [], (f"{win.W} representative pages per region are too few for "
                        f"{act or 'the base case'}: it needs {need + 1}")
        return [win.constraint(obl)], ""


def window_for(model: Any, pages_per_huge: int, regions: int | None = None) -> int:
    """The number of representative pages per region that every query of a k = 1
    proof of ``model``'s state properties needs at this size (:class:`WindowQueries`):
    measured on the formulas themselves, built at a window of 2. Mined lemmas read
    nothing and need one page, as do the well-formedness lemmas."""
    sm = SymModel(model, pages_per_huge, regions, window=2)
    win = sm.space
    s0, s1 = sm.fresh("s0"), sm.fresh("s1")
    sm.step_per_action(s0, s1, "t0")
    applicable = {p.name for p in model_props(model)}
    with win.scope("item:lemma"):
        st.site(sm.k)
    goals = ["item:lemma"]
    for d, s in enumerate((s0, s1)):
        with win.scope(f"item:wf@{d}"):
            lm.well_formed(sm, s)
        for n, sp in table(model_props(model)).items():
            if n in applicable and sp.state is not None and not n.startswith("reach-") \
                    and n != "no-deadlock":
                with win.scope(f"item:{n}@{d}"):
                    sp.state(sm, s)
                goals.append(f"item:{n}@{d}")
    items = [sc for sc in win.obligations if sc.startswith("item:")]
    return 1 + max(win.need(f"action:{a.name}", goals, [*items, "state", f"action:{a.name}"])
                   for a in sm.actions)


def _houdini(sm: SymModel, items: list[Item], k: int, timeout_ms: int | None,
             exp_model: Any, log: Any) -> tuple[Any, ...]:
    """Drop items until the rest hold within ``k - 1`` steps of the initial state and
    are preserved by ``k`` steps from any state satisfying them."""
    states = [sm.fresh("s0")]
    labels: list[Any] = []
    per_action: list[Any] = []
    for d in range(k):
        nxt = sm.fresh(f"s{d + 1}")
        rels, st = sm.step_per_action(states[d], nxt, f"t{d}")
        states.append(nxt)
        labels.append((z3.Or(rels), st))
        per_action.append(rels)
    cache: dict[tuple[int, int], Any] = {}
    wq = WindowQueries(sm)

    def at(it_idx: int, d: int) -> Any:
        key = (it_idx, d)
        if key not in cache:
            with wq.scope(f"item:{it_idx}@{d}"):
                cache[key] = items[it_idx].fn(states[d])
        return cache[key]

    # base case
    base = solver(sm, timeout_ms)
    base.add(sm.init_constraint(states[0]), sm.canonical(states[0]))
    for d in range(k - 1):
        base.add(labels[d][0], sm.canonical(states[d + 1]))
    unknown = ""
    base_fail: dict[str, str] = {}
    while True:
        live = [i for i, it in enumerate(items) if it.alive]
        base.push()
        base.add(z3.Or([z3.Not(at(i, d)) for i in live for d in range(k)]))
        extra, too_small = wq.extra(None, [f"item:{i}@0" for i in live])
        if too_small:
            unknown = too_small
            base.pop()
            break
        base.add(extra)
        r = base.check()
        if r == z3.sat:
            m = base.model()
            for i in live:
                if any(z3.is_false(m.eval(at(i, d), model_completion=True)) for d in range(k)):
                    items[i].alive = False
                    if items[i].role == "goal":
                        base_fail[items[i].name] = "fails within " \
                            f"{k - 1} steps of an initial state: a real violation (run bmc)"
        base.pop()
        if r != z3.sat:
            if r == z3.unknown:
                unknown = base.reason_unknown()
            break
    if log:
        log(f"base case: {sum(it.alive for it in items)} items left")
    # induction step: one query per action of the last step, each in a fresh solver
    # with the hypotheses asserted (Z3 simplifies and bit-blasts far better than
    # under assumptions), two at a time; after a drop, every action again
    rounds = 0
    while not unknown:
        live = [i for i, it in enumerate(items) if it.alive]
        rounds += 1
        hyp = [at(i, d) for i in live for d in range(k)]
        hyp += [sm.canonical(st) for st in states] + [rel for rel, _ in labels[:-1]]
        goal = z3.Or([z3.Not(at(i, k)) for i in live])
        extras = [wq.extra(f"action:{a.name}", [f"item:{i}@{k}" for i in live])
                  for a in sm.actions]
        too_small = next((why for _, why in extras if why), "")
        if too_small:
            unknown = too_small
            break
        res = check_each(sm, [hyp + [rel, goal] + ex for rel, (ex, _) in
                              zip(per_action[-1], extras, strict=True)], timeout_ms, log,
                         [a.name for a in sm.actions])
        dropped = False
        for a, (r, m, why) in zip(sm.actions, res, strict=True):
            if r == z3.unknown:
                unknown = f"{a.name}: {why}"
                break
            if r != z3.sat:
                continue
            cti = None
            for i in live:
                if items[i].alive and z3.is_false(m.eval(at(i, k), model_completion=True)):
                    items[i].alive = False
                    items[i].cex_model = m
                    dropped = True
                    if items[i].role == "goal":
                        if cti is None:
                            try:
                                cti = sm.decode_path(m, states, [st for _, st in labels],
                                                     exp_model, "arbitrary")
                            except (KeyError, ValueError) as e:
                                # over representative pages: no concrete state; else
                                # only possible when the same model breaks a
                                # well-formedness lemma, which makes every goal
                                # inconclusive anyway (checked when it is reported)
                                items[i].cti_action = a.name if sm.window else \
                                    f"undecodable: {e!r}"
                                continue
                        items[i].cti = cti
                        items[i].cti_action = cti.steps[-1].action
            if log:
                gone = [items[i].name for i in live if not items[i].alive]
                log(f"round {rounds}: {a.name} dropped {len(gone)}: "
                    + "; ".join(gone[:6]) + (" ..." if len(gone) > 6 else ""))
        if not dropped:
            break
    return states, labels, at, base_fail, unknown, rounds, per_action


DEADLOCK_MAX_GUARDS = 20_000


def _deadlock(sm: SymModel, s: z3.Solver, states: list[Any], p: Property, size: str,
              stats: dict[str, Any], exp_model: Any, blocked: str) -> Verdict:
    if blocked:
        return Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size, reason=blocked)
    # first with a sample of the action instances (a few dozen at any size): if the
    # invariant implies one of them is enabled, that is a proof; otherwise every
    # instance, if there are not too many
    s.push()
    s.add(z3.Not(deadlock_free(sm, states[0], sample=True)))
    r = s.check()
    s.pop()
    if r == z3.unsat:
        return Verdict(p.name, p.kind, Result.HOLDS, ENGINE, f"proved ({size})",
                       stats=dict(stats))
    n = sum(len(a.domain) for a in exp_model.actions)
    if n > DEADLOCK_MAX_GUARDS:
        return Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                       reason=f"deadlock freedom: no sampled action instance is enabled in "
                              f"every state of the invariant, and enumerating all {n} "
                              f"instances at this size is over {DEADLOCK_MAX_GUARDS}")
    s.push()
    s.add(z3.Not(deadlock_free(sm, states[0])))
    r = s.check()
    try:
        if r == z3.unsat:
            return Verdict(p.name, p.kind, Result.HOLDS, ENGINE, f"proved ({size})",
                           stats=dict(stats))
        if r == z3.sat:
            st = sm.decode(s.model(), states[0])
            return Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, f"induction ({size})",
                           trace=Trace(st, (), origin="arbitrary"), stats=dict(stats),
                           reason="a state satisfying the invariant has no enabled action "
                                  "(it need not be reachable)")
        return Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, size,
                       reason=f"solver unknown: {s.reason_unknown()}")
    finally:
        s.pop()


def model_props(model: Any) -> list[Property]:
    from .. import properties

    return properties.for_model(model)

