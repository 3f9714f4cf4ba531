"""Driving the guest_memfd model step by step, like a selftest."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pytest

from gmemcheck import properties
from gmemcheck.checker.core import Outcome
from gmemcheck.cli import main
from gmemcheck.model import apply_overrides, build, load_preset
from gmemcheck.runner import PresetRun, compute_preset


def model(preset: str, *sets: str) -> Any:
    return build(apply_overrides(load_preset(preset), list(sets)))


@functools.cache
def pinned_run(preset: str) -> PresetRun:
    """The pinned run of a built-in preset (``gmemcheck check --config PRESET``: bfs,
    every property, no caps), computed once per test session and shared by the tests
    that read it (the verdict matrix, the BMC shortest lengths). Its trace files are
    pending (see :func:`gmemcheck.runner.write_run`); treat the run as read-only."""
    from gmemcheck.checker.explicit import Caps

    return compute_preset(load_preset(preset), None, "bfs", Caps())


_MINED: dict[str, tuple[list[Any], int]] = {}


def mined_once(mined_lemmas: Callable[..., tuple[list[Any], int]]
               ) -> Callable[..., tuple[list[Any], int]]:
    """``symbolic.kind.mined_lemmas`` computed once per session for each model (by its
    identity: preset, axes, bounds) and state cap: the k-induction tests mine the same
    small models again and again. With the run's time cap (``kind.DEADLINE``) set, or
    plug-ins loaded, it is the original, so what a deadline does is still tested."""
    from gmemcheck.symbolic import kind

    def cached(model: Any, max_states: int = kind.MINE_MAX_STATES) -> tuple[list[Any], int]:
        if kind.DEADLINE[0] is not None or model.plugin_ids:
            return mined_lemmas(model, max_states)
        key = json.dumps([model.identity(), max_states], sort_keys=True)
        if key not in _MINED:
            _MINED[key] = mined_lemmas(model, max_states)
        lemmas, states = _MINED[key]
        return list(lemmas), states

    return cached


class Driver:
    """Apply labelled steps from the initial state, asserting each is enabled, and keep
    the states, outcomes and the safety properties broken so far."""

    def __init__(self, m: Any) -> None:
        self.m = m
        self.acts = {a.name: a for a in m.actions}
        self.s = next(iter(m.init_states()))
        self.states = [self.s]
        self.outcomes: list[Outcome | None] = []
        self.labels: list[tuple[str, tuple[Any, ...]]] = []
        self.props = {p.name: p for p in properties.for_model(m)}

    def enabled(self, name: str, *args: Any) -> bool:
        a = self.acts[name]
        return args in a.domain and a.guard(self.s, args)

    def __call__(self, name: str, *args: Any) -> Outcome | None:
        a = self.acts[name]
        assert args in a.domain, f"{name}{args} not in domain"
        assert not self.m.terminal(self.s), f"{name}{args}: state is terminal"
        assert a.guard(self.s, args), f"{name}{args} is not enabled"
        out = a.explain(self.s, args) if a.explain else None
        t = a.apply(self.s, args)
        self.s = t
        self.states.append(t)
        self.outcomes.append(out)
        self.labels.append((name, args))
        return out

    def broken(self) -> set[str]:
        """Safety properties violated by some state or step of the path so far."""
        bad = set()
        for name, p in self.props.items():
            if p.kind.value != "safety":
                continue
            if p.predicate and any(not p.predicate(s) for s in self.states):
                bad.add(name)
            if p.step and any(not p.step(a, lbl, b) for a, lbl, b in
                              zip(self.states, self.labels, self.states[1:], strict=False)):
                bad.add(name)
        return bad


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``gmemcheck *argv`` in this process: exit code, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """The one line an input or I/O error prints: no traceback, named after the tool."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("gmemcheck")
    return lines[0]
