"""Engine speed and memory on the largest toy model (tests/toy_models.py counters_grid).

Prints distinct states per second, transitions per second and bytes per stored state
(resident-set growth during the search divided by the states kept, which includes the
interning dict, the state tuples, parent pointers, labels and depths). Targets: at
least 50,000 states/s and at most 300 bytes/state on a 2-core machine. The machine is
shared and noisy: the run is repeated and the median printed.

    python3 bench/engine.py [--k 5 --m 11 --repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from toy_models import counters_grid  # noqa: E402

from gmemcheck.checker.explicit import explore  # noqa: E402


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--m", type=int, default=11)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    model = counters_grid(a.k, a.m)
    rates, trates, per_state = [], [], []
    for _ in range(a.repeat):
        gc.collect()
        before = rss()
        t0 = time.perf_counter()
        exp = explore(model)
        dt = time.perf_counter() - t0
        after = rss()
        n = len(exp.states)
        rates.append(n / dt)
        trates.append(exp.transitions / dt)
        per_state.append((after - before) / n)
        del exp
    print(f"model {model.name}: {n:,} distinct states, "
          f"{statistics.median(trates):,.0f} transitions/s (median)")
    print(f"distinct states/s: median {statistics.median(rates):,.0f} "
          f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})")
    print(f"bytes per stored state: {statistics.median(per_state):.0f}")


if __name__ == "__main__":
    main()
