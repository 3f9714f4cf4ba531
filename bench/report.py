"""What `gmemcheck report` costs beyond the check: runs every built-in preset (or the
ones named) as `check` does, with the traces written to a temporary folder, then
draws the site there, and prints both times.

    python3 bench/report.py [PRESET ...]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from gmemcheck import report
    from gmemcheck.checker.explicit import Caps
    from gmemcheck.htmlreport import build_site
    from gmemcheck.model import builtin_presets, load_preset
    from gmemcheck.runner import run_preset

    names = sys.argv[1:] or builtin_presets()
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        t0 = time.perf_counter()
        runs = [run_preset(load_preset(n), None, "bfs", Caps(), out / "traces") for n in names]
        t1 = time.perf_counter()
        doc = json.loads(report.to_json(runs))
        s = build_site(doc, out / "site", copy_traces=True)
        t2 = time.perf_counter()
    print(f"{len(names)} presets, {s.verdicts} verdicts, {s.trace_pages} traces, "
          f"{s.pictures} step pictures")
    print(f"check {t1 - t0:.1f} s, site {t2 - t1:.2f} s "
          f"({100 * (t2 - t1) / (t1 - t0):.1f}% of the check)")


if __name__ == "__main__":
    main()
