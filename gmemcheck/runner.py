"""One ``gmemcheck check``: presets x properties -> cells, trace files, an exit status.

This module wires the model, the properties and the engines together and writes the
trace files; it returns values and never prints (the CLI does).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import properties
from .checker.core import Kind, Result, Trace, Verdict
from .checker.explicit import Caps
from .checker.run import CheckRun, check, steps
from .checker.traces import atomic_write, dump_itf, render_text, trace_to_itf
from .model import Config, build
from .model.build import resized

EXIT_OK, EXIT_MISMATCH, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 64, 70
MAX_EXPLICIT_PAGES = 16


class RunError(Exception):
    """A request that cannot be run as asked (one line for the user)."""


@dataclass
class Cell:
    preset: str
    property: str
    kind: str
    outcome: str
    expected: str | None
    engine: str
    bound: str
    states: int
    seconds: float
    trace: str | None
    steps: int | None
    reason: str = ""
    status: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PresetRun:
    preset: str
    description: str
    engine: str
    states: int
    transitions: int
    seconds: float
    complete: bool
    expected_states: int | None
    coverage: dict[str, int]
    cells: list[Cell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def state_count_changed(self) -> bool:
        return (self.expected_states is not None and self.complete
                and self.states != self.expected_states)


def status_of(outcome: str, expected: str | None) -> str:
    if outcome == "n/a":
        return "n/a"
    if outcome in ("inconclusive", "holds_bounded"):
        return "inconclusive"
    if expected is None:
        return "unpinned"
    return "match" if outcome == expected else "mismatch"


def exit_status(runs: list[PresetRun]) -> int:
    cells = [c for r in runs for c in r.cells]
    if any(c.status == "mismatch" for c in cells) or any(r.state_count_changed for r in runs):
        return EXIT_MISMATCH
    if any(c.status == "inconclusive" for c in cells):
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def trace_paths(out: Path, preset: str, prop: str, cti: bool = False) -> tuple[Path, Path]:
    d = out / preset
    x = ".cti" if cti else ""
    return d / f"{prop}{x}.itf.json", d / f"{prop}{x}.txt"


def model_at(model: Any, trace: Trace) -> Any:
    """The model whose size is that of ``trace`` (a CTI may be at another size)."""
    return resized(model, pages_per_huge=len(trace.init.order) // model.k.R)


def write_trace(out: Path, model: Any, cfg: Config, v: Verdict, kind: str,
                cti: bool = False) -> Path:
    """Write the ITF and text forms of a counterexample (or, with ``cti``, of a
    counterexample to induction), atomically."""
    itf_path, txt_path = trace_paths(out, cfg.name, v.property, cti)
    assert v.trace is not None
    meta = {
        "description": f"gmemcheck counterexample: {v.property} on {cfg.name}",
        "model": dict(model.identity()),
        "property": v.property,
        "kind": kind,
        "engine": v.engine,
        "bound": v.bound,
    }
    actions = {a.name: a for a in model.actions}
    doc = trace_to_itf(v.trace, actions, meta)
    text = render_text(v.trace, model, header_lines(cfg, v, kind, itf_path))
    atomic_write(itf_path, dump_itf(doc))
    atomic_write(txt_path, text)
    return itf_path


def header_lines(cfg: Config, v: Verdict, kind: str, itf_path: Path) -> list[str]:
    t = v.trace
    assert t is not None
    what = {"liveness": "lasso", "deadlock": "path to a deadlock",
            "recoverable": "path to a state that cannot recover"}.get(kind, "counterexample")
    if t.origin == "arbitrary":
        what = "counterexample to induction (NOT from an initial state)"
    lines = [
        f"gmemcheck {what}: property {v.property} ({kind}) on preset {cfg.name}",
        f"{cfg.description}" if cfg.description else "",
        f"violated in {steps(len(t))} ({v.engine}, {v.bound})" if t.origin == "init" else
        f"{steps(len(t))} from an arbitrary state satisfying the lemmas ({v.engine}, "
        f"{v.bound})",
    ]
    if v.reason:
        lines.append(v.reason)
    lines.append(f"replay: gmemcheck replay {cfg.name}/{itf_path.name}   "
                 "(from the counterexamples directory)")
    return [ln for ln in lines if ln]


@dataclass
class SymOpts:
    """Options of the Z3 engines: BMC depth, induction depth k, and the
    ``pages_per_huge`` at which ``--engine strongest`` tries its proofs."""

    depth: int = 10
    k: int = 1
    prove_at: int = 512
    timeout_ms: int | None = None
    # prove over representative pages (symbolic/space.py:Window); None: above 1024 pages
    window: bool | None = None


def symbolic_check(model: Any, props: list[Any], engine: str, sym: SymOpts) -> CheckRun:
    """Run the bmc or kinduction engine (gmemcheck/symbolic/) as a CheckRun."""
    import time

    from .symbolic.bmc import bmc
    from .symbolic.kind import kinduction

    t0 = time.perf_counter()
    if engine == "bmc":
        verdicts = bmc(model, props, sym.depth, sym.timeout_ms)
        depth = sym.depth
    else:
        verdicts = kinduction(model, props, k=sym.k, timeout_ms=sym.timeout_ms)
        depth = sym.k
    return CheckRun(verdicts, engine, 0, 0, depth, time.perf_counter() - t0, False, {})


def strongest(model: Any, props: list[Any], run: CheckRun, sym: SymOpts) -> None:
    """Upgrade each safety or deadlock verdict that the exhaustive explicit run found
    to hold into a k-induction proof at ``pages_per_huge = sym.prove_at`` where one
    goes through; otherwise keep the explicit verdict and say why in its reason."""
    from .symbolic.kind import kinduction

    cand = [v for v in run.verdicts if v.result is Result.HOLDS
            and v.kind in (Kind.SAFETY, Kind.DEADLOCK)]
    if not cand:
        return
    by = {p.name: p for p in props}
    goals = [by[v.property] for v in cand]
    window = sym.window if sym.window is not None else sym.prove_at > 1024
    if window and sym.k == 1:
        from .symbolic.kind import window_for

        try:
            W = window_for(model, sym.prove_at)
            proofs = kinduction(model, goals, k=1, pages_per_huge=sym.prove_at,
                                timeout_ms=sym.timeout_ms, window=W)
        except ValueError as e:     # fewer pages than the window needs
            proofs = [Verdict(p.name, p.kind, Result.INCONCLUSIVE, "kinduction", "-",
                              reason=str(e)) for p in goals]
    else:
        big_model = resized(model, pages_per_huge=sym.prove_at)
        proofs = kinduction(big_model, goals, k=sym.k, timeout_ms=sym.timeout_ms,
                            mine_from=model)
    got = {v.property: v for v in proofs}
    for i, v in enumerate(run.verdicts):
        pv = got.get(v.property)
        if pv is None:
            continue
        if pv.result is Result.HOLDS:
            pv.reason = f"also explored exhaustively at pages_per_huge={model.k.N} (bfs)"
            run.verdicts[i] = pv
        else:
            v.reason = (f"exhaustive at pages_per_huge={model.k.N}; k-induction at "
                        f"pages_per_huge={sym.prove_at}: {pv.reason}")
            v.stats["cti"] = pv.trace


def run_preset(cfg: Config, names: list[str] | None, engine: str, caps: Caps,
               out: Path | None, progress: Callable[[dict[str, Any]], None] | None = None,
               walks: int = 100, depth: int = 50, seed: int = 0,
               sym: SymOpts | None = None) -> PresetRun:
    from .plugins import PluginError, check_contract, used_by

    plugin_ids = used_by(cfg.axes)
    model = build(cfg, plugin_ids)
    if plugin_ids:
        try:
            check_contract(model)
        except PluginError as e:
            raise RunError(str(e)) from None
    pages = model.k.P
    if engine in ("bfs", "strongest") and pages > MAX_EXPLICIT_PAGES and caps.max_states is None \
            and caps.max_seconds is None:
        raise RunError(f"{cfg.name}: {pages} pages is too large to explore exhaustively "
                       f"(at most {MAX_EXPLICIT_PAGES}); use --engine bmc or kinduction, or "
                       "cap the search with --max-states or --max-seconds")
    props = properties.select(model, names)
    wanted = names or list(properties.REGISTRY)
    applicable = {p.name for p in props}
    sym = sym or SymOpts()
    if engine in ("bmc", "kinduction"):
        run = symbolic_check(model, props, engine, sym)
    else:
        run = check(model, props, engine="bfs" if engine == "strongest" else engine,
                    caps=caps, progress=progress, walks=walks, walk_depth=depth, seed=seed)
        if engine == "strongest" and run.complete:
            strongest(model, props, run, sym)
    pr = PresetRun(cfg.name, cfg.description, run.engine, run.states, run.transitions,
                   run.seconds, run.complete, cfg.expect_states, run.coverage, notes=run.notes)
    by_name = {v.property: v for v in run.verdicts}
    for name in wanted:
        if name not in applicable:
            pr.cells.append(Cell(cfg.name, name, "-", "n/a", None, engine, "-", run.states,
                                 run.seconds, None, None, "not applicable to this design",
                                 "n/a"))
            continue
        v = by_name[name]
        expected = cfg.expect_verdicts.get(name)
        path = None
        if out is not None:
            itf_path, txt_path = trace_paths(out, cfg.name, name)
            if v.result is Result.VIOLATED and v.trace is not None:
                path = str(write_trace(out, model, cfg, v, v.kind.value))
            elif v.trace is not None and v.trace.origin == "arbitrary":
                path = str(write_trace(out, model_at(model, v.trace), cfg, v,
                                       v.kind.value, cti=True))
            elif v.result in (Result.HOLDS,) or (v.result is Result.VIOLATED
                                                 and v.kind is Kind.REACHABLE):
                for p in (itf_path, txt_path):
                    if p.exists():
                        p.unlink()
        steps = len(v.trace) if v.trace is not None else None
        pr.cells.append(Cell(cfg.name, name, v.kind.value, v.outcome, expected, v.engine,
                             v.bound, run.states, round(run.seconds, 3), path, steps, v.reason,
                             status_of(v.outcome, expected)))
    return pr


def trace_digest(t: Trace) -> str:
    """A short, stable digest of a trace's labels (for tests and claims)."""
    h = hashlib.sha256(json.dumps([(s.action, list(s.args)) for s in t.steps]).encode())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------- trace files
@dataclass
class LoadedCounterexample:
    model: Any
    prop: Any
    trace: Trace
    meta: dict[str, Any]
    path: str


def load_counterexample(path: str) -> LoadedCounterexample:
    """Read an ITF file written by gmemcheck and rebuild the model it was found on."""
    from .checker.traces import TraceFileError, load_itf
    from .model import ConfigError
    from .model.config import from_dict

    lt = load_itf(path)
    ident = lt.meta.get("model")
    if not isinstance(ident, dict) or ident.get("model") != "guest_memfd":
        raise TraceFileError(f"{path}: #meta.model does not name the guest_memfd model")
    plugin_ids = ident.get("plugins") or []
    if plugin_ids:
        from .plugins import PluginError, verify_recorded_plugins

        try:
            verify_recorded_plugins(plugin_ids, path)
        except PluginError as e:
            raise TraceFileError(str(e)) from None
    try:
        cfg = from_dict({"name": ident.get("preset", "trace"), "axes": ident.get("axes", {}),
                         "bounds": ident.get("bounds", {})}, f"{path}: #meta.model")
    except ConfigError as e:
        raise TraceFileError(str(e)) from None
    model = build(cfg, plugin_ids)
    name = lt.meta.get("property")
    if not isinstance(name, str):
        raise TraceFileError(f"{path}: #meta.property is missing")
    try:
        sel = properties.select(model, [name])
    except properties.UnknownProperty as e:
        raise TraceFileError(f"{path}: {e}") from None
    if not sel:
        raise TraceFileError(f"{path}: property {name} does not apply to this design")
    trace = lt.bind(model.state_type, {a.name: a for a in model.actions})
    return LoadedCounterexample(model, sel[0], trace, lt.meta, path)
