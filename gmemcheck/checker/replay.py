"""Replay: re-execute a trace step by step through the explicit model.

Every counterexample an engine reports is replayed before it is shown, and
``gmemcheck replay FILE`` does the same for a trace read from disk. A step that is not
enabled, or whose successor differs from the recorded state, is rejected with a
message naming the step; then the property is re-checked on the replayed path.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .core import Kind, Outcome, Property, State, Trace, changed_fields


class ReplayError(Exception):
    """The trace does not replay; the message names the step and what differs."""


def replay(model: Any, trace: Trace, prop: Property | None = None) -> None:
    """Raise :class:`ReplayError` unless ``trace`` replays and (if ``prop`` is given)
    shows what it claims: a violation for safety, liveness, deadlock and recoverable
    properties, a witness for a reachable one."""
    actions = {a.name: a for a in model.actions}
    if trace.origin == "init":
        inits = set(model.init_states())
        if trace.init not in inits:
            raise ReplayError("state 0 is not an initial state of this model")
    s = trace.init
    for i, st in enumerate(trace.steps, start=1):
        a = actions.get(st.action)
        if a is None:
            raise ReplayError(f"step {i}: unknown action {st.action!r}")
        if st.args not in a.domain:
            raise ReplayError(f"step {i}: {st.action}{st.args} is outside the argument domain")
        call = a.label(st.args)
        if model.terminal(s):
            raise ReplayError(f"step {i}: {call} taken from a terminal state")
        if not a.guard(s, st.args):
            raise ReplayError(f"step {i}: {call} is not enabled in state {i - 1}")
        t = a.apply(s, st.args)
        if t != st.state:
            diff = ", ".join(sorted(changed_fields(t, st.state)))
            raise ReplayError(f"step {i}: {call} leads to a different state (fields {diff})")
        if st.outcome is not None:      # recorded: the return value and the ! lines
            _same_outcome(i, call, st.outcome, a.explain(s, st.args) if a.explain else None)
        s = t
    states = trace.states
    if trace.loop is not None:
        if not 0 <= trace.loop < len(states):
            raise ReplayError(f"loop index {trace.loop} is out of range")
        if trace.stutter:
            if trace.loop != len(states) - 1:
                raise ReplayError("a stuttering end must loop on the last state")
            if _enabled(model, states[-1]):
                raise ReplayError("the trace claims to stutter, but a step is enabled at its end")
        elif states[-1] != states[trace.loop]:
            raise ReplayError(f"the last step does not return to state {trace.loop}")
    if prop is not None:
        _recheck(model, trace, prop)


def _same_outcome(i: int, call: str, got: Outcome, want: Outcome | None) -> None:
    want = want or Outcome()
    if got.ret != want.ret:
        raise ReplayError(f"step {i}: {call} returns {want.ret}, the trace says {got.ret}")
    if tuple(got.events) != tuple(want.events):
        extra = [e for e in got.events if e not in want.events]
        missing = [e for e in want.events if e not in got.events]
        what = f"claims {extra[0]!r}" if extra else f"omits {missing[0]!r}" if missing \
            else "lists them in another order"
        raise ReplayError(f"step {i}: {call}: the trace's side effects differ (it {what})")


def _enabled(model: Any, s: State, progress_only: bool = False) -> bool:
    return any(a.guard(s, args) for a in model.actions if not (progress_only and a.environment)
               for args in a.domain)


def _recheck(model: Any, trace: Trace, prop: Property) -> None:
    states = trace.states
    name = prop.name
    if prop.kind is Kind.SAFETY:
        bad = prop.predicate is not None and any(not prop.predicate(s) for s in states)
        if not bad and prop.step is not None:
            pre = states[:-1]
            bad = any(not prop.step(p, (st.action, st.args), st.state)
                      for p, st in zip(pre, trace.steps, strict=True))
        if not bad:
            raise ReplayError(f"the replayed trace does not violate {name}")
    elif prop.kind is Kind.REACHABLE:
        if prop.predicate is not None:
            ok = prop.predicate(states[-1])
        else:
            assert prop.step is not None and trace.steps
            last = trace.steps[-1]
            ok = prop.step(states[-2], (last.action, last.args), last.state)
        if not ok:
            raise ReplayError(f"the replayed trace does not end in a witness of {name}")
    elif prop.kind is Kind.DEADLOCK:
        last = states[-1]
        if model.terminal(last) or _enabled(model, last, progress_only=True):
            raise ReplayError(f"the replayed trace does not end in a deadlock ({name})")
    elif prop.kind is Kind.LIVENESS:
        _recheck_lasso(model, trace, prop)
    elif prop.kind is Kind.RECOVERABLE:
        assert prop.predicate is not None
        if model.terminal(states[-1]):
            raise ReplayError("the trace ends in a terminal state, which has no future to judge")
        if _can_reach(model, states[-1], prop.predicate, prop.avoid):
            raise ReplayError(f"from the last state of the trace a goal state of {name} "
                              "is still reachable")


def _recheck_lasso(model: Any, trace: Trace, prop: Property) -> None:
    assert prop.predicate is not None
    if trace.loop is None:
        raise ReplayError(f"a liveness counterexample for {prop.name} must be a lasso")
    states = trace.states
    q = prop.predicate
    loop = trace.loop
    # Some state at or before the loop satisfies the trigger (the initial state, for
    # "eventually"), and the goal is false from there on, the cycle included.
    if prop.trigger is None:
        candidates = [0]
    else:
        candidates = [i for i in range(loop + 1) if prop.trigger(states[i])]
        if not candidates:
            raise ReplayError(f"the trigger of {prop.name} never holds before the loop")
    if not any(all(not q(states[j]) for j in range(i, len(states))) for i in candidates):
        raise ReplayError(f"the goal of {prop.name} holds after its trigger on this trace")
    if trace.stutter:
        if model.terminal(states[-1]):
            raise ReplayError("the trace ends in a terminal state, "
                              "which has no liveness obligation")
        return
    cycle_states = states[loop:-1]
    cycle_labels = {(st.action, st.args) for st in trace.steps[loop:]}
    for a_name in prop.fairness:
        action = next((a for a in model.actions if a.name == a_name), None)
        if action is None:
            raise ReplayError(f"fairness names unknown action {a_name!r}")
        for args in action.domain:
            if (a_name, args) in cycle_labels:
                continue
            if all(action.guard(s, args) for s in cycle_states):
                raise ReplayError(f"the loop is unfair to {action.label(args)}: "
                                  "always enabled, never taken")


def _can_reach(model: Any, start: State, goal: Any, avoid: tuple[str, ...] = (),
               limit: int = 2_000_000) -> bool:
    seen = {start}
    dq = deque([start])
    while dq:
        s = dq.popleft()
        if goal(s):
            return True
        if model.terminal(s):
            continue
        for a in model.actions:
            if a.name in avoid:
                continue
            for args in a.domain:
                if a.guard(s, args):
                    t = a.apply(s, args)
                    if t not in seen:
                        if len(seen) >= limit:
                            raise ReplayError("cannot re-check recoverability: too many states")
                        seen.add(t)
                        dq.append(t)
    return False
