"""One definition for both engines? What evaluating a step's Z3 form costs next to the
explicit Python step (issue 12, point 6; the decision is in docs/api.md).

For each preset, a breadth-first sample of states; on each, every successor is computed
twice: by the explicit engine's Python steps (``checker.explicit.successors``), and from
the Z3 encoding of the same actions (``SymModel.successors``: the concrete state and
arguments substituted into the encoded guard and effect, then simplified, which is the
cheapest way to evaluate the Z3 form on a concrete state). The two sets are compared
(they must be equal), and the time per successor printed both ways.

    python3 bench/forms.py [--states 40] [PRESET ...]

Figures are wall-clock on whatever machine runs it; compare them within one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque

from gmemcheck.checker.explicit import successors
from gmemcheck.model import build, load_preset
from gmemcheck.symbolic.model import SymModel

DEFAULT = ["mainline-6.13", "rfc-thp", "hugetlb"]


def sample(model, n):
    init = list(model.init_states())
    seen, out, dq = set(init), [], deque(init)
    while dq and len(seen) < 50 * n:
        s = dq.popleft()
        out.append(s)
        if model.terminal(s):
            continue
        for _, _, t in successors(model, s):
            if t not in seen:
                seen.add(t)
                dq.append(t)
    return out[:: max(1, len(out) // n)][:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=40)
    ap.add_argument("presets", nargs="*", default=DEFAULT)
    a = ap.parse_args()
    print(f"{'preset':22} {'states':>6} {'succ':>6} {'python us/succ':>15} "
          f"{'z3 ms/succ':>11} {'ratio':>7}")
    bad = 0
    for name in a.presets:
        m = build(load_preset(name))
        sm = SymModel(m)
        states = sample(m, a.states)
        for s in states[:2]:       # warm the encoding cache outside the timing
            sm.successors(s)
        reps = 20      # the Python steps are fast: repeat them for a stable figure
        t0 = time.perf_counter()
        for _ in range(reps):
            exp = [set(successors(m, s)) for s in states]
        t1 = time.perf_counter()
        sym = [sm.successors(s) for s in states]
        t2 = time.perf_counter()
        n = sum(len(e) for e in exp)
        bad += sum(e != z for e, z in zip(exp, sym, strict=True))
        py, z = (t1 - t0) / reps / n, (t2 - t1) / n
        print(f"{name:22} {len(states):>6} {n:>6} {py * 1e6:>15.1f} {z * 1e3:>11.2f} "
              f"{z / py:>7.0f}x")
    if bad:
        print(f"{bad} state(s) where the two engines' successors differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
