"""The ``gmemcheck`` command line. The only module that prints or exits.

Exit codes: 0 every verdict matches its preset's expectation; 1 one differs (a new
violation, a violation that disappeared, or a changed distinct-state count; for
``replay``, a trace that does not replay); 2 some verdict is bounded or inconclusive;
64 usage or input errors (one line on stderr naming what and where); 70 an internal
error (an engine trace that does not replay).
"""

from __future__ import annotations

import argparse
import sys
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
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_USAGE,
    RunError,
    SymOpts,
    exit_status,
    load_counterexample,
    run_preset,
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
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {s!r}")
    return v


def nonneg_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {s!r}")
    return v


def make_parser() -> Parser:
    p = Parser(prog="gmemcheck", description="Model checker for the memory semantics of "
               "Linux guest_memfd: huge folios, truncate/split, preparedness, SEV-SNP RMP.")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)

    c = sub.add_parser("check", help="check properties on design presets (default: all "
                       "built-in presets, all properties)")
    c.add_argument("--config", "--preset", dest="configs", action="append", metavar="PRESET",
                   help="a built-in preset name or a TOML file (repeatable)")
    c.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE",
                   help="a plug-in adding design-axis values or properties (repeatable)")
    c.add_argument("--property", "-p", dest="props", action="append", metavar="NAME",
                   help="a property to check (repeatable; default: all)")
    c.add_argument("--engine", default="bfs",
                   choices=("bfs", "simulate", "bmc", "kinduction", "strongest"),
                   help="bfs: exhaustive breadth-first search; simulate: seeded random walks; "
                   "bmc: Z3 bounded model checking up to --depth steps; kinduction: Z3 "
                   "k-induction proofs of the safety properties; strongest: bfs, then a "
                   "k-induction proof at pages_per_huge=--prove-at of every safety property "
                   "that bfs found to hold")
    c.add_argument("--max-states", type=positive_int, help="cap on distinct states")
    c.add_argument("--max-depth", type=positive_int, help="cap on search depth")
    c.add_argument("--max-seconds", type=positive_float, help="cap on wall time per preset")
    c.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override an axis or bound of the preset for this run (repeatable)")
    c.add_argument("--format", default="text", choices=("text", "json", "junit"))
    c.add_argument("--out", default="counterexamples", metavar="DIR",
                   help="where counterexample traces go (default: counterexamples)")
    c.add_argument("--no-write", action="store_true", help="do not write trace files")
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress lines on stderr (default: only on a terminal)")
    c.add_argument("--walks", type=positive_int, default=200, help="simulate: number of walks")
    c.add_argument("--depth", type=positive_int, default=None,
                   help="simulate: steps per walk (default 60); bmc: most steps (default 10)")
    c.add_argument("--k", type=positive_int, default=1,
                   help="kinduction/strongest: induction depth (default 1)")
    c.add_argument("--prove-at", type=positive_int, default=512, metavar="PAGES",
                   help="strongest: pages_per_huge of the induction proofs (default 512)")
    c.add_argument("--window", action=argparse.BooleanOptionalAction, default=None,
                   help="strongest: prove over representative pages (the default above "
                   "1024 pages per huge folio, k=1)")
    c.add_argument("--solver-timeout", type=positive_float, metavar="SECONDS",
                   help="bmc/kinduction: give up on one solver query after this long "
                   "(inconclusive)")
    c.add_argument("--seed", type=nonneg_int, default=0, help="simulate: random seed")

    r = sub.add_parser("replay", help="replay a counterexample through the model")
    r.add_argument("file", help="an .itf.json trace written by gmemcheck")

    s = sub.add_parser("show", help="print a counterexample as a selftest-like listing")
    s.add_argument("file", help="an .itf.json trace written by gmemcheck")

    g = sub.add_parser("graph", help="export the explored state graph (DOT or GraphML)")
    g.add_argument("--config", "--preset", dest="config", required=True, metavar="PRESET")
    g.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE")
    g.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    g.add_argument("--format", default="dot", choices=("dot", "graphml"))
    g.add_argument("--trace", metavar="FILE", help="highlight the path of this trace")
    g.add_argument("--max-states", type=positive_int, default=20000,
                   help="cap on the states exported (default 20000)")
    g.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")

    cl = sub.add_parser("claims", help="check the claims of the thread and write "
                        "docs/claims.md")
    cl.add_argument("-o", "--output", default="docs/claims.md", metavar="FILE")
    cl.add_argument("--check", action="store_true",
                    help="only compare with FILE: exit 1 if it is not current")

    ls = sub.add_parser("list", help="list presets, properties and design axes")
    ls.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE",
                    help="also list what this plug-in adds (repeatable)")
    return p


# ------------------------------------------------------------------------ commands
def cmd_check(a: argparse.Namespace) -> int:
    from .plugins import load

    for f in a.plugins:
        load(f)
    names = a.configs or builtin_presets()
    if not names:
        raise UsageError("gmemcheck check: no presets given and none built in")
    # presets first: their own plugins = [...] may bring the properties -p names
    cfgs = [apply_overrides(load_preset(n), a.sets) for n in names]
    if a.props:
        for n in a.props:
            if n not in properties.REGISTRY:
                raise UsageError(f"gmemcheck check: unknown property {n!r} "
                                 f"(see gmemcheck list)")
    caps = Caps(a.max_states, a.max_depth, a.max_seconds)
    show_progress = a.progress if a.progress is not None else sys.stderr.isatty()
    out = None if a.no_write else Path(a.out)
    runs = []
    for cfg in cfgs:
        def progress(info: dict[str, Any], name: str = cfg.name) -> None:
            print(f"gmemcheck: {name}: {info['states']:,} states, queue {info['queue']:,}, "
                  f"{info['rate']:,.0f} states/s, depth {info['depth']}", file=sys.stderr,
                  flush=True)
        walk_depth = a.depth or 60
        sym = SymOpts(depth=a.depth or 10, k=a.k, prove_at=a.prove_at, window=a.window,
                      timeout_ms=int(a.solver_timeout * 1000) if a.solver_timeout else None)
        runs.append(run_preset(cfg, a.props, a.engine, caps, out,
                               progress if show_progress else None, a.walks, walk_depth,
                               a.seed, sym))
        if a.engine == "simulate":
            runs[-1].notes.append(f"reproduce with --engine simulate --walks {a.walks} "
                                  f"--depth {walk_depth} --seed {a.seed}")
    from . import report

    if a.format == "json":
        sys.stdout.write(report.to_json(runs))
    elif a.format == "junit":
        sys.stdout.write(report.junit(runs))
    else:
        sys.stdout.write(report.text(runs))
    return exit_status(runs)


def cmd_replay(a: argparse.Namespace) -> int:
    lc = load_counterexample(a.file)
    try:
        replay(lc.model, lc.trace, lc.prop)
    except ReplayError as e:
        print(f"gmemcheck replay: {a.file}: does not replay: {e}", file=sys.stderr)
        return EXIT_MISMATCH
    kind = "lasso" if lc.trace.loop is not None else "trace"
    print(f"{a.file}: replays: {len(lc.trace)}-step {kind} on preset "
          f"{lc.meta['model'].get('preset')} shows {lc.prop.name} ({lc.prop.kind.value}) "
          "violated")
    return EXIT_OK


def cmd_show(a: argparse.Namespace) -> int:
    lc = load_counterexample(a.file)
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

    cfg = apply_overrides(load_preset(a.config), a.sets)
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

    ref = build(load_preset(builtin_presets()[0])) if builtin_presets() else None
    for name, fac in properties.REGISTRY.items():
        p = fac(ref) if ref is not None else None
        kind = p.kind.value if p else "-"
        doc = (p.doc.split(". ")[0] + ".") if p else ""
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


COMMANDS = {"claims": cmd_claims, "check": cmd_check, "replay": cmd_replay, "show": cmd_show,
            "graph": cmd_graph, "list": cmd_list}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    try:
        a = parser.parse_args(argv)
        if not a.cmd:
            raise UsageError("gmemcheck: a command is required (check, replay, show, graph, "
                             "list, claims); see gmemcheck --help")
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


if __name__ == "__main__":
    sys.exit(main())
