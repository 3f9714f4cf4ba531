"""One check: run an engine over a model and a set of properties, return verdicts.

This is the seam between the engines and the command line. Every trace an engine
produces is replayed through the explicit model here before it is returned; a trace
that does not replay raises :class:`EngineBug`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .core import EngineBug, Kind, Property, Result, Verdict
from .explicit import Caps, Compaction, Exploration, explore
from .liveness import check_leads_to, check_recoverable
from .replay import ReplayError, replay
from .simulate import simulate


@dataclass
class CheckRun:
    verdicts: list[Verdict]
    engine: str
    states: int
    transitions: int
    depth: int
    seconds: float
    complete: bool
    coverage: dict[str, int]
    exploration: Exploration | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def never_fired(self) -> list[str]:
        return [a for a, n in self.coverage.items() if n == 0]


def verdicts_from_exploration(exp: Exploration, props: Sequence[Property], engine: str = "bfs",
                              max_seconds: float | None = None, t0: float | None = None
                              ) -> list[Verdict]:
    """The verdicts an exploration supports. With ``max_seconds`` (counted from ``t0``)
    the graph analyses of liveness and recoverability run only while time is left: once
    the search stopped on the time cap, or the cap passed during an earlier analysis,
    the remaining ones are inconclusive and name the cap, so ``--max-seconds`` holds for
    the whole check and not only for the search."""
    bound = "exhaustive" if exp.complete else (exp.cap or "stopped early")
    time_cap = f"time<={max_seconds:g}s" if max_seconds else None
    start = time.perf_counter() if t0 is None else t0
    stats = {"states": len(exp.states), "transitions": exp.transitions}
    out = []
    for p in props:
        hit = exp.hits.get(p.name)
        if p.kind is Kind.SAFETY:
            if hit is None:
                out.append(_unresolved(p, exp, engine, bound, stats))
            else:
                extra = [(hit.via[0], hit.via[1], hit.state)] if hit.via else []
                trace = exp.trace_to(hit.via[0] if hit.via else hit.state, extra)
                out.append(Verdict(p.name, p.kind, Result.VIOLATED, engine,
                                   f"shortest: {steps(len(trace))}", trace=trace,
                                   stats=dict(stats)))
        elif p.kind is Kind.REACHABLE:
            if hit is not None:
                if hit.via:
                    trace = exp.trace_to(hit.via[0], [(hit.via[0], hit.via[1], hit.state)])
                else:
                    trace = exp.trace_to(hit.state)
                out.append(Verdict(p.name, p.kind, Result.HOLDS, engine,
                                   f"witness: {steps(len(trace))}", trace=trace,
                                   stats=dict(stats), reason="witness found"))
            elif exp.complete:
                out.append(Verdict(p.name, p.kind, Result.VIOLATED, engine, bound,
                                   stats=dict(stats), reason="no reachable state satisfies it"))
            else:
                out.append(Verdict(p.name, p.kind, Result.INCONCLUSIVE, engine, bound,
                                   stats=dict(stats), reason=f"not reached within {bound}"))
        elif p.kind is Kind.DEADLOCK:
            if hit is None:
                out.append(_unresolved(p, exp, engine, bound, stats))
            else:
                trace = exp.trace_to(hit.state)
                out.append(Verdict(p.name, p.kind, Result.VIOLATED, engine,
                                   f"shortest: {steps(len(trace))}", trace=trace,
                                   stats=dict(stats), reason="no thread can make progress"))
        elif p.needs_graph and time_cap is not None and (
                exp.cap == time_cap or time.perf_counter() - start > (max_seconds or 0)):
            out.append(Verdict(p.name, p.kind, Result.INCONCLUSIVE, engine, time_cap,
                               stats=dict(stats), reason=f"{time_cap} reached before the "
                               "graph analysis of this property"))
        elif p.kind is Kind.LIVENESS:
            out.append(check_leads_to(exp, p, engine))
        elif p.kind is Kind.RECOVERABLE:
            out.append(check_recoverable(exp, p, engine))
        else:  # pragma: no cover - enum is closed
            raise AssertionError(p.kind)
    if exp.compaction is not None:
        for v in out:
            weaken_for_compaction(v, exp.compaction)
    return out


def weaken_for_compaction(v: Verdict, comp: Compaction) -> None:
    """A hash-compacted search may have missed states (two states with one
    fingerprint), so nothing that rests on having seen every state is stronger than
    bounded: "holds" becomes "holds up to the bound", "unreachable" and "cannot
    recover" become inconclusive. A replayed violation or witness is real. The bound
    and the reason name the mode and the probability of a missed state."""
    v.bound = f"{v.bound}, hash compaction"
    v.stats["hash_compaction"] = {"bits": comp.bits, "probability": comp.probability}
    if v.result is Result.HOLDS and v.trace is None:
        v.result = Result.HOLDS_BOUNDED
    elif v.result is Result.VIOLATED and v.kind in (Kind.REACHABLE, Kind.RECOVERABLE):
        v.result = Result.INCONCLUSIVE
    v.reason = "; ".join(r for r in (v.reason, comp.describe()) if r)


def steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def _unresolved(p: Property, exp: Exploration, engine: str, bound: str, stats: dict[str, Any]
                ) -> Verdict:
    if exp.complete:
        return Verdict(p.name, p.kind, Result.HOLDS, engine, bound, stats=dict(stats))
    return Verdict(p.name, p.kind, Result.HOLDS_BOUNDED, engine, bound, stats=dict(stats),
                   reason=f"no violation within {bound}")


def replay_all(model: Any, props: Sequence[Property], verdicts: Sequence[Verdict]) -> None:
    by_name = {p.name: p for p in props}
    for v in verdicts:
        if v.trace is None or v.trace.origin != "init":
            continue
        try:
            replay(model, v.trace, by_name[v.property])
        except ReplayError as e:
            raise EngineBug(f"{v.engine} trace for {v.property} does not replay: {e}") from e


def check(
    model: Any,
    props: Sequence[Property],
    engine: str = "bfs",
    caps: Caps | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    walks: int = 100,
    walk_depth: int = 50,
    seed: int = 0,
    keep_graph: bool = False,
    hash_compaction: bool = False,
    workers: int = 1,
) -> CheckRun:
    """Check ``props`` on ``model`` with the explicit engine (``bfs``) or random walks
    (``simulate``), replaying every trace before returning it. ``hash_compaction``
    and ``workers`` are options of the explicit engine (see :mod:`.explicit`)."""
    t0 = time.perf_counter()
    if engine == "bfs":
        exp = explore(model, props, caps, keep_graph=keep_graph, progress=progress,
                      hash_compaction=hash_compaction, workers=workers)
        verdicts = verdicts_from_exploration(exp, props, "bfs",
                                             caps.max_seconds if caps else None, t0)
        run = CheckRun(verdicts, "bfs", len(exp.states), exp.transitions,
                       max(exp.depth) if exp.depth else 0, 0.0, exp.complete,
                       exp.coverage(), exp)
        if exp.compaction is not None:
            run.notes.append(exp.compaction.describe())
        if workers > 1:
            run.notes.append(f"{workers} worker processes")
    elif engine == "simulate":
        sim = simulate(model, list(props), walks, walk_depth, seed)
        run = CheckRun(sim.verdicts, "simulate", sim.distinct, sim.steps, walk_depth, 0.0,
                       False, sim.fired, notes=[f"seed {seed}"])
    else:
        raise ValueError(f"unknown engine {engine!r}")
    replay_all(model, props, run.verdicts)
    run.seconds = time.perf_counter() - t0
    for v in run.verdicts:
        v.stats.setdefault("seconds", run.seconds)
    return run
