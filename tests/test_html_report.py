"""gmemcheck report (the HTML site) and graph --around-trace; the site is opened in a
real headless Chromium when one is installed (.ci/run installs Debian's package)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from helpers import one_line_error, run

from gmemcheck.cli import main
from gmemcheck.model.config import configs_dir

ROOT = configs_dir().parent
CX = ROOT / "counterexamples"
S1 = CX / "rfc-thp" / "host-never-writes-guest-owned.itf.json"
LASSO = CX / "rfc-thp" / "punched-memory-eventually-freed.itf.json"
FREED = CX / "mainline-latest-rmp-fail" / "freed-pages-are-shared.itf.json"




def cell(preset: str, prop: str, kind: str, outcome: str, trace: Path | None,
         steps: int | None, bound: str) -> dict[str, object]:
    return {"preset": preset, "property": prop, "kind": kind, "outcome": outcome,
            "expected": outcome, "engine": "bfs", "bound": bound, "states": 1,
            "seconds": 0.1, "trace": str(trace) if trace else None, "steps": steps,
            "reason": "", "status": "match"}


RESULTS = {"results": [
    cell("rfc-thp", "host-never-writes-guest-owned", "safety", "violated", S1, 9,
         "shortest: 9 steps"),
    cell("rfc-thp", "punched-memory-eventually-freed", "liveness", "violated", LASSO, 17,
         "exhaustive"),
    cell("rfc-thp", "freed-pages-are-shared", "safety", "holds", None, None, "exhaustive"),
    cell("rfc-thp", "reach-eagain-refcount", "-", "n/a", None, None, "-"),
    cell("mainline-latest-rmp-fail", "freed-pages-are-shared", "safety", "violated", FREED, 3,
         "shortest: 3 steps"),
    cell("mainline-latest-rmp-fail", "host-never-writes-guest-owned", "safety", "holds", None,
         None, "exhaustive"),
], "presets": [{"preset": "rfc-thp", "states": 110854, "engine": "bfs", "complete": True},
               {"preset": "mainline-latest-rmp-fail", "states": 25715, "engine": "bfs",
                "complete": True}], "exit_code": 0}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report drawn from committed counterexamples (no exploration)."""
    d = tmp_path_factory.mktemp("site")
    js = d / "results.json"
    js.write_text(json.dumps(RESULTS))
    assert main(["report", "--from-json", str(js), "--out", str(d / "report")]) == 0
    return d / "report"


def page(site: Path, preset: str, prop: str) -> str:
    return (site / "cells" / preset / f"{prop}.html").read_text()


# ------------------------------------------------------------------ the site's content
def test_from_json_writes_one_page_per_verdict_and_copies_the_traces(site):
    assert (site / "index.html").is_file() and (site / "claims.html").is_file()
    pages = sorted(str(p.relative_to(site)) for p in (site / "cells").rglob("*.html"))
    assert pages == sorted(f"cells/{c['preset']}/{c['property']}.html"
                           for c in RESULTS["results"])
    assert sorted(p.name for p in (site / "traces").rglob("*")) == sorted(
        [S1.name, S1.name.replace(".itf.json", ".txt"), LASSO.name,
         LASSO.name.replace(".itf.json", ".txt"), FREED.name,
         FREED.name.replace(".itf.json", ".txt"), "mainline-latest-rmp-fail", "rfc-thp"])


def test_index_matrix_colours_and_links_every_cell(site):
    idx = (site / "index.html").read_text()
    assert idx.count('<td class="o-violated"') == 3
    assert idx.count('<td class="o-holds"') == 2
    assert idx.count('<td class="o-na"') == 1
    assert 'href="cells/rfc-thp/host-never-writes-guest-owned.html">VIOL 9</a>' in idx
    assert 'href="cells/rfc-thp/punched-memory-eventually-freed.html">VIOL 17</a>' in idx
    # the JSON has no preset descriptions: the built-in presets' are filled in
    assert "<td>rfc-thp</td><td>Roth&#x27;s RFC: PMD folios with order-0 fallback" in idx
    # claims 16 (freed-pages-are-shared on mainline-latest-rmp-fail) links to its page
    assert re.search(r'<a href="claims.html#claim-16">16</a>.*?<a href="cells/'
                     r'mainline-latest-rmp-fail/freed-pages-are-shared.html">violated, '
                     r'3 steps</a>', idx)
    assert 'id="claim-16"' in (site / "claims.html").read_text()


def test_s1_page_draws_nine_steps_and_marks_the_fatal_one(site):
    html = page(site, "rfc-thp", "host-never-writes-guest-owned")
    assert html.count('class="pic step-pic"') == 9
    assert html.count('class="pic init-pic"') == 1
    assert re.findall(r'<section class="step fatal" id="step-(\d+)"', html) == ["9"]
    step7 = html.split('id="step-7"')[1].split("</section>")[0]
    assert "<code>kvm_gmem_mark_range_unprepared()</code>" in step7
    # the prepared bit of index 0 is the one box outlined, with its old value
    assert step7.count("chg") - step7.count('div class="chg"') == 2   # bit + VMM op box
    assert ">not prepared</text><text class=\"was\"" in step7 and "was: prepared" in step7
    # why the walker matters: without its reference, truncate would have freed the folio
    step5 = html.split('id="step-5"')[1].split("</section>")[0]
    assert "<summary>1 other call(s) were enabled here</summary>" in step5
    # a PMD folio's transient reference is alloc_contig_range's: compaction skips it
    assert "<code>alloc_contig_range(pfn=0)</code>" in step5
    assert "alloc_contig_range holds a reference at pfn 0" in step5
    assert "compaction" not in step5
    assert re.search(r"<li><code>truncate_inode_pages_range\(rmp_make_shared_fails=false, "
                     r"second_split_fails=false\)</code>: folio@0: index 0..1 order 1 dirty "
                     r"-&gt; -; .*pfn 0 rmp: assigned 2M -&gt; shared", step5)
    step9 = html.split('id="step-9"')[1].split("</section>")[0]
    assert "<summary>8 other call(s) were enabled here, 1 of them would also break the " \
           "property</summary>" in step9
    assert '<li class="breaks"><code>kvm_gmem_get_pfn(gfn=1, huge_ok=true)</code>: the same ' \
           "state as this step, so it breaks the property too</li>" in step9
    assert "host-rmp-#pf-oops at pfn 0</text>" in step9 and 'class="fault"' in step9
    assert "FAULT host-rmp-#pf-oops at pfn 0" in step9


def test_lasso_page_frames_the_loop(site):
    html = page(site, "rfc-thp", "punched-memory-eventually-freed")
    assert html.count('class="pic step-pic"') == 17
    loop = html.split('<div class="loop">')[1]
    assert "loop: from state 11 the steps below repeat forever" in loop
    assert re.findall(r'id="step-(\d+)"', loop) == [str(i) for i in range(12, 18)]
    assert "back to state 11" in loop


def test_verdict_pages_say_what_the_verdict_rests_on(site):
    assert "every reachable state of the preset" in page(site, "rfc-thp",
                                                         "freed-pages-are-shared")
    assert ">n/a" in page(site, "rfc-thp", "reach-eagain-refcount")


# ------------------------------------------------------------------ a real run
def test_report_runs_the_checks_and_writes_only_inside_out(capsys, tmp_path, monkeypatch):
    before = sorted((p, p.stat().st_mtime_ns) for p in CX.rglob("*"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "report", "--config", "mainline-latest-rmp-fail",
                         "-p", "freed-pages-are-shared", "-p", "no-deadlock",
                         "--out", "site")
    assert code == 0, err
    assert "wrote site/index.html: 1 presets, 2 verdicts, 1 traces drawn in 3 step " \
           "pictures" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]
    assert sorted(p.name for p in (tmp_path / "site" / "traces").rglob("*.*")) == [
        "freed-pages-are-shared.itf.json", "freed-pages-are-shared.txt"]
    html = page(tmp_path / "site", "mainline-latest-rmp-fail", "freed-pages-are-shared")
    assert html.count('class="pic step-pic"') == 3
    assert 'href="../../traces/mainline-latest-rmp-fail/freed-pages-are-shared.itf.json"' \
        in html
    assert sorted((p, p.stat().st_mtime_ns) for p in CX.rglob("*")) == before


# ------------------------------------------------------------------ bad input
def test_bad_input_is_one_line_and_keeps_the_previous_report(capsys, tmp_path):
    js = tmp_path / "r.json"
    js.write_text(json.dumps(RESULTS))
    out = tmp_path / "out"
    assert run(capsys, "report", "--from-json", str(js), "--out", str(out))[0] == 0
    index = (out / "index.html").read_text()

    code, _, err = run(capsys, "report", "--from-json", str(tmp_path / "nope.json"),
                       "--out", str(out))
    assert code == 64 and "nope.json: no such file" in one_line_error(err)
    # the run options are check's own, validated the same way
    code, _, err = run(capsys, "report", "--out", str(out), "--prove-at", "3")
    assert code == 64 and "3 is not a supported pages_per_huge" in one_line_error(err)
    code, _, err = run(capsys, "report", "--out", str(out), "--max-seconds", "nan")
    assert code == 64 and "must be a finite number" in one_line_error(err)
    js.write_text('{"results": [')
    code, _, err = run(capsys, "report", "--from-json", str(js), "--out", str(out))
    assert code == 64 and "not valid JSON" in one_line_error(err)
    bad = json.loads(json.dumps(RESULTS))
    bad["results"][0]["trace"] = "missing/x.itf.json"
    js.write_text(json.dumps(bad))
    code, _, err = run(capsys, "report", "--from-json", str(js), "--out", str(out))
    assert code == 64
    assert "results[0] (rfc-thp, host-never-writes-guest-owned): trace file " \
           "missing/x.itf.json not found" in one_line_error(err)
    # a trace whose last state was edited does not replay: exit 1, nothing replaced
    doc = json.loads(S1.read_text())
    doc["states"][-1]["content"]["#tup"][1] = 2
    edited = tmp_path / "edited.itf.json"
    edited.write_text(json.dumps(doc))
    bad["results"][0]["trace"] = str(edited)
    js.write_text(json.dumps(bad))
    code, _, err = run(capsys, "report", "--from-json", str(js), "--out", str(out))
    assert code == 1 and "does not replay: step 9" in one_line_error(err)
    assert (out / "index.html").read_text() == index
    code, _, err = run(capsys, "report", "--from-json", str(js), "--config", "rfc-thp",
                       "--out", str(out))
    assert code == 64 and "--config cannot change it" in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.itf.json", "out", "r.json"]


def test_an_unrelated_folder_is_never_replaced(capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    js = tmp_path / "r.json"
    js.write_text(json.dumps(RESULTS))
    code, _, err = run(capsys, "report", "--from-json", str(js), "--out", str(tmp_path))
    assert code == 64 and "refusing to replace it" in one_line_error(err)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "r.json"]


# ------------------------------------------------------------------ graph --around-trace
def test_graph_around_trace_is_the_path_plus_one_step_off_it(capsys):
    code, out, _ = run(capsys, "graph", "--around-trace", str(S1))
    assert code == 0 and out.startswith("digraph gmemcheck_trace")
    assert "9 steps (bold), 40 other enabled steps (dashed), 1 states breaking the " \
           "property (red)" in out
    path_nodes = re.findall(r'^  "(p\d+)" \[', out, re.M)
    assert path_nodes == [f"p{i}" for i in range(10)]
    assert len(re.findall(r'^  "p\d+\.\d+" \[', out, re.M)) == 40
    assert '"p6" -> "p7" [label="7. kvm_gmem_mark_range_unprepared()' in out
    assert "state 7\\lprepared bitmap: 11 -> 01" in out
    # the same fault is reached from gfn 1: one edge, both calls
    assert '"p8" -> "p9" [label="9. kvm_gmem_get_pfn(gfn=0, huge_ok=true)\\lalso: ' \
           'kvm_gmem_get_pfn(gfn=1, huge_ok=true)' in out


def test_graph_around_trace_refuses_a_config(capsys):
    code, _, err = run(capsys, "graph", "--around-trace", str(S1), "--config", "rfc-thp")
    assert code == 64 and "--around-trace takes the model from the trace" in one_line_error(err)
    code, _, err = run(capsys, "graph")
    assert code == 64 and "--config PRESET is required" in one_line_error(err)


# ------------------------------------------------------------------ in a browser
def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


BROWSER = _browser()
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium installed (.ci/run installs Debian's chromium)")


def chromium(tmp: Path, url: str, *flags: str) -> tuple[str, list[str]]:
    """Load ``url`` headless: (stdout, the page's console messages)."""
    assert BROWSER is not None
    r = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars",
                        f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr",
                        "--v=0", *flags, url], capture_output=True, text=True, timeout=120)
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    return r.stdout, console


def png_pixels(path: Path) -> list[tuple[int, ...]]:
    """The pixels of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    ch = 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
            ch = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * ch
    prev = bytearray(stride)
    out: list[tuple[int, ...]] = []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) *
                                                     (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        out += [tuple(line[i:i + 3]) for i in range(0, stride, ch)]
        prev = line
    return out


@needs_browser
def test_report_in_a_browser(site, tmp_path):
    # the console check can fail: a page that logs an error is seen
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('oops')</script>"
                   "</body></html>")
    _, console = chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert len(console) == 1 and '"oops"' in console[0]

    dom, console = chromium(tmp_path, (site / "index.html").as_uri(), "--dump-dom")
    assert console == []
    assert "<h1>gmemcheck report</h1>" in dom
    links = re.findall(r'<table class="matrix">.*?</table>', dom, re.S)[0]
    hrefs = re.findall(r'href="([^"#]+)"', links)
    assert len(hrefs) == len(RESULTS["results"])
    assert all((site / h).is_file() for h in hrefs)
    for c in RESULTS["results"]:
        if not c["trace"]:
            continue
        dom, console = chromium(tmp_path, (site / "cells" / c["preset"] /
                                           f"{c['property']}.html").as_uri(), "--dump-dom")
        assert console == [], c["property"]
        # the script counts the step pictures the browser laid out with a non-zero size
        assert f'data-pictures-rendered="{c["steps"]}"' in dom, c["property"]
        assert dom.count('class="pic step-pic"') == c["steps"]
        for h in re.findall(r'href="(\.\./[^"#]+)"', dom):
            assert (site / "cells" / c["preset"] / h).resolve().is_file(), h
    shot = tmp_path / "s1.png"
    _, console = chromium(tmp_path, (site / "cells" / "rfc-thp" /
                                     "host-never-writes-guest-owned.html").as_uri(),
                          "--window-size=800,1100", f"--screenshot={shot}")
    assert console == []
    px = png_pixels(shot)
    assert len(px) == 800 * 1100
    colours = set(px)
    assert sum(p != (255, 255, 255) for p in px) > len(px) // 20
    # the fills of the first steps' pictures: stale host data, RMP shared, private gfns
    for fill in ((0xc9, 0xb7, 0x9c), (0xd4, 0xef, 0xdb), (0xd9, 0xcd, 0xf5)):
        assert fill in colours, fill
