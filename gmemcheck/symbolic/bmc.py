"""Bounded model checking with Z3.

The path ``s_0 .. s_K`` is unrolled incrementally from the design's initial state, one
action indicator per action per step. At each depth d the solver is asked for a path of
exactly d steps that ends in a violation (or, for a reachable property, a witness);
the first depth that answers sat gives a shortest trace. The solver model is decoded
into explicit states and labels, and the trace is replayed through the explicit model
before it is returned (a trace that does not replay raises EngineBug).
"""

from __future__ import annotations

import time
from typing import Any

import z3

from ..checker.core import EngineBug, Kind, Property, Result, Verdict
from ..checker.replay import ReplayError, replay
from ..checker.run import steps as n_steps
from .model import NoEncoding, SymModel
from .props import Label, sym_prop

ENGINE = "bmc"


def bmc(model: Any, props: list[Property], depth: int, timeout_ms: int | None = None,
        max_seconds: float | None = None, log: Any = None) -> list[Verdict]:
    """Check ``props`` by BMC up to ``depth`` steps; properties without a Z3 encoding
    (liveness, recoverability, plug-in properties) are inconclusive. ``max_seconds``
    caps the wall time: checked before each query, and each query's solver timeout is
    at most the time left; what is open then is bounded at the depth completed."""
    t0 = time.perf_counter()
    try:
        sm = SymModel(model)
    except NoEncoding as e:
        return [Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, "-", reason=str(e))
                for p in props]
    out: dict[str, Verdict] = {}
    todo = []
    for p in props:
        sp = sym_prop(p)
        if sp is None or p.kind in (Kind.LIVENESS, Kind.RECOVERABLE):
            why = ("bmc checks safety, reachability and deadlock properties only"
                   if p.kind in (Kind.LIVENESS, Kind.RECOVERABLE)
                   else f"property {p.name} has no Z3 encoding")
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, "-", reason=why)
        else:
            todo.append((p, sp))
    solver = z3.Solver()
    if timeout_ms:
        solver.set("timeout", timeout_ms)
    states = [sm.fresh("s0")]
    solver.add(sm.init_constraint(states[0]), sm.canonical(states[0]))
    labels: list[Any] = []
    names = [a.name for a in sm.actions]
    unknown: dict[str, str] = {}
    deadline = t0 + max_seconds if max_seconds else None
    done = -1           # the last depth checked completely

    def in_time() -> bool:
        if deadline is None:
            return True
        left_ms = int((deadline - time.perf_counter()) * 1000)
        if left_ms <= 0:
            return False
        solver.set("timeout", min(left_ms, timeout_ms) if timeout_ms else left_ms)
        return True

    for d in range(depth + 1):
        targets = []
        for p, sp in todo:
            if p.name in out:
                continue
            if sp.state is not None:
                goal = sp.state(sm, states[d])
            else:
                if d == 0:
                    continue
                lab = Label(names, labels[-1].ind, labels[-1].args)
                goal = sp.step(sm, states[d - 1], states[d], lab)
            targets.append((p, goal if p.kind is Kind.REACHABLE else z3.Not(goal)))
        # one query for all of them first: most depths answer unsat for every property
        if targets and not in_time():
            break
        if targets:
            solver.push()
            solver.add(z3.Or([t for _, t in targets]))
            r_any = solver.check()
            if r_any == z3.unknown:
                for p, _ in targets:
                    unknown[p.name] = solver.reason_unknown()
            solver.pop()
            if r_any != z3.sat:
                targets = []
        for p, target in targets:
            if not in_time():
                break
            solver.push()
            solver.add(target)
            r = solver.check()
            if r == z3.sat:
                trace = sm.decode_path(solver.model(), states[: d + 1], labels[:d], model)
                try:
                    replay(model, trace, p)
                except ReplayError as e:
                    raise EngineBug(f"bmc trace for {p.name} does not replay: {e}") from e
                res = Result.HOLDS if p.kind is Kind.REACHABLE else Result.VIOLATED
                what = "witness" if p.kind is Kind.REACHABLE else "shortest"
                out[p.name] = Verdict(p.name, p.kind, res, ENGINE, f"{what}: {n_steps(d)}",
                                      trace=trace, stats={"depth": d})
            elif r == z3.unknown:
                unknown[p.name] = solver.reason_unknown()
            solver.pop()
        if deadline is not None and time.perf_counter() > deadline:
            break
        done = d
        if log:     # progress: the CLI prints it on a terminal
            n_open = sum(p.name not in out for p, _ in todo)
            log(f"bmc: depth {d} done, {n_open} open, {time.perf_counter() - t0:.0f}s")
        if all(p.name in out for p, _ in todo) or d == depth:
            break
        nxt = sm.fresh(f"s{d + 1}")
        rel, st = sm.step(states[d], nxt, f"t{d}")
        solver.add(rel, sm.canonical(nxt))
        states.append(nxt)
        labels.append(st)
    seconds = time.perf_counter() - t0
    capped = done < depth and not all(p.name in out for p, _ in todo)
    for p, _ in todo:
        if p.name in out:
            continue
        if capped:
            cap = f"time<={max_seconds:g}s"
            if p.kind is Kind.REACHABLE or done < 0:
                out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, cap,
                                      reason=f"--max-seconds {max_seconds:g} reached at "
                                      f"depth {done + 1}")
            else:
                out[p.name] = Verdict(p.name, p.kind, Result.HOLDS_BOUNDED, ENGINE,
                                      f"depth<={done}, {cap}",
                                      reason=f"no violation within {done} steps; "
                                      f"--max-seconds {max_seconds:g} reached")
            continue
        if p.name in unknown:
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE, f"depth<={depth}",
                                  reason=f"solver unknown: {unknown[p.name]}")
        elif p.kind is Kind.REACHABLE:
            out[p.name] = Verdict(p.name, p.kind, Result.INCONCLUSIVE, ENGINE,
                                  f"depth<={depth}", reason=f"no witness within {depth} steps")
        else:
            out[p.name] = Verdict(p.name, p.kind, Result.HOLDS_BOUNDED, ENGINE,
                                  f"depth<={depth}", reason=f"no violation within {depth} steps")
    for v in out.values():
        v.stats.setdefault("seconds", seconds)
    return [out[p.name] for p in props]
