"""The Z3 engines, per preset:

* ``bmc``: for every safety or deadlock property that BFS finds violated, the length of
  the BMC trace next to the BFS one (they must be equal; the script exits 1 if not) and
  the BMC time;
* ``prove``: for every safety or deadlock property that holds on the preset, the time of
  its k-induction proof (or the counterexample-to-induction) at each size asked for.

    python3 bench/symbolic.py [--what bmc,prove] [--sizes 2,512] [PRESET ...]

Figures are wall-clock seconds on whatever machine runs it; compare them within one run.
"""

from __future__ import annotations

import argparse
import sys
import time

from gmemcheck import properties
from gmemcheck.checker.core import Kind, Result
from gmemcheck.checker.run import check
from gmemcheck.model import apply_overrides, build, builtin_presets, load_preset
from gmemcheck.symbolic.bmc import bmc
from gmemcheck.symbolic.kind import kinduction, window_for

SAFE = (Kind.SAFETY, Kind.DEADLOCK)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", default="bmc,prove,window",
                    help="bmc, prove (unrolled, --sizes), window (--window-sizes)")
    ap.add_argument("--sizes", default="2,512", help="pages_per_huge of the proofs")
    ap.add_argument("--window-sizes", default="512,262144",
                    help="pages_per_huge of the proofs over representative pages")
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("presets", nargs="*")
    a = ap.parse_args()
    what = set(a.what.split(","))
    bad = 0
    for name in a.presets or builtin_presets():
        cfg = load_preset(name)
        m = build(cfg)
        props = [p for p in properties.for_model(m) if p.kind in SAFE]
        run = check(m, props)
        by = {p.name: p for p in props}
        if "bmc" in what:
            viol = {v.property: len(v.trace) for v in run.verdicts
                    if v.result is Result.VIOLATED and v.trace is not None}
            if viol:
                t0 = time.perf_counter()
                vs = bmc(m, [by[n] for n in viol], max(viol.values()))
                dt = time.perf_counter() - t0
                for v in vs:
                    n = len(v.trace) if v.trace is not None else None
                    same = n == viol[v.property]
                    bad += not same
                    print(f"{name:26s} bmc   {v.property:36s} bfs {viol[v.property]:2d} "
                          f"bmc {n if n is not None else '-':>2} "
                          f"{'same' if same else 'DIFFERENT'}", flush=True)
                print(f"{name:26s} bmc   all {len(viol)} violations to depth "
                      f"{max(viol.values())} in {dt:.1f}s", flush=True)
        if "prove" in what:
            holds = [by[v.property] for v in run.verdicts if v.result is Result.HOLDS]
            for size in (int(x) for x in a.sizes.split(",")):
                big = build(apply_overrides(cfg, [f"pages_per_huge={size}"])) if size != \
                    m.k.N else m
                t0 = time.perf_counter()
                vs = kinduction(big, holds, k=a.k, mine_from=m)
                dt = time.perf_counter() - t0
                for v in vs:
                    res = "proved" if v.result is Result.HOLDS else \
                        f"CTI: {v.reason[:90]}"
                    print(f"{name:26s} prove N={size:<6d} {v.property:36s} {res}", flush=True)
                n_ok = sum(v.result is Result.HOLDS for v in vs)
                print(f"{name:26s} prove N={size:<6d} {n_ok}/{len(vs)} proved in {dt:.1f}s "
                      f"(all properties of the preset in one Houdini run)", flush=True)
        if "window" in what:
            holds = [by[v.property] for v in run.verdicts if v.result is Result.HOLDS]
            for size in (int(x) for x in a.window_sizes.split(",") if x):
                W = window_for(m, size)
                t0 = time.perf_counter()
                vs = kinduction(m, holds, k=1, pages_per_huge=size, window=W)
                dt = time.perf_counter() - t0
                for v in vs:
                    res = "proved" if v.result is Result.HOLDS else f"not proved: {v.reason[:90]}"
                    print(f"{name:26s} window N={size:<6d} W={W:<3d} {v.property:36s} {res}",
                          flush=True)
                n_ok = sum(v.result is Result.HOLDS for v in vs)
                print(f"{name:26s} window N={size:<6d} W={W:<3d} {n_ok}/{len(vs)} proved in "
                      f"{dt:.1f}s (mining at the preset's size included)", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
