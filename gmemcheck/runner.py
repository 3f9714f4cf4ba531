"""One ``gmemcheck check``: presets x properties -> cells, trace files, an exit status.

This module wires the model, the properties and the engines together and writes the
trace files; it returns values and never prints (the CLI does).
"""

from __future__ import annotations

import copy
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
from .checker.traces import dump_itf, render_text, trace_to_itf, write_pair
from .model import Config, build
from .model.build import resized

EXIT_OK, EXIT_MISMATCH, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 64, 70
EXIT_IOERR = 74     # sysexits.h EX_IOERR: a trace file or directory could not be written
# Exhaustive explicit exploration (bfs, strongest) without a cap: the pinned presets have
# 2 pages; 8 pages in all is the practical limit (README, Bounds).
MAX_EXPLICIT_PAGES = 8
# Any explicit exploration with a cap (--max-states, --max-seconds), simulation, graph.
MAX_CAPPED_PAGES = 64
# Building the explicit model at all (replay, show, the symbolic engines' explicit twin):
# its punch domain has P(P+1)/2 (offset, len) pairs, 524,800 at 1024 pages.
MAX_BUILD_PAGES = 1024


def committed_dir() -> Path:
    """``counterexamples/`` of the checkout: the traces of the pinned presets."""
    from .model.config import configs_dir

    return configs_dir().parent / "counterexamples"


SCRATCH_DIR = Path("gmemcheck-out")     # every other run (git-ignored in the checkout)


def is_builtin(cfg: Config) -> bool:
    """``cfg`` was read from configs/ under its own name (not a copy elsewhere that
    happens to say ``name = "rfc-thp"``)."""
    from .model.config import configs_dir

    if cfg.path is None:
        return False
    own = configs_dir() / f"{cfg.name}.toml"
    try:
        return Path(cfg.path).resolve() == own.resolve()
    except OSError:
        return False


def not_pinned(cfg: Config, engine: str, plugins: list[str] | None = None,
               hash_compaction: bool = False) -> str | None:
    """Why a run of ``cfg`` does not reproduce the committed counterexamples of its
    preset (None when it does: a built-in preset as committed, no --set, no --plugin,
    the engine of its pinned verdicts)."""
    if not is_builtin(cfg):
        return f"{cfg.where} is not a built-in preset"
    if cfg.overrides:
        return "--set " + ", ".join(f"{k}={v}" for k, v in cfg.overrides.items()) + \
            " changes the preset"
    if plugins:
        return "--plugin changes the model"
    if engine not in ("bfs", "strongest"):
        return f"--engine {engine} is not the engine of the pinned verdicts (bfs)"
    if hash_compaction:
        return "--hash-compaction may miss states, so its traces need not be the shortest"
    return None


def size_check(cfg: Config, engine: str, capped: bool, sym: SymOpts | None = None) -> None:
    """Refuse, before anything is built, a size that cannot be explored as asked: one
    line with the size that can."""
    b = cfg.bounds
    pages = b["regions"] * b["pages_per_huge"]
    size = f"{cfg.name}: regions={b['regions']} x pages_per_huge={b['pages_per_huge']} " \
        f"= {pages} pages"
    if engine in ("bfs", "strongest", "simulate"):
        if pages > MAX_CAPPED_PAGES:
            raise RunError(f"{size} is too large to explore with an explicit engine, even "
                           f"capped (at most {MAX_CAPPED_PAGES} pages; exhaustively at most "
                           f"{MAX_EXPLICIT_PAGES}); use --engine bmc or kinduction")
        if engine != "simulate" and pages > MAX_EXPLICIT_PAGES and not capped:
            raise RunError(f"{size} is too large to explore exhaustively (at most "
                           f"{MAX_EXPLICIT_PAGES}); use --engine bmc or kinduction, or cap "
                           "the search with --max-states or --max-seconds")
    if pages > MAX_BUILD_PAGES:
        raise RunError(f"{size}: the explicit model (punch domain of {pages * (pages + 1) // 2:,}"
                       f" (offset, len) pairs) is built only up to {MAX_BUILD_PAGES} pages; "
                       "prove at larger sizes over representative pages (--engine "
                       "kinduction, or strongest --prove-at, without --no-window)")
    if engine == "strongest" and sym is not None:
        window = sym.window if sym.window is not None else use_window(sym.prove_at)
        big = b["regions"] * sym.prove_at
        if not (window and sym.k == 1) and big > MAX_BUILD_PAGES:
            raise RunError(f"{cfg.name}: --prove-at {sym.prove_at} without representative "
                           f"pages builds {big} pages (at most {MAX_BUILD_PAGES}); drop "
                           "--no-window / --k")


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
    pending: list[Any] = field(default_factory=list, repr=False)
    written: list[str] = field(default_factory=list)

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


class WriteError(Exception):
    """A trace file or directory could not be written (exit 74); names the path."""

    def __init__(self, path: Path | str, err: OSError) -> None:
        self.path = str(path)
        self.err = err
        why = err.strerror or str(err)
        super().__init__(f"cannot write {path}: {why}")


def model_at(model: Any, trace: Trace) -> Any:
    """The model whose size is that of ``trace`` (a CTI may be at another size)."""
    return resized(model, pages_per_huge=len(trace.init.order) // model.k.R)


def write_trace(out: Path, model: Any, cfg: Config, v: Verdict, kind: str,
                cti: bool = False) -> Path:
    """Write the ITF and text forms of a counterexample (or, with ``cti``, of a
    counterexample to induction) as a pair: both temporaries first, then the renames;
    the text carries the digest of its ITF file, so a pair broken by a kill between
    the two renames is detected (``replay`` refuses it) and the next run rewrites it."""
    itf_path, txt_path = trace_paths(out, cfg.name, v.property, cti)
    assert v.trace is not None
    meta = {
        "description": f"gmemcheck counterexample: {v.property} on {cfg.name}",
        "model": dict(model.identity()),
        "model-digest": model_digest(model.identity()),
        "property": v.property,
        "kind": kind,
        "engine": v.engine,
        "bound": v.bound,
    }
    actions = {a.name: a for a in model.actions}
    doc = trace_to_itf(v.trace, actions, meta)
    itf_text = dump_itf(doc)
    text = render_text(v.trace, model, header_lines(cfg, v, kind, itf_path)
                       + [f"{ITF_DIGEST_KEY} {text_digest(itf_text)}"])
    write_pair([(itf_path, itf_text), (txt_path, text)])
    return itf_path


ITF_DIGEST_KEY = "itf-sha256:"


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model_digest(ident: Any) -> str:
    """A digest of what a trace was found on: the preset's name, axes and bounds."""
    keep = {k: ident.get(k) for k in ("preset", "axes", "bounds")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


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
    note = cfg.notes.get(v.property)
    if note and kind == "deadlock":
        lines.append(f"who waits for what: {note}")
    elif note:
        lines.append(f"note ({cfg.name}): {note}")
    if not_pinned(cfg, "bfs" if v.engine == "bfs" else "-") is None:
        # a pinned run's traces are the committed ones byte for byte, wherever written
        rel = itf_path.relative_to(itf_path.parent.parent)
        lines.append(f"replay: gmemcheck replay counterexamples/{rel}   (from the repository "
                     "root)")
    else:
        lines.append(f"replay: gmemcheck replay {_shown(itf_path)}")
    return [ln for ln in lines if ln]


def _shown(path: Path) -> str:
    """``path`` relative to the repository root when it is inside it (the committed
    traces), else relative to the current directory, else absolute."""
    root = committed_dir().parent
    for base in (root, Path.cwd()):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path.resolve())


@dataclass
class SymOpts:
    """Options of the Z3 engines: BMC depth, induction depth k, and the
    ``pages_per_huge`` at which ``--engine strongest`` tries its proofs."""

    depth: int = 10
    k: int = 1
    prove_at: int = 512
    timeout_ms: int | None = None
    # prove over representative pages (symbolic/space.py:Window); None: from 512 pages
    window: bool | None = None
    # progress lines (the CLI's, on a terminal): kinduction logs each query
    log: Callable[[str], None] | None = None


def windowed_kinduction(sym: SymOpts, pages_per_huge: int) -> bool:
    """--engine kinduction proves over representative pages from 512 pages per huge
    folio (k = 1; --no-window unrolls), as --engine strongest does."""
    window = sym.window if sym.window is not None else use_window(pages_per_huge)
    return window and sym.k == 1 and pages_per_huge > 2


def symbolic_check(model: Any, props: list[Any], engine: str, sym: SymOpts,
                   max_seconds: float | None = None, window_at: int | None = None
                   ) -> CheckRun:
    """Run the bmc or kinduction engine (gmemcheck/symbolic/) as a CheckRun."""
    import time

    from .symbolic import kind
    from .symbolic.bmc import bmc
    from .symbolic.kind import kinduction

    t0 = time.perf_counter()
    if engine == "bmc":
        verdicts = bmc(model, props, sym.depth, sym.timeout_ms, max_seconds, log=sym.log)
        depth = sym.depth
    else:
        kind.DEADLINE[0] = t0 + max_seconds if max_seconds else None
        notes: list[str] = []
        try:
            if window_at is None:
                verdicts = kinduction(model, props, k=sym.k, timeout_ms=sym.timeout_ms,
                                      log=sym.log)
            else:
                try:
                    W = kind.window_for(model, window_at)
                except ValueError as e:     # fewer pages than the window needs
                    W, verdicts = 0, [Verdict(p.name, p.kind, Result.INCONCLUSIVE, engine,
                                              "-", reason=str(e)) for p in props]
                if W:
                    notes.append(f"k-induction at pages_per_huge={window_at} over {W} "
                                 "representative pages per huge region (the default from "
                                 "512 pages; --no-window unrolls every page)")
                    verdicts = kinduction(model, props, k=1, pages_per_huge=window_at,
                                          timeout_ms=sym.timeout_ms, window=W, log=sym.log)
        except kind.DeadlineReached:
            verdicts = [Verdict(p.name, p.kind, Result.INCONCLUSIVE, engine,
                                f"time<={max_seconds:g}s",
                                reason=f"--max-seconds {max_seconds:g} reached before the "
                                "k-induction proof finished") for p in props]
        finally:
            kind.DEADLINE[0] = None
        depth = sym.k
        run = CheckRun(verdicts, engine, 0, 0, depth, time.perf_counter() - t0, False, {},
                       notes=notes)
        if max_seconds and time.perf_counter() - t0 >= max_seconds:
            for v in verdicts:      # a query cut short by the cap answered unknown
                if v.result is Result.INCONCLUSIVE and "max-seconds" not in v.reason:
                    v.reason = f"--max-seconds {max_seconds:g} reached; {v.reason}"
        return run
    return CheckRun(verdicts, engine, 0, 0, depth, time.perf_counter() - t0, False, {})


# What each symbolic engine does not decide: marked n/a, not inconclusive, so that a
# run with nothing else open exits 0.
UNDECIDED = {"bmc": (Kind.LIVENESS, Kind.RECOVERABLE),
             "kinduction": (Kind.LIVENESS, Kind.RECOVERABLE, Kind.REACHABLE)}


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
    window = sym.window if sym.window is not None else use_window(sym.prove_at)
    if window and sym.k == 1:
        from .symbolic.kind import window_for

        try:
            W = window_for(model, sym.prove_at)
            run.notes.append(f"k-induction at pages_per_huge={sym.prove_at} over {W} "
                             "representative pages per huge region (the default from 512 "
                             "pages; --no-window unrolls every page)")
            proofs = kinduction(model, goals, k=1, pages_per_huge=sym.prove_at,
                                timeout_ms=sym.timeout_ms, window=W, log=sym.log)
        except ValueError as e:     # fewer pages than the window needs
            proofs = [Verdict(p.name, p.kind, Result.INCONCLUSIVE, "kinduction", "-",
                              reason=str(e)) for p in goals]
    else:
        big_model = resized(model, pages_per_huge=sym.prove_at)
        run.notes.append(f"k-induction at pages_per_huge={sym.prove_at}, every page "
                         f"unrolled (k={sym.k})")
        proofs = kinduction(big_model, goals, k=sym.k, timeout_ms=sym.timeout_ms,
                            mine_from=model, log=sym.log)
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


def use_window(prove_at: int) -> bool:
    """Representative pages by default from 512 pages per huge folio: the unrolled
    proofs grow faster than linearly (README: 588 s at 512 unrolled, ~30 s windowed)."""
    return prove_at >= 512


def run_preset(cfg: Config, names: list[str] | None, engine: str, caps: Caps,
               out: Path | None, progress: Callable[[dict[str, Any]], None] | None = None,
               walks: int = 100, depth: int = 50, seed: int = 0,
               sym: SymOpts | None = None, workers: int = 1,
               hash_compaction: bool = False) -> PresetRun:
    """Check ``cfg``; with ``out``, also write its trace files (:func:`write_run`)."""
    pr = compute_preset(cfg, names, engine, caps, progress, walks, depth, seed, sym,
                        workers, hash_compaction)
    if out is not None:
        write_run(pr, out)
    return pr


def compute_preset(cfg: Config, names: list[str] | None, engine: str, caps: Caps,
                   progress: Callable[[dict[str, Any]], None] | None = None,
                   walks: int = 100, depth: int = 50, seed: int = 0,
                   sym: SymOpts | None = None, workers: int = 1,
                   hash_compaction: bool = False) -> PresetRun:
    """The verdicts of ``cfg``; the trace files to write are kept in ``pending``.
    ``workers`` and ``hash_compaction`` go to the explicit engine
    (:func:`.checker.run.check`)."""
    from .plugins import PluginError, check_contract, used_by

    sym = sym or SymOpts()
    target = cfg.bounds["pages_per_huge"]
    windowed = engine == "kinduction" and windowed_kinduction(sym, target)
    if windowed:
        # over representative pages the explicit model is needed only at 2 pages
        # (mining and decoding); the proof is at ``target``
        cfg = copy.deepcopy(cfg)
        cfg.bounds["pages_per_huge"] = 2
    size_check(cfg, engine, caps.max_states is not None or caps.max_seconds is not None, sym)
    plugin_ids = used_by(cfg.axes)
    model = build(cfg, plugin_ids)
    if plugin_ids:
        try:
            check_contract(model)
        except PluginError as e:
            raise RunError(str(e)) from None
    props = properties.select(model, names)
    wanted = names or list(properties.REGISTRY)
    applicable = {p.name for p in props}
    if engine in ("bmc", "kinduction"):
        run = symbolic_check(model, props, engine, sym, caps.max_seconds,
                             target if windowed else None)
    else:
        run = check(model, props, engine="bfs" if engine == "strongest" else engine,
                    caps=caps, progress=progress, walks=walks, walk_depth=depth, seed=seed,
                    hash_compaction=hash_compaction, workers=workers)
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
        if v.kind in UNDECIDED.get(engine, ()) and v.result is Result.INCONCLUSIVE:
            pr.cells.append(Cell(cfg.name, name, v.kind.value, "n/a", expected, v.engine,
                                 "-", run.states, round(run.seconds, 3), None, None,
                                 f"not decided by --engine {engine}: {v.reason}", "n/a"))
            continue
        if v.result is Result.VIOLATED and v.trace is not None:
            pr.pending.append(Pending(name, model, cfg, v, False))
        elif v.trace is not None and v.trace.origin == "arbitrary":
            pr.pending.append(Pending(name, model_at(model, v.trace), cfg, v, True))
        elif v.result in (Result.HOLDS,) or (v.result is Result.VIOLATED
                                             and v.kind is Kind.REACHABLE):
            pr.pending.append(Pending(name, model, cfg, None, False))
        steps = len(v.trace) if v.trace is not None else None
        pr.cells.append(Cell(cfg.name, name, v.kind.value, v.outcome, expected, v.engine,
                             v.bound, run.states, round(run.seconds, 3), None, steps, v.reason,
                             status_of(v.outcome, expected)))
    return pr


@dataclass
class Pending:
    """A trace pair to write (``verdict``) or, for a property that now holds, to remove."""

    prop: str
    model: Any
    cfg: Config
    verdict: Verdict | None
    cti: bool


def clean_stale(d: Path) -> None:
    """Remove the ``.NAME.XXXX.tmp`` files a killed run left in ``d``."""
    if not d.is_dir():
        return
    for p in d.glob(".*.tmp"):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def write_run(pr: PresetRun, out: Path) -> list[str]:
    """Write (and remove) the trace files of ``pr`` under ``out/<preset>/``; the cells'
    ``trace`` fields name what was written. Raises :class:`WriteError`."""
    written: list[str] = []
    d = out / pr.preset
    try:
        clean_stale(d)
    except OSError as e:
        raise WriteError(d, e) from None
    cells = {c.property: c for c in pr.cells}
    for w in pr.pending:
        if w.verdict is None:
            for p in trace_paths(out, pr.preset, w.prop):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise WriteError(p, e) from None
            continue
        try:
            path = write_trace(out, w.model, w.cfg, w.verdict, w.verdict.kind.value, w.cti)
        except OSError as e:
            raise WriteError(getattr(e, "filename", None) or d, e) from None
        cells[w.prop].trace = str(path)
        written.append(str(path))
    pr.pending = []
    pr.written.extend(written)
    return written


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
    """Read an ITF file written by gmemcheck, check that its #meta.model (preset, axes,
    bounds) is the one it was written with, and rebuild that model."""
    from .checker.traces import TraceFileError

    try:
        return _load_counterexample(path)
    except RecursionError:
        raise TraceFileError(f"{path}: values nested too deeply to be a gmemcheck "
                             "trace") from None


def _load_counterexample(path: str) -> LoadedCounterexample:
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
    recorded = lt.meta.get("model-digest")
    if recorded != model_digest(ident):
        raise TraceFileError(
            f"{path}: #meta.model (preset {ident.get('preset')!r}, its axes and bounds) does "
            "not match #meta.model-digest: the file was edited or not written by this "
            "version; regenerate it")
    pages = cfg.bounds["regions"] * cfg.bounds["pages_per_huge"]
    if pages > MAX_BUILD_PAGES:
        raise TraceFileError(f"{path}: a trace at {pages} pages cannot be replayed: the "
                             f"explicit model is built only up to {MAX_BUILD_PAGES} pages")
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


def check_pair(lc: LoadedCounterexample) -> str:
    """The ``.txt`` written with ``lc``'s ITF file, if there is one, must carry the
    digest of that ITF file and show the same steps; returns what was checked.
    Raises TraceFileError naming the mismatch."""
    from .checker.traces import TraceFileError

    itf = Path(lc.path)
    if not itf.name.endswith(".itf.json"):
        return "no .txt checked (not a .itf.json file name)"
    txt = itf.with_name(itf.name[: -len(".itf.json")] + ".txt")
    if not txt.exists():
        return f"no {txt.name} next to it"
    try:
        itf_text = itf.read_text(encoding="utf-8")
        lines = txt.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TraceFileError(f"{txt}: cannot read: {e}") from None
    key = f"# {ITF_DIGEST_KEY} "
    digests = [ln[len(key):].strip() for ln in lines if ln.startswith(key)]
    if digests != [text_digest(itf_text)]:
        raise TraceFileError(f"{txt}: is not the text of {itf.name} (its {ITF_DIGEST_KEY} "
                             "line does not match): a broken pair; rerun the check")
    body = render_text(lc.trace, lc.model, []).splitlines()
    start = next((i for i, ln in enumerate(lines) if ln == "# initial state:"), None)
    if start is None or lines[start:] != body:
        raise TraceFileError(f"{txt}: its steps differ from what {itf.name} renders to")
    return f"{txt.name} matches"
