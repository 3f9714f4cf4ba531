"""Explicit-state breadth-first exploration.

States are interned in a dict (state -> id); ids are handed out in BFS order, so the
list of states doubles as the queue, and a parent pointer plus the label of the step
that discovered each state give a shortest path to it. Safety and reachable
properties are checked on the fly, the first violation found for a property is a
shortest one. The transition relation is kept (three flat int arrays) only when asked,
for liveness and graph export.
"""

from __future__ import annotations

import sys
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .core import Action, Args, Kind, ModelError, Outcome, Property, State, Step, Trace

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Caps:
    """Limits on an exploration; hitting one makes every open verdict bounded."""

    max_states: int | None = None
    max_depth: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_states", "max_depth", "max_seconds"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be positive, got {v}")


@dataclass
class Hit:
    """Where a property was resolved during the search."""

    state: int                       # id of the violating / witnessing state
    via: tuple[int, int] | None = None  # (source id, label id) for a step violation


@dataclass
class Exploration:
    """Everything an exploration learned; engines above it turn this into verdicts."""

    model: Any
    labels: list[tuple[int, Args]]
    states: list[State]
    parent: array
    via: array
    depth: array
    expanded: int
    complete: bool
    cap: str | None
    hits: dict[str, Hit]
    fired: list[int]
    seconds: float
    transitions: int
    edges: tuple[array, array, array] | None = None
    initial: list[int] = field(default_factory=list)
    terminal: set[int] = field(default_factory=set)

    # ----------------------------------------------------------------- traces
    def label_of(self, lid: int) -> tuple[Action, Args]:
        ai, args = self.labels[lid]
        return self.model.actions[ai], args

    def path(self, sid: int) -> list[int]:
        """State ids from an initial state to ``sid`` along parent pointers."""
        out = []
        while sid != -1:
            out.append(sid)
            sid = self.parent[sid]
        out.reverse()
        return out

    def make_step(self, src: int, lid: int, dst: int) -> Step:
        action, args = self.label_of(lid)
        pre = self.states[src]
        outcome = action.explain(pre, args) if action.explain else None
        return Step(action.name, args, self.states[dst], outcome)

    def trace_to(self, sid: int, extra: Sequence[tuple[int, int, int]] = ()) -> Trace:
        """Shortest trace to ``sid`` followed by explicit (src, label, dst) steps."""
        ids = self.path(sid)
        steps = [self.make_step(a, self.via[b], b) for a, b in zip(ids, ids[1:], strict=False)]
        steps += [self.make_step(s, lid, d) for s, lid, d in extra]
        return Trace(self.states[ids[0]], tuple(steps))

    # ----------------------------------------------------------------- coverage
    def coverage(self) -> dict[str, int]:
        """How often each action fired (successors generated), in model order."""
        counts = {a.name: 0 for a in self.model.actions}
        for lid, n in enumerate(self.fired):
            counts[self.model.actions[self.labels[lid][0]].name] += n
        return counts

    # ----------------------------------------------------------------- graph
    def graph(self) -> Any:
        """The explored graph as a networkx DiGraph: int node ids, each edge carrying
        ``labels`` (every ``(action, args)`` between the two states) and ``label``
        (the first of them)."""
        import networkx as nx

        if self.edges is None:
            raise ModelError("the exploration was run without keeping the graph")
        g = nx.DiGraph()
        for sid in range(len(self.states)):
            g.add_node(sid, init=sid in self._init_set(), expanded=sid < self.expanded)
        src, dst, lab = self.edges
        names = [a.name for a in self.model.actions]
        for s, d, lid in zip(src, dst, lab, strict=True):
            ai, args = self.labels[lid]
            lbl = (names[ai], args)
            if g.has_edge(s, d):
                g.edges[s, d]["labels"].append(lbl)
            else:
                g.add_edge(s, d, label=lbl, labels=[lbl])
        return g

    def _init_set(self) -> set[int]:
        return set(self.initial)

    def successors(self) -> list[list[tuple[int, int]]]:
        """Adjacency lists ``sid -> [(dst, label id)]`` of the recorded edges."""
        if self.edges is None:
            raise ModelError("the exploration was run without keeping the graph")
        adj: list[list[tuple[int, int]]] = [[] for _ in range(len(self.states))]
        src, dst, lab = self.edges
        for s, d, lid in zip(src, dst, lab, strict=True):
            adj[s].append((d, lid))
        return adj


def label_table(model: Any) -> list[tuple[int, Args]]:
    return [(ai, args) for ai, a in enumerate(model.actions) for args in a.domain]


def explore(
    model: Any,
    properties: Iterable[Property] = (),
    caps: Caps | None = None,
    keep_graph: bool = False,
    progress: ProgressFn | None = None,
    progress_every: float = 2.0,
    stop_when_resolved: bool = True,
) -> Exploration:
    """Breadth-first search of ``model`` checking ``properties`` on the fly.

    Safety predicates and step predicates, reachable predicates and the deadlock check
    are evaluated here; liveness and recoverable properties need ``keep_graph`` and are
    judged afterwards (see :mod:`.liveness`). With ``stop_when_resolved`` the search
    stops as soon as every property given is resolved and no graph is wanted.
    """
    caps = caps or Caps()
    props = list(properties)
    actions: Sequence[Action] = model.actions
    labels = label_table(model)
    table = []
    for lid, (ai, args) in enumerate(labels):
        a = actions[ai]
        table.append((lid, a.guard, a.apply, args, a.environment))
    names = [a.name for a in actions]

    state_preds = [(p.name, p.predicate) for p in props if p.kind is Kind.SAFETY and p.predicate]
    step_preds = [(p.name, p.step) for p in props if p.kind is Kind.SAFETY and p.step]
    reach_preds = [(p.name, p.predicate) for p in props
                   if p.kind is Kind.REACHABLE and p.predicate]
    reach_steps = [(p.name, p.step) for p in props if p.kind is Kind.REACHABLE and p.step]
    want_deadlock = [p.name for p in props if p.kind is Kind.DEADLOCK]
    hits: dict[str, Hit] = {}
    open_count = (len(state_preds) + len(step_preds) + len(reach_preds) + len(reach_steps)
                  + len(want_deadlock))
    edge_preds = [(name, pred, False) for name, pred in step_preds] + [
        (name, pred, True) for name, pred in reach_steps]
    keep_graph = keep_graph or any(p.needs_graph for p in props)

    index: dict[State, int] = {}
    states: list[State] = []
    parent = array("l")
    via = array("l")
    depth = array("l")
    fired = [0] * len(labels)
    terminal_ids: set[int] = set()
    esrc, edst, elab = array("l"), array("l"), array("l")
    is_terminal = model.terminal

    def check_state(sid: int, s: State) -> None:
        nonlocal open_count
        for name, pred in state_preds:
            if name not in hits and not pred(s):
                hits[name] = Hit(sid)
                open_count -= 1
        for name, pred in reach_preds:
            if name not in hits and pred(s):
                hits[name] = Hit(sid)
                open_count -= 1

    initial = []
    for s in model.init_states():
        if s in index:
            continue
        sid = len(states)
        index[s] = sid
        states.append(s)
        parent.append(-1)
        via.append(-1)
        depth.append(0)
        initial.append(sid)
        check_state(sid, s)
    if not states:
        raise ModelError(f"model {model.name} has no initial state")

    t0 = time.perf_counter()
    last_report = t0
    cap: str | None = None
    head = 0
    max_states = caps.max_states
    max_depth = caps.max_depth
    deadline = t0 + caps.max_seconds if caps.max_seconds else None
    stopped_early = False
    limit = max_states if max_states is not None else sys.maxsize
    fast = not edge_preds and not keep_graph
    check_new = bool(state_preds or reach_preds)
    states_append, parent_append = states.append, parent.append
    via_append, depth_append = via.append, depth.append
    while head < len(states):
        if stop_when_resolved and props and open_count == 0 and not keep_graph:
            stopped_early = True
            break
        if (head & 1023) == 0:
            now = time.perf_counter()
            if deadline is not None and now > deadline:
                cap = f"time<={caps.max_seconds:g}s"
                break
            if progress is not None and now - last_report >= progress_every:
                last_report = now
                progress({
                    "states": len(states), "queue": len(states) - head,
                    "rate": head / max(now - t0, 1e-9), "depth": depth[head],
                    "seconds": now - t0,
                })
        sid = head
        s = states[sid]
        d = depth[sid]
        if is_terminal(s):
            terminal_ids.add(sid)
            head += 1
            continue
        if max_depth is not None and d >= max_depth:
            # A non-terminal state at the depth cap is left unexpanded.
            cap = f"depth<={max_depth}"
            break
        enabled_progress = False
        if fast:
            # The common case (no step predicates, no graph): a tight loop.
            for lid, guard, apply, args, env in table:
                if guard(s, args):
                    if not env:
                        enabled_progress = True
                    t = apply(s, args)
                    fired[lid] += 1
                    if t not in index:
                        if len(states) >= limit:
                            cap = f"states<={max_states}"
                            break
                        index[t] = len(states)
                        if check_new:
                            check_state(len(states), t)
                        states_append(t)
                        parent_append(sid)
                        via_append(lid)
                        depth_append(d + 1)
        else:
            for lid, guard, apply, args, env in table:
                if not guard(s, args):
                    continue
                if not env:
                    enabled_progress = True
                t = apply(s, args)
                fired[lid] += 1
                tid = index.get(t)
                if tid is None:
                    if len(states) >= limit:
                        cap = f"states<={max_states}"
                        break
                    tid = len(states)
                    index[t] = tid
                    states_append(t)
                    parent_append(sid)
                    via_append(lid)
                    depth_append(d + 1)
                    if check_new:
                        check_state(tid, t)
                for name, pred, want in edge_preds:
                    if name not in hits and pred(s, (names[labels[lid][0]], args), t) == want:
                        hits[name] = Hit(tid, (sid, lid))
                        open_count -= 1
                if keep_graph:
                    esrc.append(sid)
                    edst.append(tid)
                    elab.append(lid)
        if cap is not None:
            break
        if not enabled_progress:
            for name in want_deadlock:
                if name not in hits:
                    hits[name] = Hit(sid)
                    open_count -= 1
        head += 1

    seconds = time.perf_counter() - t0
    complete = cap is None and not stopped_early and head == len(states)
    return Exploration(
        model=model, labels=labels, states=states, parent=parent, via=via, depth=depth,
        expanded=head, complete=complete, cap=cap, hits=hits, fired=fired, seconds=seconds,
        transitions=sum(fired), edges=(esrc, edst, elab) if keep_graph else None,
        initial=initial, terminal=terminal_ids,
    )


def successors(model: Any, state: State) -> list[tuple[str, Args, State]]:
    """Every enabled step from ``state``: ``(action name, args, successor)``."""
    out = []
    for a in model.actions:
        for args in a.domain:
            if a.guard(state, args):
                out.append((a.name, args, a.apply(state, args)))
    return out


def outcome_of(action: Action, state: State, args: Args) -> Outcome | None:
    return action.explain(state, args) if action.explain else None
