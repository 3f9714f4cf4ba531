"""Liveness and recoverability on an explored state graph.

``P leads-to Q`` under weak fairness of a set F of actions is violated exactly when,
from a reachable state satisfying ``P and not Q``, the system can run forever through
``not Q`` states while treating every action of F fairly. In the finite graph that is
a strongly connected component C of the ``not Q`` region, reachable from such a state,
that either

* has an internal edge (a real cycle) and, for every fair action ``a``, either an
  ``a``-edge inside C or a state of C where ``a`` is disabled (a cycle through all of C
  then takes ``a`` infinitely often or finds it not continuously enabled); or
* is a single state with no enabled step at all that the model does not call terminal
  (the behaviour stutters there forever: a deadlock also breaks an eventuality).

States the model calls terminal (the host oopsed) end a behaviour without a liveness
obligation; their cause is the business of safety properties.

The violation is reported as a lasso: a shortest stem from an initial state through a
``P`` state into C, then a cycle inside C that visits every fairness witness.

``AG EF Q`` (recoverable) is violated by any reachable non-terminal state from which
no ``Q`` state is reachable (optionally without some actions); the shortest path to
one is the counterexample.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence

from .accel import _core
from .core import Kind, Property, Result, Trace, Verdict
from .explicit import Exploration

# The C closure (_core.c:reach_back) sweeps the graph this many times before it builds
# the reverse graph; a test sets 0 to run the reverse search.
REACH_SWEEPS = 24


def _fair_labels(exp: Exploration, names: tuple[str, ...]) -> list[int]:
    """Label ids under weak fairness: every argument tuple of every named action is a
    separate weakly fair step (each held reference is eventually dropped, not merely
    some reference)."""
    idx = {a.name: i for i, a in enumerate(exp.model.actions)}
    missing = [n for n in names if n not in idx]
    if missing:
        raise ValueError(f"fairness names unknown actions: {', '.join(missing)}")
    wanted = {idx[n] for n in names}
    return [lid for lid, (ai, _) in enumerate(exp.labels) if ai in wanted]


def check_leads_to(exp: Exploration, prop: Property, engine: str = "bfs") -> Verdict:
    """Judge a liveness property on the explored graph (see the module docstring)."""
    assert prop.kind is Kind.LIVENESS and prop.predicate is not None
    if exp.csr is None:
        raise ValueError("the exploration was run without keeping the graph")
    off, dst, lab = exp.csr
    n = len(exp.states)
    expanded = exp.expanded
    fair = _fair_labels(exp, prop.fairness)

    q = exp.mark(prop.name, "q", prop.predicate)
    if prop.trigger is None:
        sources = [i for i in exp.initial if not q[i]]
    else:
        trigger = prop.trigger
        p = exp.mark(prop.name, "trigger", lambda s: trigger(s) and not prop.predicate(s))
        sources = [i for i in range(n) if p[i] and not q[i]]

    # The not-Q region reachable from the sources through not-Q states; only expanded
    # states can be judged (a capped search leaves the frontier unknown).
    inside = bytearray(n)
    region: list[int] = []
    dq = deque(i for i in sources if i < expanded)
    for i in dq:
        inside[i] = 1
    region.extend(dq)
    while dq:
        u = dq.popleft()
        for e in range(off[u], off[u + 1]):
            v = dst[e]
            if not inside[v] and not q[v] and v < expanded:
                inside[v] = 1
                region.append(v)
                dq.append(v)

    fair_sccs: list[set[int]] = []
    for comp in _sccs(region, inside, off, dst):
        if _is_fair(comp, off, dst, lab, fair, exp):
            fair_sccs.append(comp)

    bound = "exhaustive" if exp.complete else (exp.cap or "partial")
    stats = {"states": n, "region": len(region), "fair_sccs": len(fair_sccs)}
    if not fair_sccs:
        result = Result.HOLDS if exp.complete else Result.HOLDS_BOUNDED
        return Verdict(prop.name, prop.kind, result, engine, bound, stats=stats,
                       reason="" if exp.complete else f"graph explored up to {bound}")
    target: dict[int, int] = {}
    for ci, comp in enumerate(fair_sccs):
        for sid in comp:
            target[sid] = ci
    adj = _Adj(off, dst, lab)
    trace = _lasso(exp, adj, sources, inside, target, fair_sccs, fair)
    return Verdict(prop.name, prop.kind, Result.VIOLATED, engine, bound, trace=trace, stats=stats)


class _Adj:
    """``adj[u]``: the ``(dst, label id)`` pairs of state ``u`` in a CSR graph."""

    def __init__(self, off: Sequence[int], dst: Sequence[int], lab: Sequence[int]) -> None:
        self.off, self.dst, self.lab = off, dst, lab

    def __getitem__(self, u: int) -> list[tuple[int, int]]:
        a, b = self.off[u], self.off[u + 1]
        return list(zip(self.dst[a:b], self.lab[a:b], strict=True))


def _sccs(nodes: list[int], inside: bytearray, off: Sequence[int], dst: Sequence[int]
          ) -> list[set[int]]:
    """Strongly connected components of the subgraph induced by ``inside``
    (iterative Tarjan, so deep graphs do not hit the recursion limit)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[set[int]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work = [(root, off[root])]
        while work:
            u, e = work[-1]
            end = off[u + 1]
            while e < end:
                v = dst[e]
                e += 1
                if not inside[v]:
                    continue
                if v not in index:
                    work[-1] = (u, e)
                    index[v] = low[v] = counter
                    counter += 1
                    stack.append(v)
                    on_stack.add(v)
                    work.append((v, off[v]))
                    break
                if v in on_stack and index[v] < low[u]:
                    low[u] = index[v]
            else:
                work.pop()
                if work:
                    w = work[-1][0]
                    if low[u] < low[w]:
                        low[w] = low[u]
                if low[u] == index[u]:
                    comp = set()
                    while True:
                        x = stack.pop()
                        on_stack.discard(x)
                        comp.add(x)
                        if x == u:
                            break
                    out.append(comp)
    return out


def _is_fair(comp: set[int], off: Sequence[int], dst: Sequence[int], lab: Sequence[int],
             fair: list[int], exp: Exploration) -> bool:
    if len(comp) == 1:
        (u,) = comp
        a, b = off[u], off[u + 1]
        if a == b:
            # No enabled step: stutters forever unless the model calls it terminal.
            return u not in exp.terminal
        if u not in dst[a:b]:
            return False
    inner = {lab[e] for u in comp for e in range(off[u], off[u + 1]) if dst[e] in comp}
    for f in fair:
        if f in inner:
            continue
        if all(f in lab[off[u]:off[u + 1]] for u in comp):
            return False
    return True


def _enabled(u: int, adj: _Adj) -> set[int]:
    return {lid for _, lid in adj[u]}


def _lasso(exp: Exploration, adj: _Adj, sources: list[int],
           region: bytearray, target: dict[int, int], sccs: list[set[int]],
           fair: list[int]) -> Trace:
    """Shortest stem (initial state -> a source -> inside the region -> a fair SCC)
    followed by a cycle through that SCC visiting one witness per fair action."""
    source_set = set(sources)
    # BFS over (state, phase): phase 0 roams the whole graph until it reaches a source,
    # phase 1 stays inside the region until it reaches a fair SCC.
    start = [(i, 0) for i in exp.initial]
    prev: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {}
    dq: deque[tuple[int, int]] = deque()
    for node in start:
        prev[node] = None
        dq.append(node)
        if node[0] in source_set and (node[0], 1) not in prev:
            prev[(node[0], 1)] = (node, -1)
            dq.append((node[0], 1))
    goal: tuple[int, int] | None = None
    while dq:
        node = dq.popleft()
        u, phase = node
        if phase == 1 and u in target:
            goal = node
            break
        for v, lid in adj[u]:
            if phase == 0:
                nxt = (v, 0)
                if nxt not in prev:
                    prev[nxt] = (node, lid)
                    dq.append(nxt)
                if v in source_set and (v, 1) not in prev:
                    prev[(v, 1)] = (nxt, -1)
                    dq.append((v, 1))
            elif region[v] and (v, 1) not in prev:
                prev[(v, 1)] = (node, lid)
                dq.append((v, 1))
    assert goal is not None, "a fair SCC was found but no stem reaches it"
    stem: list[tuple[int, int, int]] = []  # (src, lid, dst)
    node = goal
    while prev[node] is not None:
        back = prev[node]
        assert back is not None
        pnode, lid = back
        if lid != -1:
            stem.append((pnode[0], lid, node[0]))
        node = pnode
    stem.reverse()
    init = node[0]
    entry = goal[0]
    comp = sccs[target[entry]]

    steps = [exp.make_step(s, lid, d) for s, lid, d in stem]
    loop_index = len(steps)
    if not adj[entry]:
        return Trace(exp.states[init], tuple(steps), loop=loop_index, stutter=True)

    # Witnesses: for each fair label, a state of the SCC where it is disabled if there
    # is one (visiting it is enough), else an edge of it inside the SCC.
    waypoints: list[tuple[int, int | None, int | None]] = []  # (state, lid, dst)
    for f in fair:
        off = next((u for u in sorted(comp) if f not in _enabled(u, adj)), None)
        if off is not None:
            if off not in (w[0] for w in waypoints):
                waypoints.append((off, None, None))
            continue
        edge = next((u, lid, v) for u in sorted(comp) for v, lid in adj[u]
                    if lid == f and v in comp)
        waypoints.append(edge)
    cycle: list[tuple[int, int, int]] = []
    cur = entry
    for u, lid, v in waypoints:
        cycle += _path_in(adj, comp, cur, u)
        cur = u
        if lid is not None and v is not None:
            cycle.append((u, lid, v))
            cur = v
    if cur != entry or not cycle:
        if cur == entry:
            # Need at least one step: take any edge inside the SCC and come back.
            lid, v = next((lid, v) for v, lid in adj[entry] if v in comp)
            cycle.append((entry, lid, v))
            cur = v
        cycle += _path_in(adj, comp, cur, entry)
    steps += [exp.make_step(s, lid, d) for s, lid, d in cycle]
    return Trace(exp.states[init], tuple(steps), loop=loop_index)


def _path_in(adj: _Adj, comp: set[int], a: int, b: int
             ) -> list[tuple[int, int, int]]:
    if a == b:
        return []
    prev: dict[int, tuple[int, int]] = {}
    dq = deque([a])
    seen = {a}
    while dq:
        u = dq.popleft()
        for v, lid in adj[u]:
            if v in comp and v not in seen:
                seen.add(v)
                prev[v] = (u, lid)
                if v == b:
                    out = []
                    while v != a:
                        pu, plid = prev[v]
                        out.append((pu, plid, v))
                        v = pu
                    out.reverse()
                    return out
                dq.append(v)
    raise AssertionError("states of one SCC are not mutually reachable")


def check_recoverable(exp: Exploration, prop: Property, engine: str = "bfs") -> Verdict:
    """AG EF predicate: every reachable (expanded) state can reach a predicate state."""
    assert prop.kind is Kind.RECOVERABLE and prop.predicate is not None
    if exp.csr is None:
        raise ValueError("the exploration was run without keeping the graph")
    off, dst, lab = exp.csr
    n = len(exp.states)
    avoid_actions = {i for i, a in enumerate(exp.model.actions) if a.name in prop.avoid}
    keep = bytearray(0 if ai in avoid_actions else 1 for ai, _ in exp.labels)
    good = bytearray(exp.mark(prop.name, "goal", prop.predicate))
    if _core is not None and len(off) == n + 1:
        # the same closure in C (checker/_core.c:reach_back): at four pages per huge
        # folio the graph has hundreds of millions of edges
        _core.reach_back(off, dst, lab, bytes(keep), good, REACH_SWEEPS)
    else:
        _reach_back(off, dst, lab, keep, good, n)
    return _recoverable_verdict(exp, prop, engine, good, off, dst, n)


def _reach_back(off: Sequence[int], dst: Sequence[int], lab: Sequence[int], keep: bytearray,
                good: bytearray, n: int) -> None:
    """Marks good every state with a path of kept edges to a good state."""
    # The reverse graph (without avoided steps) in CSR form: count, prefix-sum, fill.
    rcount = array("i", bytes(4 * (n + 1)))
    src = array("i")
    for u in range(len(off) - 1):
        src.extend([u] * (off[u + 1] - off[u]))
    for e, v in enumerate(dst):
        if keep[lab[e]]:
            rcount[v + 1] += 1
    for i in range(n):
        rcount[i + 1] += rcount[i]
    fill = array("i", rcount)
    rsrc = array("i", bytes(4 * rcount[n]))
    for e, v in enumerate(dst):
        if keep[lab[e]]:
            rsrc[fill[v]] = src[e]
            fill[v] += 1
    dq = deque(i for i in range(n) if good[i])
    while dq:
        v = dq.popleft()
        for j in range(rcount[v], rcount[v + 1]):
            u = rsrc[j]
            if not good[u]:
                good[u] = 1
                dq.append(u)


def _recoverable_verdict(exp: Exploration, prop: Property, engine: str, good: bytearray,
                         off: Sequence[int], dst: Sequence[int], n: int) -> Verdict:
    bound = "exhaustive" if exp.complete else (exp.cap or "partial")
    # ids are in BFS order, so the first bad id has a shortest path. A state on the
    # frontier of a capped search may still recover through unexplored states. A
    # terminal state (the host oopsed) has no future to judge: safety properties
    # report how it was reached.
    bad = None
    i = good.find(0)
    while 0 <= i < exp.expanded:
        if i not in exp.terminal:
            bad = i
            break
        i = good.find(0, i + 1)
    if bad is None:
        result = Result.HOLDS if exp.complete else Result.HOLDS_BOUNDED
        return Verdict(prop.name, prop.kind, result, engine, bound, stats={"states": n})
    if not exp.complete and not _closed_under_expansion(off, dst, bad, exp.expanded):
        return Verdict(prop.name, prop.kind, Result.HOLDS_BOUNDED, engine, bound,
                       stats={"states": n}, reason="a stuck state may recover beyond the cap")
    trace = exp.trace_to(bad)
    return Verdict(prop.name, prop.kind, Result.VIOLATED, engine, bound, trace=trace,
                   stats={"states": n}, reason="no path from the last state reaches the goal")


def _closed_under_expansion(off: Sequence[int], dst: Sequence[int], start: int,
                            expanded: int) -> bool:
    """Every state reachable from ``start`` was expanded (so its future is known)."""
    seen = {start}
    dq = deque([start])
    while dq:
        u = dq.popleft()
        if u >= expanded:
            return False
        for e in range(off[u], off[u + 1]):
            v = dst[e]
            if v not in seen:
                seen.add(v)
                dq.append(v)
    return True
