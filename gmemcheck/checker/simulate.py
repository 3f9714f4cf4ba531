"""Seeded random walks, for models too big to exhaust.

A walk starts in an initial state chosen by the seeded generator and takes uniformly
chosen enabled steps up to a depth. Safety predicates, step predicates, reachable
witnesses and deadlocks are checked along the way. Simulation cannot show that a
property holds, so a safety property it does not break is only HOLDS_BOUNDED, naming
the walks, depth and seed; liveness and recoverability are not judged by it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from .core import Kind, Property, Result, State, Step, Trace, Verdict


@dataclass
class SimulationRun:
    verdicts: list[Verdict]
    fired: dict[str, int]
    walks: int
    steps: int
    distinct: int
    seconds: float
    seed: int


def simulate(model: Any, properties: list[Property], walks: int, depth: int, seed: int
             ) -> SimulationRun:
    if walks <= 0 or depth <= 0:
        raise ValueError("simulation needs a positive number of walks and depth")
    rng = random.Random(seed)
    inits = list(dict.fromkeys(model.init_states()))
    labels = [(a, args) for a in model.actions for args in a.domain]
    fired = {a.name: 0 for a in model.actions}
    found: dict[str, Trace] = {}
    seen: set[State] = set()
    t0 = time.perf_counter()
    total = 0
    safety = [p for p in properties if p.kind is Kind.SAFETY]
    reach = [p for p in properties if p.kind is Kind.REACHABLE]
    dead = [p for p in properties if p.kind is Kind.DEADLOCK]

    def note(p: Property, init: State, steps: list[Step]) -> None:
        if p.name not in found:
            found[p.name] = Trace(init, tuple(steps))

    for _ in range(walks):
        s = rng.choice(inits)
        init = s
        steps: list[Step] = []
        for d in range(depth + 1):
            seen.add(s)
            for p in safety:
                if p.predicate is not None and p.name not in found and not p.predicate(s):
                    note(p, init, steps)
            for p in reach:
                if p.name not in found and p.predicate is not None and p.predicate(s):
                    note(p, init, steps)
            if d == depth or model.terminal(s):
                break
            enabled = [(a, args) for a, args in labels if a.guard(s, args)]
            if not any(not a.environment for a, _ in enabled):
                for p in dead:
                    note(p, init, steps)
            if not enabled:
                break
            a, args = rng.choice(enabled)
            t = a.apply(s, args)
            fired[a.name] += 1
            total += 1
            outcome = a.explain(s, args) if a.explain else None
            steps.append(Step(a.name, args, t, outcome))
            for p in safety:
                if p.step is not None and p.name not in found and not p.step(s, (a.name, args), t):
                    note(p, init, steps)
            s = t
    seconds = time.perf_counter() - t0
    bound = f"simulate walks={walks} depth={depth} seed={seed}"
    verdicts = []
    for p in properties:
        tr = found.get(p.name)
        if tr is not None:
            tr = _shorten(tr) if p.kind is Kind.SAFETY and p.step is None else tr
            res = Result.HOLDS if p.kind is Kind.REACHABLE else Result.VIOLATED
            verdicts.append(Verdict(p.name, p.kind, res, "simulate", bound, trace=tr))
        elif p.kind in (Kind.SAFETY, Kind.DEADLOCK):
            verdicts.append(Verdict(p.name, p.kind, Result.HOLDS_BOUNDED, "simulate", bound,
                                    reason="not violated on the random walks taken"))
        else:
            why = ("no witness on the random walks taken" if p.kind is Kind.REACHABLE
                   else "simulation does not judge liveness or recoverability")
            verdicts.append(Verdict(p.name, p.kind, Result.INCONCLUSIVE, "simulate", bound,
                                    reason=why))
    return SimulationRun(verdicts, fired, walks, total, len(seen), seconds, seed)


def _shorten(trace: Trace) -> Trace:
    """Cut the cycles out of a walk (loop erasure): the result still replays and still
    ends in the same violating state."""
    states = trace.states
    last_at: dict[State, int] = {}
    keep: list[int] = []
    for i, s in enumerate(states):
        if s in last_at:
            cut = last_at[s]
            while keep and keep[-1] > cut:
                del last_at[states[keep.pop()]]
            continue
        last_at[s] = i
        keep.append(i)
    steps = tuple(trace.steps[i - 1] for i in keep[1:])
    # A kept step i reaches states[i] from states[i-1]; after erasure its predecessor is
    # the previous kept state, which equals states[i-1] only when no cut happened there.
    ok = all(states[keep[j - 1]] == states[keep[j] - 1] for j in range(1, len(keep)))
    return Trace(trace.init, steps) if ok else trace
