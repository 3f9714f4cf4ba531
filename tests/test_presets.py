"""The verdict matrix: every built-in preset explores to completion with its pinned
distinct-state count, every verdict matches its pinned expectation, the committed
counterexamples are exactly the current shortest traces, and each replays."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from helpers import pinned_run

from gmemcheck import properties
from gmemcheck.checker.replay import replay
from gmemcheck.model import build, builtin_presets, load_preset
from gmemcheck.model.config import configs_dir
from gmemcheck.runner import load_counterexample, write_run

ROOT = configs_dir().parent
COMMITTED = ROOT / "counterexamples"
PRESETS = builtin_presets()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path]:
    out = tmp_path_factory.mktemp("cx")
    runs = {}
    for p in PRESETS:
        # each preset is explored once per session (helpers.pinned_run, shared with
        # the BMC test); write a copy so the shared run keeps its pending traces
        run = copy.copy(pinned_run(p))
        run.cells = [copy.copy(c) for c in run.cells]
        run.pending, run.written = list(run.pending), []
        write_run(run, out)
        runs[p] = run
    return runs, out


def test_the_issue_presets_are_built_in():
    need = {"mainline-6.13", "mainline-latest", "pb-bitmap", "rfc-thp", "rfc-thp-zeroing",
            "always-huge-reject", "always-huge-zero", "hugetlb", "thp-folio-private"}
    assert need <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_explores_completely_to_its_pinned_state_count(matrix, preset):
    run = matrix[0][preset]
    cfg = load_preset(preset)
    assert run.complete
    assert cfg.expect_states is not None
    assert run.states == cfg.expect_states


@pytest.mark.parametrize("preset", PRESETS)
def test_every_applicable_property_has_its_pinned_verdict(matrix, preset):
    run = matrix[0][preset]
    cfg = load_preset(preset)
    applicable = properties.applicable(build(cfg))
    assert set(cfg.expect_verdicts) == applicable
    got = {c.property: c.outcome for c in run.cells if c.outcome != "n/a"}
    assert got == cfg.expect_verdicts


# Goal properties that every built-in design keeps; a test-only mutant breaks each
# (tests/mutants, checked in test_plugins.py), so they are not vacuous either.
MUTANT_COVERED = {"no-rmpupdate-overlap", "populate-refuses-prepared"}


def test_every_goal_property_is_violated_somewhere_and_holds_somewhere(matrix):
    runs = matrix[0]
    for name in properties.GOALS:
        if name in MUTANT_COVERED:
            continue
        outcomes = {c.outcome for r in runs.values() for c in r.cells if c.property == name}
        assert "violated" in outcomes, f"{name} is never violated: vacuous?"
        assert "holds" in outcomes, f"{name} never holds"


def test_each_corner_is_reached_on_some_preset(matrix):
    runs = matrix[0]
    for name in properties.CORNERS:
        if name in properties.SIZE_WITNESSES:
            continue    # reached at 4 pages per huge folio (tests/test_nonuniform.py)
        outcomes = {c.outcome for r in runs.values() for c in r.cells if c.property == name}
        assert "holds" in outcomes, f"no preset reaches {name}"


def test_committed_counterexamples_are_current(matrix):
    out = matrix[1]
    fresh = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(COMMITTED) for p in COMMITTED.rglob("*") if p.is_file()}
    assert fresh == committed, "regenerate with: gmemcheck check"
    for rel in sorted(fresh):
        assert (out / rel).read_bytes() == (COMMITTED / rel).read_bytes(), rel


@pytest.mark.parametrize("path", sorted(str(p) for p in COMMITTED.rglob("*.itf.json")))
def test_every_committed_counterexample_replays_and_violates(path):
    lc = load_counterexample(path)
    replay(lc.model, lc.trace, lc.prop)
