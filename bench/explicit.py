"""The explicit engine against another checkout of gmemcheck (for example the commit
before an engine change), on the presets, with every property checked (the work of
`gmemcheck check` minus writing trace files).

Prints per preset and per tree: distinct states, distinct states per second (wall and
CPU), the CPU seconds of the process and its worker processes, and the speed-up ratio
of this tree over the other. The machine is shared and noisy, so runs of the two trees
are interleaved, repeated, and the median taken; the CPU ratio is the steadier figure.
Each row prints bytes per stored state: the growth of the process's peak resident set
during the search, over the distinct states (the C loop's memory is not Python objects,
so tracemalloc would not see it); ``--memory`` is accepted and changes nothing. With
``--loops`` this tree also runs with its Python loop (``GMEMCHECK_ACCEL=0``), as 'py'.
With ``--pages4`` it runs the given presets (default mainline-6.13 and hugetlb) at
``pages_per_huge = 4`` under a time cap in each tree and prints the distinct states
reached, states per second and bytes per state (peak RSS over states). With ``--cli``
it times the whole ``gmemcheck check --no-write`` process over every built-in preset in
each tree, and in this tree with ``--workers 2`` too (presets checked two at a time).

    git worktree add /tmp/base adc740b      # the commit before the engine change
    python3 bench/explicit.py --base /tmp/base rfc-thp --memory
    python3 bench/explicit.py --base /tmp/base --matrix
    python3 bench/explicit.py --pages4 --seconds 120 --base /tmp/base  # mainline-6.13, hugetlb
    python3 bench/explicit.py --cli --base /tmp/base   # whole process, matrix, and --workers 2

Targets (issue 14): rfc-thp at least 5x, the full matrix at least 3x, at most 300
bytes per stored state, and mainline-6.13 and hugetlb at 4 pages exhaustive within 5
minutes and 8 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
# the environment of each compared tree: 'py' is this tree with the C loop switched off
ENVS = {"py": {"GMEMCHECK_ACCEL": "0"}}

CHILD = r"""
import json, resource, sys, time, gc
from gmemcheck import properties
from gmemcheck.checker.explicit import Caps
from gmemcheck.checker.run import check
from gmemcheck.model import apply_overrides, build, load_preset
preset, sets, opts = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
memory = sys.argv[4] == "1"
m = build(apply_overrides(load_preset(preset), sets))
props = properties.for_model(m)
caps = Caps(max_seconds=opts.pop("seconds")) if "seconds" in opts else None
gc.collect()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    from gmemcheck.checker import accel
    loop = accel.describe() if accel.usable(m, False, opts.get("workers", 1), True) else "Python"
except ImportError:  # a tree from before the C loop
    loop = "Python"
t0, c0 = time.perf_counter(), time.process_time()
run = check(m, props, caps=caps, **opts)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
# the search's memory: the growth of the peak resident set (the C loop's memory is not
# Python objects, so tracemalloc would not see it)
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024
print(json.dumps({"states": run.states, "transitions": run.transitions, "wall": wall,
                  "cpu": cpu + kids.ru_utime + kids.ru_stime, "master_cpu": cpu,
                  "complete": run.complete, "peak": peak,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "verdicts": [v.outcome for v in run.verdicts], "loop": loop}))
"""


def run_child(tree: Path, preset: str, sets: list[str], opts: dict, memory: bool = False,
              extra_env: dict | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), **(extra_env or {}))
    out = subprocess.run([sys.executable, "-c", CHILD, preset, json.dumps(sets),
                          json.dumps(opts), "1" if memory else "0"],
                         capture_output=True, text=True, env=env, cwd=tree)
    if out.returncode != 0:
        raise SystemExit(f"{tree} {preset}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout)


def cli_matrix(trees: list[tuple[str, Path]], a: argparse.Namespace) -> None:
    """The whole ``gmemcheck check --no-write`` process over every built-in preset, in
    each tree (and in this one with --workers 2 as well), interleaved, median of
    ``--repeat``: wall seconds, CPU seconds (with the worker processes), states/s."""
    import resource
    import time

    runs = [(t, tree, []) for t, tree in trees]
    if a.workers == 1:
        runs.insert(1, ("new --workers 2", HERE, ["--workers", "2"]))
    elif a.workers > 1:
        runs[0] = (f"new --workers {a.workers}", HERE, ["--workers", str(a.workers)])
    times: dict[str, list[tuple[float, float]]] = {r[0]: [] for r in runs}
    states: dict[str, int] = {}
    for _ in range(a.repeat):
        for t, tree, extra in runs:
            env = dict(os.environ, PYTHONPATH=str(tree), **ENVS.get(t, {}))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "gmemcheck.cli", "check", "--no-write",
                                  "--format", "json", *extra], capture_output=True, text=True,
                                 env=env, cwd=tree)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if out.returncode not in (0, 1):
                raise SystemExit(f"{tree}: exit {out.returncode}: {out.stderr.strip()[-300:]}")
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            res = json.loads(out.stdout)["results"]
            states[t] = sum({r["preset"]: r["states"] for r in res}.values())
            times[t].append((wall, cpu))
    print(f"whole process, every built-in preset, median of {a.repeat}")
    print(f"{'tree':<18} {'states':>9} {'wall s':>8} {'cpu s':>8} {'states/s':>9}")
    med = {}
    for t, _, _ in runs:
        wall = statistics.median(w for w, _ in times[t])
        cpu = statistics.median(c for _, c in times[t])
        med[t] = (wall, cpu)
        print(f"{t:<18} {states[t]:>9,} {wall:>8.2f} {cpu:>8.2f} {states[t] / wall:>9,.0f}")
    if "base" in med:
        for t, _, _ in runs:
            if t != "base":
                print(f"{t:<18} speed-up over base: wall {med['base'][0] / med[t][0]:.2f}x, "
                      f"cpu {med['base'][1] / med[t][1]:.2f}x; same states: "
                      f"{states[t] == states['base']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("presets", nargs="*")
    ap.add_argument("--base", type=Path, help="another checkout to compare with")
    ap.add_argument("--matrix", action="store_true", help="every built-in preset")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="also bytes per stored state")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--hash-compaction", action="store_true")
    ap.add_argument("--pages4", action="store_true", help="pages_per_huge=4 under a time cap")
    ap.add_argument("--seconds", type=float, default=300.0, help="time cap of --pages4 runs")
    ap.add_argument("--loops", action="store_true",
                    help="also this tree with its Python loop (GMEMCHECK_ACCEL=0), as 'py'")
    ap.add_argument("--cli", action="store_true",
                    help="time the whole `gmemcheck check` process over the matrix")
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from gmemcheck.model import builtin_presets

    presets = a.presets or (builtin_presets() if a.matrix else ["rfc-thp"])
    opts: dict = {}
    if a.workers > 1:
        opts["workers"] = a.workers
    if a.hash_compaction:
        opts["hash_compaction"] = True
    trees = [("new", HERE)] + ([("base", a.base)] if a.base else [])
    if a.loops:
        trees.append(("py", HERE))
    if a.cli:
        cli_matrix(trees, a)
        return
    if a.pages4:
        presets = a.presets or ["mainline-6.13", "hugetlb"]
        for p in presets:
            for t, tree in trees:
                d = run_child(tree, p, ["pages_per_huge=4"],
                              dict(opts if t == "new" else {}, seconds=a.seconds),
                              extra_env=ENVS.get(t))
                what = "exhaustive" if d["complete"] else f"capped at {a.seconds:g}s"
                print(f"{p} pages_per_huge=4 {t:<4} {opts or ''}: {d['states']:,} distinct "
                      f"states ({what}), {d['states'] / d['wall']:,.0f} states/s, peak RSS "
                      f"{d['rss_mb']:,.0f} MB = {d['rss_mb'] * 2**20 / d['states']:,.0f} "
                      f"bytes/state, {d['wall']:.0f} s; loop: {d['loop']}")
        return
    print(f"options: {opts or 'default (exact, one process)'}; median of {a.repeat}")
    print(f"{'preset':<26} {'tree':<5} {'states':>9} {'states/s':>9} {'cpu st/s':>9} "
          f"{'wall s':>7} {'cpu s':>7} {'B/state':>8}")
    tot = {t: [0.0, 0.0] for t, _ in trees}
    for p in presets:
        runs: dict[str, list[dict]] = {t: [] for t, _ in trees}
        for _ in range(a.repeat):
            for t, tree in trees:
                runs[t].append(run_child(tree, p, [], opts if t == "new" else {},
                                         extra_env=ENVS.get(t)))
        med = {}
        for t, _ in trees:
            wall = statistics.median(r["wall"] for r in runs[t])
            cpu = statistics.median(r["cpu"] for r in runs[t])
            n = runs[t][0]["states"]
            bps = f"{statistics.median(r['peak'] for r in runs[t]) / n:,.0f}"
            med[t] = (wall, cpu, runs[t][0]["verdicts"], n)
            tot[t][0] += wall
            tot[t][1] += cpu
            print(f"{p:<26} {t:<5} {n:>9,} {n / wall:>9,.0f} {n / cpu:>9,.0f} {wall:>7.2f} "
                  f"{cpu:>7.2f} {bps:>8}")
        for other, _ in trees[1:]:
            same = med["new"][2:] == med[other][2:]
            print(f"{'':<26} speed-up over {other}: wall {med[other][0] / med['new'][0]:.2f}x, "
                  f"cpu {med[other][1] / med['new'][1]:.2f}x; same states and verdicts: "
                  f"{same}")
    if len(presets) > 1:
        for other, _ in trees[1:]:
            print(f"{'all':<26} speed-up over {other}: wall {tot[other][0] / tot['new'][0]:.2f}x, "
                  f"cpu {tot[other][1] / tot['new'][1]:.2f}x")
    print(f"loop of 'new': {runs['new'][0]['loop']}")


if __name__ == "__main__":
    main()
