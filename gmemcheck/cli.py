"""The ``gmemcheck`` command line. The only module that prints or exits.

Exit codes: 0 every verdict matches its preset's expectation; 1 one differs (a new
violation, a violation that disappeared, or a changed distinct-state count; for
``replay``, a trace that does not replay); 2 some verdict is bounded or inconclusive;
64 usage or input errors (one line on stderr naming what and where); 70 an internal
error (an engine trace that does not replay, or anything unexpected: one line naming
the file holding the traceback); 74 an output file or directory could not be written
(after the verdicts already computed are printed); 130 interrupted.

Every error leaves ``main`` through one place (:func:`main`), so each kind of failure
has one exit code and one line on stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from . import properties
from .checker.core import EngineBug
from .checker.explicit import Caps
from .checker.replay import ReplayError, replay
from .checker.traces import TraceFileError, render_text
from .model import ConfigError, apply_overrides, builtin_presets, load_preset
from .model.registry import ConflictError
from .plugins import PluginError
from .runner import (
    EXIT_INTERNAL,
    EXIT_IOERR,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_USAGE,
    SCRATCH_DIR,
    PresetRun,
    RunError,
    SymOpts,
    WriteError,
    committed_dir,
    compute_preset,
    exit_status,
    is_builtin,
    load_counterexample,
    not_pinned,
    run_preset,
    write_run,
)


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 64
        raise UsageError(f"{self.prog}: {message}")


def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {s!r}")
    return v


def positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number: {s!r}")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {s!r}")
    return v


def huge_size(s: str) -> int:
    """--prove-at: a pages_per_huge the model encodes (a power of two in its bounds)."""
    from .model.axes import BOUNDS

    v = positive_int(s)
    ok = BOUNDS["pages_per_huge"]
    if v not in ok:
        raise argparse.ArgumentTypeError(f"{v} is not a supported pages_per_huge (powers of "
                                         f"two from {ok[0]} to {ok[-1]})")
    return v


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def memory_size(s: str) -> int:
    """--max-memory: bytes, or with a K/M/G/T suffix (powers of 1024)."""
    t = s.strip().lower().removesuffix("b")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    try:
        v = float(t[: len(t) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {s!r} (e.g. 4G, 512M)") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive size: {s!r}")
    return int(v * _UNITS[unit])


def nonneg_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {s!r}")
    return v


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a run of the checks, shared by ``check`` and ``report``."""
    p.add_argument("--config", "--preset", dest="configs", action="append", metavar="PRESET",
                   help="a built-in preset name or a TOML file (repeatable)")
    p.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE",
                   help="a plug-in adding design-axis values or properties (repeatable)")
    p.add_argument("--property", "-p", dest="props", action="append", metavar="NAME",
                   help="a property to check (repeatable; default: all)")
    p.add_argument("--engine", default="bfs",
                   choices=("bfs", "simulate", "bmc", "kinduction", "strongest"),
                   help="bfs: exhaustive breadth-first search; simulate: seeded random walks; "
                   "bmc: Z3 bounded model checking up to --depth steps; kinduction: Z3 "
                   "k-induction proofs of the safety properties; strongest: bfs, then a "
                   "k-induction proof at pages_per_huge=--prove-at of every safety property "
                   "that bfs found to hold")
    p.add_argument("--max-states", type=positive_int, help="cap on distinct states")
    p.add_argument("--max-depth", type=positive_int, help="cap on search depth")
    p.add_argument("--max-seconds", type=positive_float, help="cap on wall time per preset")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="N processes: with several presets, N presets are checked at once "
                   "(same output, in preset order); with one, bfs: N processes compute its "
                   "successors and predicates (same states, verdicts and traces as one)")
    p.add_argument("--hash-compaction", action="store_true",
                   help="bfs: keep 64-bit fingerprints instead of states (as TLC does); "
                   "every verdict says so with the probability of a missed state, and "
                   "what rests on a complete search is at most bounded")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override an axis or bound of the preset for this run (repeatable)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress lines on stderr (default: only on a terminal)")
    p.add_argument("--walks", type=positive_int, default=200, help="simulate: number of walks")
    p.add_argument("--depth", type=positive_int, default=None,
                   help="simulate: steps per walk (default 60); bmc: most steps (default 10)")
    p.add_argument("--k", type=positive_int, default=1,
                   help="kinduction/strongest: induction depth (default 1)")
    p.add_argument("--prove-at", type=huge_size, default=512, metavar="PAGES",
                   help="strongest: pages_per_huge of the induction proofs (default 512)")
    p.add_argument("--window", action=argparse.BooleanOptionalAction, default=None,
                   help="kinduction/strongest: prove over representative pages (the "
                   "default from 512 pages per huge folio, k=1)")
    p.add_argument("--solver-timeout", type=positive_float, metavar="SECONDS",
                   help="bmc/kinduction: give up on one solver query after this long "
                   "(inconclusive)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="simulate: random seed")



def run_presets(a: argparse.Namespace, cmd: str) -> list[Any]:
    """The presets a run names (all built-in ones by default), with ``--set`` applied,
    then the ``-p`` names checked: presets first, since their own ``plugins = [...]``
    may bring the properties ``-p`` names."""
    names = a.configs or builtin_presets()
    if not names:
        raise UsageError(f"gmemcheck {cmd}: no presets given and none built in")
    cfgs = [apply_overrides(load_preset(n), a.sets) for n in names]
    for n in a.props or ():
        if n not in properties.REGISTRY:
            raise UsageError(f"gmemcheck {cmd}: unknown property {n!r} (see gmemcheck list)")
    return cfgs


def sym_opts(a: argparse.Namespace, log: Any = None) -> SymOpts:
    """The Z3 engines' options from a run's arguments."""
    return SymOpts(depth=a.depth or 10, k=a.k, prove_at=a.prove_at, window=a.window,
                   timeout_ms=int(a.solver_timeout * 1000) if a.solver_timeout else None,
                   log=log)


def make_parser() -> Parser:
    p = Parser(prog="gmemcheck", description="Model checker for the memory semantics of "
               "Linux guest_memfd: huge folios, truncate/split, preparedness, SEV-SNP RMP.")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)

    c = sub.add_parser("check", help="check properties on design presets (default: all "
                       "built-in presets, all properties)")
    add_run_options(c)
    c.add_argument("--format", default="text", choices=("text", "json", "junit"))
    c.add_argument("--max-memory", type=memory_size, metavar="SIZE",
                   help="cap on the address space of this process (e.g. 4G): a preset "
                   "that runs out is inconclusive, naming the cap")
    c.add_argument("--out", default=None, metavar="DIR",
                   help="write trace files under DIR/<preset>/ (default: counterexamples/ "
                   "for a run of a built-in preset as pinned, gmemcheck-out/ otherwise)")
    c.add_argument("--update-counterexamples", action="store_true",
                   help="write into the committed counterexamples/ even when the run is not "
                   "the pinned one (built-in presets only)")
    c.add_argument("--no-write", action="store_true", help="do not write trace files")

    r = sub.add_parser("replay", help="replay a counterexample through the model")
    r.add_argument("file", help="an .itf.json trace written by gmemcheck")

    s = sub.add_parser("show", help="print a counterexample as a selftest-like listing")
    s.add_argument("file", help="an .itf.json trace written by gmemcheck")

    g = sub.add_parser("graph", help="export the explored state graph (DOT or GraphML)")
    g.add_argument("--config", "--preset", dest="config", metavar="PRESET",
                   help="the preset whose whole state graph is exported (not needed with "
                   "--around-trace)")
    g.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE")
    g.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    g.add_argument("--format", default="dot", choices=("dot", "graphml"))
    g.add_argument("--trace", metavar="FILE", help="highlight the path of this trace")
    g.add_argument("--max-states", type=positive_int, default=20000,
                   help="cap on the states exported (default 20000)")
    g.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    g.add_argument("--around-trace", metavar="FILE",
                   help="readable mode: only this trace's path and, at each of its states, "
                   "the other enabled steps, with nodes labelled by what changed (the model "
                   "comes from the trace)")

    cl = sub.add_parser("claims", help="check the claims of the thread and write "
                        "docs/claims.md")
    cl.add_argument("-o", "--output", default="docs/claims.md", metavar="FILE")
    cl.add_argument("--check", action="store_true",
                    help="only compare with FILE: exit 1 if it is not current")

    add_report_parser(sub)

    ls = sub.add_parser("list", help="list presets, properties and design axes")
    ls.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE",
                    help="also list what this plug-in adds (repeatable)")
    return p


# ------------------------------------------------------------------------ commands
def _where_to_write(a: argparse.Namespace, cfgs: list[Any]) -> list[tuple[Path | None, str]]:
    """For each preset, the directory its traces go under and, when that is not the
    committed counterexamples/, why not. Only a run of a built-in preset as pinned
    writes there (or --update-counterexamples, for built-in presets)."""
    committed = committed_dir()
    if a.no_write:
        return [(None, "") for _ in cfgs]
    if a.update_counterexamples:
        if a.out is not None:
            raise UsageError("gmemcheck check: --update-counterexamples writes to "
                             f"{committed}; it does not take --out")
        for cfg in cfgs:
            if not is_builtin(cfg):
                raise UsageError(f"gmemcheck check: --update-counterexamples: {cfg.where} is "
                                 "not a built-in preset; its traces never replace those of "
                                 "the built-in presets")
        return [(committed, "") for _ in cfgs]
    if a.out is not None:
        out = Path(a.out)
        if _same(out, committed):
            for cfg in cfgs:
                why = not_pinned(cfg, a.engine, a.plugins, getattr(a, "hash_compaction", False))
                if why:
                    raise UsageError(f"gmemcheck check: --out {a.out}: the committed traces "
                                     f"are written only by the pinned run of each built-in "
                                     f"preset ({why}); use another --out or "
                                     "--update-counterexamples")
        return [(out, "") for _ in cfgs]
    res: list[tuple[Path | None, str]] = []
    for cfg in cfgs:
        why = not_pinned(cfg, a.engine, a.plugins, getattr(a, "hash_compaction", False))
        res.append((committed, "") if why is None else (SCRATCH_DIR, why))
    return res


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _lock(d: Path, held: dict[Path, int]) -> None:
    """Hold an exclusive flock on output directory ``d`` until the process ends, so two
    runs cannot interleave their traces there; a second run waits for the first."""
    import fcntl

    key = d.resolve() if d.exists() else d.absolute()
    if key in held:
        return
    try:
        d.mkdir(exist_ok=True)
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise WriteError(d, e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"gmemcheck: waiting for another gmemcheck run writing to {d}", file=sys.stderr,
              flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    held[key] = fd


def _unlock(held: dict[Path, int]) -> None:
    for fd in held.values():
        os.close(fd)        # closing the descriptor releases its flock
    held.clear()


def _report(a: argparse.Namespace, runs: list[PresetRun]) -> None:
    from . import report

    if a.format == "json":
        sys.stdout.write(report.to_json(runs))
    elif a.format == "junit":
        sys.stdout.write(report.junit(runs))
    else:
        sys.stdout.write(report.text(runs))
    sys.stdout.flush()


def _set_memory_cap(limit: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and limit > hard:
        raise UsageError(f"gmemcheck check: --max-memory {limit}: above the hard limit {hard}")
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _out_of_memory(cfg: Any, a: argparse.Namespace, names: list[str]) -> PresetRun:
    from .runner import Cell

    cap = f"memory<={_fmt_bytes(a.max_memory)}"
    pr = PresetRun(cfg.name, cfg.description, a.engine, 0, 0, 0.0, False, None, {})
    for n in names:
        pr.cells.append(Cell(cfg.name, n, "-", "inconclusive", cfg.expect_verdicts.get(n),
                             a.engine, cap, 0, 0.0, None, None,
                             f"--max-memory {_fmt_bytes(a.max_memory)} reached", "inconclusive"))
    pr.notes.append(f"ran out of memory under --max-memory {_fmt_bytes(a.max_memory)}")
    return pr


def _fmt_bytes(n: int) -> str:
    for unit, size in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _check_one(a: argparse.Namespace, cfg: Any, out: Path | None, why: str | None,
               caps: Caps, show_progress: bool, workers: int
               ) -> tuple[PresetRun, str | None, list[str]]:
    """Check one preset of ``gmemcheck check`` and write its trace files: the run, the
    write error if one happened (the run's traces are then not all written), and the
    lines for stderr after it."""
    def progress(info: dict[str, Any], name: str = cfg.name) -> None:
        print(f"gmemcheck: {name}: {info['states']:,} states, queue "
              f"{info['queue']:,}, {info['rate']:,.0f} states/s, depth "
              f"{info['depth']}", file=sys.stderr, flush=True)

    def log(msg: str, name: str = cfg.name) -> None:
        print(f"gmemcheck: {name}: {msg.strip()}", file=sys.stderr, flush=True)

    walk_depth = a.depth or 60
    sym = sym_opts(a, log if show_progress else None)
    if show_progress:
        log(f"{a.engine} started")
    started = time.perf_counter()
    try:
        pr = compute_preset(cfg, a.props, a.engine, caps,
                            progress if show_progress else None, a.walks, walk_depth,
                            a.seed, sym, workers, a.hash_compaction)
    except MemoryError:
        if not a.max_memory:
            raise
        pr = _out_of_memory(cfg, a, a.props or list(properties.REGISTRY))
    if show_progress:
        log(f"{a.engine} done in {time.perf_counter() - started:.1f}s")
    if a.engine == "simulate":
        pr.notes.append(f"reproduce with --engine simulate --walks {a.walks} "
                        f"--depth {walk_depth} --seed {a.seed}")
    after: list[str] = []
    if out is not None:
        try:
            write_run(pr, out)
        except WriteError as e:
            return pr, str(e), after
        if why and pr.written:
            after.append(f"gmemcheck: {cfg.name}: {len(pr.written)} trace(s) written under "
                         f"{out / cfg.name}/ (counterexamples/ holds only the pinned runs: "
                         f"{why})")
    return pr, None, after


# the arguments of the presets checked by worker processes (check --workers N with
# several presets), set before the pool forks
_JOBS: dict[str, Any] = {}


def _check_job(i: int) -> tuple[str, Any]:
    """Worker side of ``check --workers N``: preset ``i`` checked in one process; its
    run (picklable once its traces are written) or the exception it raised."""
    j = _JOBS
    out, why = j["targets"][i]
    try:
        pr, werr, after = _check_one(j["a"], j["cfgs"][i], out, why, j["caps"],
                                     j["progress"], 1)
        pr.pending = []  # written (or not wanted): what is left holds the model
        return "ok", (pr, werr, after)
    except BaseException as e:  # re-raised by the parent, in preset order
        try:
            import pickle

            pickle.dumps(e)
            return "raise", e
        except Exception:
            return "raise", RuntimeError(f"{type(e).__name__}: {e}")


def cmd_check(a: argparse.Namespace) -> int:
    from .plugins import load

    for f in a.plugins:
        load(f)
    cfgs = run_presets(a, "check")
    targets = _where_to_write(a, cfgs)
    caps = Caps(a.max_states, a.max_depth, a.max_seconds)
    show_progress = a.progress if a.progress is not None else sys.stderr.isatty()
    held: dict[Path, int] = {}
    runs: list[PresetRun] = []
    if a.max_memory:
        _set_memory_cap(a.max_memory)
    # --workers N: with one preset, N processes share its exploration; with several,
    # N presets are checked at once, one process each, reported in preset order.
    parallel = a.workers > 1 and len(cfgs) > 1
    pool = None
    try:
        for out, _ in targets:
            if out is not None:
                _lock(out, held)
        if parallel:
            import multiprocessing as mp

            _JOBS.update(a=a, cfgs=cfgs, targets=targets, caps=caps, progress=show_progress)
            pool = mp.get_context("fork").Pool(min(a.workers, len(cfgs)))
            results: Any = (r for r in pool.imap(_check_job, range(len(cfgs)), chunksize=1))
        else:
            results = (("ok", _check_one(a, cfg, out, why, caps, show_progress, a.workers))
                       for (out, why), cfg in zip(targets, cfgs, strict=True))
        for how, res in results:
            if how == "raise":
                raise res
            pr, werr, after = res
            runs.append(pr)
            if werr is not None:
                _report(a, runs)
                print(f"gmemcheck: {werr}; the verdicts above are complete for "
                      f"{len(runs)} of {len(cfgs)} preset(s), their traces are not",
                      file=sys.stderr)
                return EXIT_IOERR
            for line in after:
                print(line, file=sys.stderr)
    finally:
        if pool is not None:
            pool.terminate()
            _JOBS.clear()
        _unlock(held)
    _report(a, runs)
    return exit_status(runs)


def _replay_loaded(lc: Any) -> None:
    """Replay a trace read from a file (states, return values, ``!`` lines, the
    property); values of the wrong type are a bad file, not a crash."""
    try:
        replay(lc.model, lc.trace, lc.prop)
    except ReplayError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as e:
        raise TraceFileError(f"{lc.path}: holds values this model cannot take "
                             f"({type(e).__name__}: {e})") from None


def cmd_replay(a: argparse.Namespace) -> int:
    from .runner import check_pair

    lc = load_counterexample(a.file)
    try:
        _replay_loaded(lc)
    except ReplayError as e:
        print(f"gmemcheck replay: {a.file}: does not replay: {e}", file=sys.stderr)
        return EXIT_MISMATCH
    pair = check_pair(lc)
    kind = "lasso" if lc.trace.loop is not None else "trace"
    print(f"{a.file}: replays: {len(lc.trace)}-step {kind} on preset "
          f"{lc.meta['model'].get('preset')} (axes and bounds as recorded) shows "
          f"{lc.prop.name} ({lc.prop.kind.value}) violated, return values and side effects "
          f"included; {pair}")
    return EXIT_OK


def cmd_show(a: argparse.Namespace) -> int:
    lc = load_counterexample(a.file)
    try:
        _replay_loaded(lc)       # never print what the model does not do
    except ReplayError as e:
        print(f"gmemcheck show: {a.file}: does not replay: {e}", file=sys.stderr)
        return EXIT_MISMATCH
    header = [f"{lc.meta.get('description', '')}",
              f"{lc.prop.name} ({lc.prop.kind.value}), {len(lc.trace)} steps"]
    sys.stdout.write(render_text(lc.trace, lc.model, header))
    return EXIT_OK


def cmd_graph(a: argparse.Namespace) -> int:
    import networkx as nx

    from .plugins import load

    for f in a.plugins:
        load(f)
    from .checker.explicit import explore
    from .model import build
    from .runner import size_check

    if a.around_trace:
        return graph_around_trace(a)
    if not a.config:
        raise UsageError("gmemcheck graph: --config PRESET is required (or --around-trace "
                         "FILE)")
    cfg = apply_overrides(load_preset(a.config), a.sets)
    size_check(cfg, "bfs", capped=True)       # --max-states caps the export
    model = build(cfg)
    exp = explore(model, caps=Caps(max_states=a.max_states), keep_graph=True)
    g = exp.graph()
    path_states: list[int] = []
    if a.trace:
        lc = load_counterexample(a.trace)
        ids = {s: i for i, s in enumerate(exp.states)}
        path_states = [ids[s] for s in lc.trace.states if s in ids]
    on_path = set(path_states)
    on_edges = set(zip(path_states, path_states[1:], strict=False))
    for n, d in g.nodes(data=True):
        d["label"] = str(n)
        d["on_trace"] = n in on_path
    for u, v, d in g.edges(data=True):
        d["label"] = ";".join(f"{x[0]}{x[1]}" for x in d.pop("labels"))
        d["on_trace"] = (u, v) in on_edges
    if a.format == "graphml":
        import io

        buf = io.BytesIO()
        nx.write_graphml(g, buf)
        text = buf.getvalue().decode()
    else:
        text = _dot(g, exp.complete)
    if a.output:
        from .checker.traces import atomic_write

        atomic_write(Path(a.output), text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _dot(g: Any, complete: bool) -> str:
    lines = ["digraph gmemcheck {", "  node [shape=circle, fontsize=8];",
             f"  // {'complete' if complete else 'capped'} exploration, "
             f"{g.number_of_nodes()} states"]
    for n, d in g.nodes(data=True):
        attrs = ['style=filled, fillcolor="#ffcc66"'] if d["on_trace"] else []
        if d.get("init"):
            attrs.append("shape=doublecircle")
        lines.append(f"  {n} [{', '.join(attrs)}];" if attrs else f"  {n};")
    for u, v, d in g.edges(data=True):
        lab = d["label"].replace('"', "'")
        style = ', color=red, penwidth=2' if d["on_trace"] else ""
        lines.append(f'  {u} -> {v} [label="{lab}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def cmd_list(a: argparse.Namespace) -> int:
    from .model.axes import BOUND_DOCS, BOUNDS
    from .model.registry import AXES
    from .plugins import LOADED, load

    for f in a.plugins:
        load(f)
    print("presets (configs/*.toml):")
    for n in builtin_presets():
        cfg = load_preset(n)
        states = f"{cfg.expect_states:,} states" if cfg.expect_states else "states not pinned"
        print(f"  {n:<22} {cfg.description}  [{states}]")
    print("\nproperties:")
    from .model import build

    models = [build(load_preset(n)) for n in builtin_presets()]
    for name, fac in properties.REGISTRY.items():
        # kind and doc from the first built-in design the property applies to
        p = next((q for q in (fac(m) for m in models) if q is not None), None)
        kind = p.kind.value if p else "-"
        doc = (p.doc.split(". ")[0].rstrip(".") + ".") if p else "(applies to no built-in preset)"
        print(f"  {name:<36} {kind:<11} {doc[:110]}")
    print("\ndesign axes (one value each in a preset's [axes]):")
    for name, ax in AXES.items():
        where = f"DOMAIN.md {ax.source}" if ax.origin == "built-in" else \
            f"plug-in {LOADED[ax.origin]['file'] if ax.origin in LOADED else ax.origin}" + \
            (f", {ax.source}" if ax.source else "")
        print(f"  {name:<26} {ax.doc} ({where})")
        if ax.kind == "choice":
            for v in ax.values.values():
                origin = "" if v.origin == "built-in" else \
                    f" [plug-in {LOADED[v.origin]['file'] if v.origin in LOADED else v.origin}]"
                print(f"      {v.value:<20} {v.doc}{origin}")
        else:
            print(f"      {ax.describe_values()}")
    print("\nbounds ([bounds]):")
    for name, vals in BOUNDS.items():
        print(f"  {name:<26} {BOUND_DOCS[name]} ({vals[0]}..{vals[-1]})")
    return EXIT_OK


def cmd_claims(a: argparse.Namespace) -> int:
    from .checker.traces import atomic_write
    from .claims import generate

    text = generate()
    path = Path(a.output)
    if a.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"gmemcheck claims: {path} is not current; run gmemcheck claims",
                  file=sys.stderr)
            return EXIT_MISMATCH
        print(f"{path} is current")
        return EXIT_OK
    atomic_write(path, text)
    print(f"wrote {path}")
    return EXIT_OK


# ------------------------------------------------------------------------ report
def add_report_parser(sub: Any) -> None:
    """``gmemcheck report``: the options of ``check`` plus ``--out`` / ``--from-json``."""
    rp = sub.add_parser("report", help="write a static HTML report of the verdict matrix "
                        "and every counterexample, drawn step by step")
    rp.add_argument("--out", required=True, metavar="DIR",
                    help="the folder to write (DIR/index.html first); replaced if it holds "
                    "a previous report, refused if it holds anything else")
    rp.add_argument("--from-json", metavar="FILE",
                    help="draw an existing `gmemcheck check --format json` result instead "
                    "of running the checks")
    add_run_options(rp)


def cmd_report(a: argparse.Namespace) -> int:
    """Run the checks (or read their JSON result) and write the site. Exit status: that
    of ``check`` for a run, 0 for ``--from-json``; 64 for bad input; 1 when a trace file
    named by the JSON does not replay."""
    import json
    import time

    from . import htmlreport
    from .plugins import load

    t0 = time.perf_counter()
    out = Path(a.out)
    if a.from_json:
        given = [o for o, v in (("--config", a.configs), ("--property", a.props),
                                ("--set", a.sets), ("--plugin", a.plugins)) if v]
        if given:
            raise UsageError(f"gmemcheck report: --from-json draws an existing result; "
                             f"{', '.join(given)} cannot change it")
    for f in a.plugins:
        load(f)
    try:
        if a.from_json:
            doc = htmlreport.read_results(a.from_json)
            code = EXIT_OK
            with htmlreport.staged(out) as tmp:
                summary = htmlreport.build_site(doc, tmp, [Path.cwd(),
                                                           Path(a.from_json).parent])
        else:
            cfgs = run_presets(a, "report")
            caps = Caps(a.max_states, a.max_depth, a.max_seconds)
            show_progress = a.progress if a.progress is not None else sys.stderr.isatty()
            sym = sym_opts(a)
            with htmlreport.staged(out) as tmp:
                runs = []
                for cfg in cfgs:
                    def progress(info: dict[str, Any], name: str = cfg.name) -> None:
                        print(f"gmemcheck: {name}: {info['states']:,} states",
                              file=sys.stderr, flush=True)
                    runs.append(run_preset(cfg, a.props, a.engine, caps, tmp / "traces",
                                           progress if show_progress else None, a.walks,
                                           a.depth or 60, a.seed, sym, a.workers,
                                           a.hash_compaction))
                from . import report

                doc = json.loads(report.to_json(runs))
                for p, r in zip(doc["presets"], runs, strict=True):
                    p["description"] = r.description
                checked = time.perf_counter()
                summary = htmlreport.build_site(doc, tmp, [Path.cwd()], copy_traces=False)
                sys.stdout.write(report.text(runs))
            code = exit_status(runs)
            print(f"gmemcheck report: checks {checked - t0:.1f}s, site "
                  f"{time.perf_counter() - checked:.1f}s", file=sys.stderr)
    except htmlreport.ReplayFailed as e:
        print(f"gmemcheck report: {e}", file=sys.stderr)
        return EXIT_MISMATCH
    except htmlreport.ReportError as e:
        raise UsageError(f"gmemcheck report: {e}") from None
    print(f"wrote {out / 'index.html'}: {summary.presets} presets, {summary.verdicts} "
          f"verdicts, {summary.trace_pages} traces drawn in {summary.pictures} step pictures")
    return code


def graph_around_trace(a: argparse.Namespace) -> int:
    """``graph --around-trace FILE``: the trace's path and its immediate alternatives."""
    from .tracegraph import around_trace, summary, to_dot

    if a.config or a.sets or a.plugins:
        raise UsageError("gmemcheck graph: --around-trace takes the model from the trace; "
                         "drop --config/--set/--plugin")
    lc = load_counterexample(a.around_trace)
    try:
        replay(lc.model, lc.trace, lc.prop)
    except ReplayError as e:
        print(f"gmemcheck graph: {a.around_trace}: does not replay: {e}", file=sys.stderr)
        return EXIT_MISMATCH
    g = around_trace(lc.model, lc.trace, lc.prop)
    if a.format == "graphml":
        import io

        import networkx as nx

        buf = io.BytesIO()
        nx.write_graphml(g, buf)
        text = buf.getvalue().decode()
    else:
        s = summary(g)
        text = to_dot(g, f"{lc.prop.name} on {lc.meta['model'].get('preset')}: "
                      f"{len(lc.trace)} steps (bold), {s['alternatives']} other enabled "
                      f"steps (dashed), {s['violating']} states breaking the property (red)")
    if a.output:
        from .checker.traces import atomic_write

        atomic_write(Path(a.output), text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


COMMANDS = {"claims": cmd_claims, "check": cmd_check, "replay": cmd_replay, "show": cmd_show,
            "graph": cmd_graph, "list": cmd_list, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    """The one error path: every failure is one line on stderr and its own exit code."""
    parser = make_parser()
    try:
        a = parser.parse_args(argv)
        if not a.cmd:
            raise UsageError("gmemcheck: a command is required (check, replay, show, graph, "
                             "list, claims, report); see gmemcheck --help")
        return COMMANDS[a.cmd](a)
    except (UsageError, ConfigError, TraceFileError, RunError, PluginError,
            properties.UnknownProperty, ConflictError) as e:
        msg = str(e)
        if not msg.startswith("gmemcheck"):
            msg = f"gmemcheck: {msg}"
        print(msg, file=sys.stderr)
        return EXIT_USAGE
    except EngineBug as e:
        print(f"gmemcheck: internal error: {e}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("gmemcheck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except WriteError as e:
        print(f"gmemcheck: {e}", file=sys.stderr)
        return EXIT_IOERR
    except OSError as e:       # an output file of graph -o or claims -o
        where = e.filename or "output"
        print(f"gmemcheck: cannot write {where}: {e.strerror or e}", file=sys.stderr)
        return EXIT_IOERR
    except Exception as e:    # noqa: BLE001  (the contract: anything else exits 70)
        what = "out of memory" if isinstance(e, MemoryError) else \
            f"{type(e).__name__}: {e}".splitlines()[0][:200]
        print(f"gmemcheck: internal error: {what}; {_save_traceback()}", file=sys.stderr)
        return EXIT_INTERNAL


def _save_traceback() -> str:
    """Write the current traceback to a file; say where (or that it could not be)."""
    text = traceback.format_exc()
    try:
        fd, path = tempfile.mkstemp(prefix="gmemcheck-crash-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except (OSError, MemoryError):
        return "the traceback could not be saved"
    return f"traceback saved to {path}"


if __name__ == "__main__":
    sys.exit(main())
