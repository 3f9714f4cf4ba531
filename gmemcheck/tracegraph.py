"""The readable graph of one trace: its path plus the immediate alternatives.

``gmemcheck graph --around-trace FILE`` draws the states of a counterexample and, at
each of them, every other enabled step and where it leads, one level deep. Nodes are
labelled with what changed (the model's ``describe()`` items that differ from the
state before), edges with the kernel call, so the picture says why the path goes the
way it does: which other calls were possible at each point, which of them would also
have broken the property, which end the run. Nothing is explored beyond one step off
the path, so this works on models far too big for the whole-graph export.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import networkx as nx

from .checker.core import Kind, Property, Trace

MAX_CHANGES = 8


def _diff(model: Any, a: Any, b: Any) -> list[str]:
    da, db = model.describe(a), model.describe(b)
    keys = list(da) + [k for k in db if k not in da]
    return [f"{k}: {da.get(k, '-')} -> {db.get(k, '-')}" for k in keys
            if da.get(k, "-") != db.get(k, "-")]


def _label(head: str, changes: list[str]) -> str:
    shown = changes[:MAX_CHANGES]
    if len(changes) > MAX_CHANGES:
        shown.append(f"... {len(changes) - MAX_CHANGES} more")
    if not changes:
        shown = ["no change"]
    return "\n".join([head] + shown)


def _breaks(prop: Property | None, pre: Any, label: tuple[str, Any], post: Any) -> bool:
    if prop is None or prop.kind is not Kind.SAFETY:
        return False
    if prop.predicate is not None and not prop.predicate(post):
        return True
    return prop.step is not None and not prop.step(pre, label, post)


def successors(model: Any, s: Any, skip: tuple[str, Any] | None = None
               ) -> Iterator[tuple[Any, Any, Any]]:
    """Every enabled step at ``s`` but ``skip`` (an ``(action, args)`` label), as
    ``(action, args, successor)``, in the model's action order."""
    if model.terminal(s):
        return
    for a in model.actions:
        for args in a.domain:
            if (a.name, args) != skip and a.guard(s, args):
                yield a, args, a.apply(s, args)


def alternatives(model: Any, trace: Trace, prop: Property | None, i: int
                 ) -> list[dict[str, Any]]:
    """The other steps enabled where step ``i`` (1-based) of ``trace`` was taken: for
    each its call, whether it reaches the same state as step ``i``, breaks ``prop``,
    or ends the run, and the items it changes."""
    s = trace.states[i - 1]
    st = trace.steps[i - 1]
    out = []
    for a, args, t in successors(model, s, (st.action, st.args)):
        out.append({"call": a.label(args), "same": t == st.state,
                    "breaks": _breaks(prop, s, (a.name, args), t),
                    "terminal": bool(model.terminal(t)), "changes": _diff(model, s, t)})
    return out


def around_trace(model: Any, trace: Trace, prop: Property | None = None) -> Any:
    """A networkx DiGraph: the path ``p0..pn`` and, for each path state, one node per
    other successor (``p<i>.<j>``). Node attributes: ``label``, ``kind`` (``init``,
    ``path``, ``alt``), ``violates``, ``terminal``; edge attributes: ``label``,
    ``on_trace``."""
    g = nx.DiGraph()
    states = trace.states
    by_name = {a.name: a for a in model.actions}
    index = {}
    for i, s in enumerate(states):
        index.setdefault(s, i)
    for i, s in enumerate(states):
        if i == 0:
            head = "initial state" if trace.origin == "init" else "arbitrary start state"
            lab = head
        else:
            lab = _label(f"state {i}", _diff(model, states[i - 1], s))
        viol = i > 0 and _breaks(prop, states[i - 1], (trace.steps[i - 1].action,
                                                       trace.steps[i - 1].args), s)
        if i == len(states) - 1 and prop is not None and trace.origin == "init" \
                and prop.kind is Kind.SAFETY:
            viol = True
        if f"p{index[s]}" not in g:
            g.add_node(f"p{index[s]}", label=lab, kind="init" if i == 0 else "path",
                       violates=viol, terminal=bool(model.terminal(s)))
    for i, st in enumerate(trace.steps):
        a = by_name.get(st.action)
        lab = a.label(st.args) if a else f"{st.action}{st.args}"
        u, v = f"p{index[states[i]]}", f"p{index[st.state]}"
        loop = trace.loop is not None and i == len(trace.steps) - 1 and not trace.stutter
        g.add_edge(u, v, label=f"{i + 1}. {lab}" + (" (loop)" if loop else ""),
                   on_trace=True)
    for i, s in enumerate(states):
        u = f"p{index[s]}"
        if index[s] != i or model.terminal(s):
            continue
        taken = (trace.steps[i].action, trace.steps[i].args) if i < len(trace.steps) else None
        j = 0
        for a, args, t in successors(model, s, taken):
            call = a.label(args)
            if t in index:                    # back onto the path
                v = f"p{index[t]}"
                if g.has_edge(u, v):
                    g.edges[u, v]["label"] += f"\nalso: {call}"
                else:
                    g.add_edge(u, v, label=call, on_trace=False)
                continue
            j += 1
            v = f"p{i}.{j}"
            g.add_node(v, label=_label("", _diff(model, s, t)).lstrip("\n"), kind="alt",
                       violates=_breaks(prop, s, (a.name, args), t),
                       terminal=bool(model.terminal(t)))
            g.add_edge(u, v, label=call, on_trace=False)
    return g


def to_dot(g: Any, title: str) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', "'").replace("\n", "\\l") + '\\l"'

    lines = ["digraph gmemcheck_trace {", "  rankdir=TB;",
             f"  labelloc=t; label={q(title)};",
             "  node [shape=box, fontsize=9, fontname=\"monospace\"];",
             "  edge [fontsize=9, fontname=\"monospace\"];"]
    for n, d in g.nodes(data=True):
        attrs = {"label": q(d["label"])}
        if d["kind"] == "alt":
            attrs.update(style='"dashed,rounded"', color='"#888888"')
        else:
            attrs.update(style='"filled,bold"', fillcolor='"#ffe39a"')
        if d["violates"]:
            attrs.update(style='"filled,bold"', fillcolor='"#f6c4bf"', color='"#cc0000"')
        if d["terminal"]:
            attrs["peripheries"] = "2"
        lines.append(f"  \"{n}\" [{', '.join(f'{k}={v}' for k, v in attrs.items())}];")
    for u, v, d in g.edges(data=True):
        style = 'color="#cc3300", penwidth=2.2' if d["on_trace"] else \
            'color="#999999", style=dashed'
        lines.append(f"  \"{u}\" -> \"{v}\" [label={q(d['label'])}, {style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def summary(g: Any) -> Mapping[str, int]:
    kinds = [d["kind"] for _, d in g.nodes(data=True)]
    return {"path": kinds.count("path") + kinds.count("init"), "alternatives": kinds.count("alt"),
            "violating": sum(1 for _, d in g.nodes(data=True) if d["violates"])}
