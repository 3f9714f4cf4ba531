"""Per preset: distinct states, states per second and peak memory of a full exploration
with every property checked (the work `gmemcheck check` does), each preset in its own
process so that peak resident memory is its own.

    python3 bench/presets.py [PRESET ...]
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from gmemcheck import properties
from gmemcheck.checker.run import check
from gmemcheck.model import build, load_preset
m = build(load_preset(sys.argv[1]))
t0 = time.perf_counter()
run = check(m, properties.for_model(m))
dt = time.perf_counter() - t0
print(json.dumps({"states": run.states, "transitions": run.transitions, "seconds": dt,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    from gmemcheck.model import builtin_presets

    names = sys.argv[1:] or builtin_presets()
    print(f"{'preset':<26} {'states':>9} {'states/s':>9} {'seconds':>8} {'peak MB':>8}")
    total = 0.0
    for n in names:
        out = subprocess.run([sys.executable, "-c", CHILD, n], capture_output=True, text=True,
                             check=True)
        d = json.loads(out.stdout)
        total += d["seconds"]
        print(f"{n:<26} {d['states']:>9,} {d['states'] / d['seconds']:>9,.0f} "
              f"{d['seconds']:>8.1f} {d['peak_rss_mb']:>8.0f}")
    print(f"{'all':<26} {'':>9} {'':>9} {total:>8.1f}")


if __name__ == "__main__":
    main()
