"""Rendering check results: a text table (one preset) or matrix (several), JSON for
scripts, JUnit XML for CI systems (one test case per preset x property)."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .runner import Cell, PresetRun, exit_status

SYMBOL = {"holds": "holds", "violated": "VIOLATED", "holds_bounded": "bounded",
          "inconclusive": "inconclusive", "n/a": "n/a"}
SHORT = {"holds": "ok", "violated": "VIOL", "holds_bounded": "bnd", "inconclusive": "?",
         "n/a": "-"}


# a reach-* property "holds" when a witness exists: say reached / unreachable
REACH = {"holds": "reached", "violated": "unreachable"}
REACH_SHORT = {"holds": "reach", "violated": "unrch"}


def _mark(c: Cell) -> str:
    return "!" if c.status == "mismatch" else ""


def _word(c: Cell) -> str:
    return REACH.get(c.outcome, SYMBOL[c.outcome]) if c.kind == "reachable" \
        else SYMBOL[c.outcome]


def _short(c: Cell) -> str:
    return REACH_SHORT.get(c.outcome, SHORT[c.outcome]) if c.kind == "reachable" \
        else SHORT[c.outcome]


def _expected_word(c: Cell) -> str:
    if c.expected is None:
        return "-"
    return REACH.get(c.expected, c.expected) if c.kind == "reachable" else c.expected


def text(runs: list[PresetRun]) -> str:
    if len(runs) == 1:
        return _single(runs[0]) + _footer(runs)
    return _matrix(runs) + _footer(runs)


def _single(r: PresetRun) -> str:
    lines = [f"preset {r.preset}: {r.description}",
             f"  {r.engine}, {r.states} distinct states, {r.transitions} transitions, "
             f"{r.seconds:.1f}s" + ("" if r.complete else " (not exhaustive)")]
    if r.state_count_changed:
        lines.append(f"  ! distinct states changed: pinned {r.expected_states}, got {r.states}")
    w = max([len(c.property) for c in r.cells] + [8])
    lines.append("")
    lines.append(f"  {'property':<{w}}  {'kind':<11} {'outcome':<13} {'expected':<11} "
                 f"{'bound':<22} trace")
    for c in r.cells:
        exp = _expected_word(c)
        lines.append(f"{_mark(c):1} {c.property:<{w}}  {c.kind:<11} {_word(c):<13} "
                     f"{exp:<11} {c.bound:<22} {c.trace or ''}".rstrip())
    never = [a for a, n in r.coverage.items() if n == 0]
    if never:
        lines.append(f"  actions that never fired: {', '.join(never)}")
    for n in r.notes:
        lines.append(f"  note: {n}")
    return "\n".join(lines) + "\n"


def _matrix(runs: list[PresetRun]) -> str:
    props: list[str] = []
    for r in runs:
        for c in r.cells:
            if c.property not in props:
                props.append(c.property)
    w = max(len(p) for p in props)
    cols = [f"P{i + 1}" for i in range(len(runs))]
    nw = max(len(r.preset) for r in runs)
    lines = ["presets:"]
    for col, r in zip(cols, runs, strict=True):
        flag = "  ! state count changed: pinned " \
            f"{r.expected_states}, got {r.states}" if r.state_count_changed else ""
        lines.append(f"  {col:<4} {r.preset:<{nw}} {r.states:>8} states {r.seconds:6.1f}s  "
                     f"{r.engine}{'' if r.complete else ' (bounded)'}{flag}")
    lines.append("")
    lines.append(f"  {'property':<{w}} " + " ".join(f"{c:>5}" for c in cols))
    cell = {(c.preset, c.property): c for r in runs for c in r.cells}
    for p in props:
        row = []
        for r in runs:
            c = cell.get((r.preset, p))
            row.append(f"{(_short(c) + _mark(c)) if c else '':>5}")
        lines.append(f"  {p:<{w}} " + " ".join(row))
    lines.append("")
    lines.append("  columns: " + ", ".join(f"{col} {r.preset}"
                                            for col, r in zip(cols, runs, strict=True)))
    lines.append("  ok = holds, VIOL = violated, bnd = holds up to a bound, ? = inconclusive, "
                 "- = not applicable, ! = differs from the preset; reach-* rows: reach = "
                 "reached (a witness exists), unrch = unreachable")
    for r in runs:
        never = [a for a, n in r.coverage.items() if n == 0]
        if never:
            lines.append(f"  {r.preset}: actions that never fired: {', '.join(never)}")
        for n in r.notes:
            lines.append(f"  {r.preset}: note: {n}")
    viol = [c for r in runs for c in r.cells if c.outcome == "violated" and c.trace]
    if viol:
        lines.append("")
        lines.append("counterexamples:")
        for c in viol:
            lines.append(f"  {c.preset:<{nw}} {c.property:<{w}} {c.steps:>3} steps  {c.trace}")
    bad = [c for r in runs for c in r.cells if c.status == "mismatch"]
    if bad:
        lines.append("")
        lines.append("differs from the expected verdicts:")
        for c in bad:
            lines.append(f"  {c.preset}: {c.property}: {c.outcome}, expected {c.expected}")
    return "\n".join(lines) + "\n"


def _footer(runs: list[PresetRun]) -> str:
    cells = [c for r in runs for c in r.cells]
    n_mis = sum(c.status == "mismatch" for c in cells)
    n_inc = sum(c.status == "inconclusive" for c in cells)
    n_unp = sum(c.status == "unpinned" for c in cells)
    code = exit_status(runs)
    parts = [f"{len(cells)} verdicts", f"{n_mis} differ from the presets",
             f"{n_inc} bounded or inconclusive"]
    if n_unp:
        parts.append(f"{n_unp} without an expected verdict")
    return "\n" + ", ".join(parts) + f"; exit {code}\n"


def to_json(runs: list[PresetRun]) -> str:
    doc: dict[str, Any] = {
        "results": [c.to_json() for r in runs for c in r.cells],
        "presets": [{
            "preset": r.preset, "engine": r.engine, "states": r.states,
            "expected_states": r.expected_states, "transitions": r.transitions,
            "seconds": round(r.seconds, 3), "complete": r.complete,
            "state_count_changed": r.state_count_changed, "coverage": r.coverage,
        } for r in runs],
        "exit_code": exit_status(runs),
    }
    return json.dumps(doc, indent=1) + "\n"


def junit(runs: list[PresetRun]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    cells = [c for r in runs for c in r.cells]
    fails = sum(c.status == "mismatch" for c in cells) + sum(r.state_count_changed for r in runs)
    skips = sum(c.status in ("inconclusive", "n/a") for c in cells)
    out.append(f'<testsuites name="gmemcheck" tests="{len(cells) + len(runs)}" '
               f'failures="{fails}" skipped="{skips}">')
    for r in runs:
        rf = sum(c.status == "mismatch" for c in r.cells) + int(r.state_count_changed)
        rs = sum(c.status in ("inconclusive", "n/a") for c in r.cells)
        out.append(f'  <testsuite name={quoteattr(r.preset)} tests="{len(r.cells) + 1}" '
                   f'failures="{rf}" skipped="{rs}" time="{r.seconds:.3f}">')
        out.append(f'    <testcase classname={quoteattr(r.preset)} name="distinct-states" '
                   f'time="{r.seconds:.3f}">')
        if r.state_count_changed:
            out.append(f'      <failure message={quoteattr(f"pinned {r.expected_states}, got {r.states}")}/>')  # noqa: E501
        out.append("    </testcase>")
        for c in r.cells:
            out.append(f'    <testcase classname={quoteattr(r.preset)} '
                       f'name={quoteattr(c.property)} time="{c.seconds:.3f}">')
            msg = f"{c.outcome} ({c.engine}, {c.bound})"
            if c.status == "mismatch":
                out.append(f"      <failure message={quoteattr(msg + f', expected {c.expected}')}>"
                           f"{escape(c.trace or '')}</failure>")
            elif c.status in ("inconclusive", "n/a"):
                out.append(f"      <skipped message={quoteattr(msg + ' ' + c.reason)}/>")
            out.append(f"      <system-out>{escape(msg)}"
                       f"{escape(' trace: ' + c.trace) if c.trace else ''}</system-out>")
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"
