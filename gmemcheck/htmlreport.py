"""``gmemcheck report``: a static HTML site of a check's verdicts and counterexamples.

The input is what ``gmemcheck check --format json`` prints (a ``results`` list, one
entry per preset x property, with the trace file of each counterexample) and the ITF
trace files it names. The site is plain files that work from the file system: no CDN,
no server, one small stylesheet and one small script written here.

* ``index.html``: the verdict matrix (properties down, presets across), each cell
  coloured by outcome and linked to its page, expected next to obtained; the presets;
  the claims of the thread (docs/claims.md) with links.
* ``cells/<preset>/<property>.html``: one page per verdict. A counterexample page has
  one picture per step: the kernel call, its return value and side effects, and an SVG
  of the file's pages drawn from the state (:mod:`gmemcheck.pagepicture`), with the
  boxes that changed at that step outlined, the fatal event marked and a lasso's loop
  framed. States are read through the model's ``describe()`` for whatever the picture
  does not draw, so a model without a picture still gets a readable page.
* ``traces/``: the ITF and text traces the pages were drawn from.

The site is built in a sibling staging folder and moved into place at the end, so an
interrupted run leaves the previous report (or nothing), never half a site. An
existing folder is replaced only when it is empty or was written by this command.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pagepicture import Picture, Seg, picture
from .tracegraph import alternatives

MARKER = ".gmemcheck-report"
OUTCOMES = ("holds", "holds_bounded", "violated", "inconclusive", "n/a")
OUTCOME_TEXT = {"holds": "holds", "violated": "VIOLATED", "holds_bounded": "bounded",
                "inconclusive": "inconclusive", "n/a": "n/a"}
SHORT = {"holds": "holds", "violated": "VIOL", "holds_bounded": "bnd", "inconclusive": "?",
         "n/a": "-"}
CELL_KEYS = ("preset", "property", "kind", "outcome", "expected", "engine", "bound",
             "trace")


class ReportError(Exception):
    """Input the report cannot be built from (one line for the user)."""


class ReplayFailed(ReportError):
    """A trace file named by the input does not replay through the model."""


@dataclass
class SiteSummary:
    index: Path
    presets: int
    verdicts: int
    trace_pages: int
    pictures: int


# ------------------------------------------------------------------ staging
@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A fresh folder next to ``out`` to build the site in; on success it replaces
    ``out`` (which must be missing, empty, or a previous report), else it is removed."""
    if out.exists():
        if not out.is_dir():
            raise ReportError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise ReportError(f"{out}: exists, is not empty and was not written by "
                              "gmemcheck report; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text("written by gmemcheck report; the folder is replaced "
                                  "on the next run\n", encoding="utf-8")
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old",
                                        dir=out.parent))
            os.rmdir(old)
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ------------------------------------------------------------------ input
def read_results(path: str) -> dict[str, Any]:
    """A ``check --format json`` document, validated enough to render."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{p}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{p}: line {e.lineno}: not valid JSON ({e.msg})") from None
    check_results(doc, str(p))
    return doc


def check_results(doc: Any, where: str) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ReportError(f"{where}: not a gmemcheck check --format json result "
                          "(no 'results' list)")
    for i, c in enumerate(doc["results"]):
        if not isinstance(c, dict):
            raise ReportError(f"{where}: results[{i}] is not an object")
        missing = [k for k in CELL_KEYS if k not in c]
        if missing:
            raise ReportError(f"{where}: results[{i}]: missing {', '.join(missing)}")
        if c["outcome"] not in OUTCOMES:
            raise ReportError(f"{where}: results[{i}].outcome: unknown outcome "
                              f"{c['outcome']!r}")
        for k in ("preset", "property"):
            if not isinstance(c[k], str) or not c[k]:
                raise ReportError(f"{where}: results[{i}].{k} must be a non-empty string")
        if c["trace"] is not None and not isinstance(c["trace"], str):
            raise ReportError(f"{where}: results[{i}].trace must be a file name or null")
    if "presets" in doc and not isinstance(doc["presets"], list):
        raise ReportError(f"{where}: 'presets' must be a list")


def _find_trace(name: str, bases: list[Path], where: str) -> Path:
    p = Path(name)
    cands = [p] if p.is_absolute() else [b / p for b in bases]
    for c in cands:
        if c.is_file():
            return c
    raise ReportError(f"{where}: trace file {name} not found")


# ------------------------------------------------------------------ helpers
def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", s) or "_"


def cell_href(preset: str, prop: str) -> str:
    return f"cells/{slug(preset)}/{slug(prop)}.html"


def _page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title>"
            f"<link rel=\"stylesheet\" href=\"{up}style.css\"></head>\n"
            f"<body>\n{body}\n<script src=\"{up}report.js\"></script>\n</body></html>\n")


def _status_mark(c: Mapping[str, Any]) -> str:
    exp = c.get("expected")
    if c["outcome"] in ("n/a",):
        return ""
    if exp is None:
        return "<span class=\"exp\">not pinned</span>"
    if exp == c["outcome"]:
        return f"<span class=\"exp ok\" title=\"expected {_e(exp)}\">= expected</span>"
    return f"<span class=\"exp bad\">expected {_e(SHORT.get(exp, exp))}</span>"


# ------------------------------------------------------------------ the site
def build_site(doc: dict[str, Any], dest: Path, bases: list[Path] | None = None,
               copy_traces: bool = True, claims_md: Path | None = None) -> SiteSummary:
    """Write the site for the check result ``doc`` into ``dest`` (a staging folder).

    Trace file names in ``doc`` are looked up as given, then under each of ``bases``;
    with ``copy_traces`` they are copied into ``dest/traces`` (a run that wrote its
    traces there already passes False)."""
    check_results(doc, "results")
    bases = bases or [Path.cwd()]
    cells = doc["results"]
    presets: list[str] = []
    props: list[str] = []
    for c in cells:
        if c["preset"] not in presets:
            presets.append(c["preset"])
        if c["property"] not in props:
            props.append(c["property"])
    pinfo = {p["preset"]: dict(p) for p in doc.get("presets", []) if isinstance(p, dict)
             and "preset" in p}
    for p in presets:
        info = pinfo.setdefault(p, {})
        if "description" not in info:
            info["description"] = _preset_description(p)
    (dest / "cells").mkdir(parents=True, exist_ok=True)
    (dest / "style.css").write_text(CSS, encoding="utf-8")
    (dest / "report.js").write_text(JS, encoding="utf-8")
    n_trace = n_pics = 0
    for i, c in enumerate(cells):
        href = cell_href(c["preset"], c["property"])
        out = dest / href
        out.parent.mkdir(parents=True, exist_ok=True)
        if c["trace"]:
            src = _find_trace(c["trace"], bases, f"results[{i}] ({c['preset']}, "
                              f"{c['property']})")
            if copy_traces:
                tdir = dest / "traces" / slug(c["preset"])
                tdir.mkdir(parents=True, exist_ok=True)
                local = tdir / src.name
                shutil.copyfile(src, local)
                txt = src.with_name(src.name.replace(".itf.json", ".txt"))
                if txt != src and txt.is_file():
                    shutil.copyfile(txt, tdir / txt.name)
            else:
                local = src
            rel = os.path.relpath(local, out.parent).replace(os.sep, "/")
            text, pics = trace_page(c, local, rel)
            n_trace += 1
            n_pics += pics
        else:
            text = verdict_page(c)
        out.write_text(text, encoding="utf-8")
    claims = _claims(claims_md, {(c["preset"], c["property"]) for c in cells})
    index = dest / "index.html"
    index.write_text(index_page(doc, presets, props, pinfo, claims), encoding="utf-8")
    if claims is not None:
        (dest / "claims.html").write_text(claims[1], encoding="utf-8")
    return SiteSummary(index, len(presets), len(cells), n_trace, n_pics)


def index_page(doc: dict[str, Any], presets: list[str], props: list[str],
               pinfo: Mapping[str, Any], claims: tuple[str, str] | None) -> str:
    cells = {(c["preset"], c["property"]): c for c in doc["results"]}
    counts = {o: 0 for o in OUTCOMES}
    mism = 0
    for c in doc["results"]:
        counts[c["outcome"]] += 1
        exp = c.get("expected")
        if c["outcome"] in ("holds", "violated") and exp is not None and exp != c["outcome"]:
            mism += 1
    b = ["<h1>gmemcheck report</h1>",
         "<p class=\"lead\">Every property (rows) on every design preset (columns). "
         "A cell links to its page: the counterexample drawn step by step, or what the "
         "verdict rests on. <b>= expected</b>: the verdict pinned in the preset; a cell "
         "that differs says what was expected.</p>",
         "<p class=\"summary\">" + ", ".join(f"{counts[o]} {OUTCOME_TEXT[o]}" for o in OUTCOMES
                                             if counts[o])
         + f"; {mism} differ from the presets"
         + (f"; check exit code {_e(doc['exit_code'])}" if "exit_code" in doc else "")
         + "</p>"]
    b.append("<h2>Verdicts</h2><div class=\"scroll\"><table class=\"matrix\"><thead><tr>"
             "<th>property</th>")
    for p in presets:
        info = pinfo.get(p, {})
        tip = f"{info.get('states', '?')} states, {info.get('engine', '?')}"
        b.append(f"<th class=\"preset\" title=\"{_e(tip)}\"><span>{_e(p)}</span></th>")
    b.append("</tr></thead><tbody>")
    for prop in props:
        b.append(f"<tr><th class=\"prop\">{_e(prop)}</th>")
        for p in presets:
            c = cells.get((p, prop))
            if c is None:
                b.append("<td class=\"empty\"></td>")
                continue
            o = c["outcome"]
            steps = f" {c['steps']}" if c.get("steps") and c["trace"] else ""
            bad = " mismatch" if c.get("status") == "mismatch" or (
                o in ("holds", "violated") and c.get("expected") not in (None, o)) else ""
            tip = f"{p} / {prop}: {o} ({c['engine']}, {c['bound']})"
            b.append(f"<td class=\"o-{_e(o.replace('/', ''))}{bad}\" title=\"{_e(tip)}\">"
                     f"<a href=\"{_e(cell_href(p, prop))}\">{_e(SHORT[o])}{_e(steps)}</a>"
                     f"{_status_mark(c)}</td>")
        b.append("</tr>")
    b.append("</tbody></table></div>")
    b.append("<p class=\"legend\"><span class=\"o-holds\">holds</span> proved (exhaustive or "
             "k-induction), or a witness for reach-* "
             "<span class=\"o-violated\">VIOL n</span> violated, shortest trace of n steps "
             "<span class=\"o-holds_bounded\">bnd</span> holds up to a bound "
             "<span class=\"o-inconclusive\">?</span> inconclusive "
             "<span class=\"o-na\">-</span> not applicable</p>")
    b.append("<h2>Presets</h2><table class=\"plain\"><tr><th>preset</th><th>design</th>"
             "<th>engine</th><th>distinct states</th><th>seconds</th></tr>")
    for p in presets:
        info = pinfo.get(p, {})
        states = info.get("states")
        b.append(f"<tr><td>{_e(p)}</td><td>{_e(info.get('description', ''))}</td>"
                 f"<td>{_e(info.get('engine', ''))}"
                 f"{'' if info.get('complete', True) else ' (not exhaustive)'}</td>"
                 f"<td class=\"num\">{_e(f'{states:,}' if isinstance(states, int) else '')}"
                 f"</td><td class=\"num\">{_e(info.get('seconds', ''))}</td></tr>")
    b.append("</table>")
    viol = [c for c in doc["results"] if c["trace"]]
    if viol:
        b.append("<h2>Counterexamples</h2><ul class=\"cx\">")
        for c in viol:
            b.append(f"<li><a href=\"{_e(cell_href(c['preset'], c['property']))}\">"
                     f"{_e(c['preset'])} / {_e(c['property'])}</a> "
                     f"{_e(c.get('steps') or '?')} steps ({_e(c['bound'])})</li>")
        b.append("</ul>")
    if claims is not None:
        b.append(claims[0])
    return _page("gmemcheck report", "\n".join(b), 0)


def verdict_page(c: Mapping[str, Any]) -> str:
    o = c["outcome"]
    what = {"holds": "witness" if c["kind"] == "reachable" else "proof",
            "violated": "verdict", "holds_bounded": "bounded verdict",
            "inconclusive": "inconclusive verdict", "n/a": "not applicable"}[o]
    b = ["<p class=\"nav\"><a href=\"../../index.html\">&larr; matrix</a></p>",
         f"<h1>{_e(c['property'])} on {_e(c['preset'])}: {what}</h1>",
         f"<p class=\"verdict o-{_e(o.replace('/', ''))}\">{_e(OUTCOME_TEXT[o])} "
         f"{_status_mark(c)}</p>",
         "<table class=\"plain\">"]
    rows = [("kind", c["kind"]), ("outcome", o), ("expected", c.get("expected") or "not pinned"),
            ("engine", c["engine"]), ("bound", c["bound"]),
            ("distinct states", c.get("states", "")), ("seconds", c.get("seconds", "")),
            ("reason", c.get("reason", ""))]
    for k, v in rows:
        if v != "":
            b.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
    b.append("</table>")
    doc = _prop_doc(c["preset"], c["property"])
    if doc:
        b.append(f"<h2>The property</h2><p>{_e(doc)}</p>")
    if o == "holds" and c["kind"] == "reachable":
        b.append("<p>A reachable state or step satisfies it (a witness was found, so the "
                 "model is not over-constrained here). <code>check</code> does not keep "
                 "witness traces; <code>docs/claims.md</code> lists the shortest witness of "
                 "each claim.</p>")
    elif o == "holds" and c["engine"] == "bfs":
        b.append("<p>Proof: every reachable state of the preset at its bounds was explored "
                 "and none violates it.</p>")
    elif o == "holds":
        b.append(f"<p>Proof by {_e(c['engine'])}: {_e(c['bound'])}.</p>")
    elif o == "violated" and c["kind"] == "reachable":
        b.append("<p>No reachable state satisfies it: the witness the property asks for "
                 "does not exist in this design.</p>")
    return _page(f"{c['property']} on {c['preset']}", "\n".join(b), 2)


def _preset_description(name: str) -> str:
    """The description of a built-in preset (a --format json result does not carry it)."""
    from .model import builtin_presets, load_preset

    return load_preset(name).description if name in builtin_presets() else ""


_DOC_CACHE: dict[tuple[str, str], str] = {}


def _prop_doc(preset: str, prop: str) -> str:
    key = (preset, prop)
    if key in _DOC_CACHE:
        return _DOC_CACHE[key]
    doc = ""
    try:
        from . import properties
        from .model import build, builtin_presets, load_preset

        name = preset if preset in builtin_presets() else builtin_presets()[0]
        fac = properties.REGISTRY.get(prop)
        p = fac(build(load_preset(name))) if fac else None
        doc = p.doc if p is not None else ""
    except Exception:  # noqa: BLE001 - a doc string is decoration; never fail on it
        doc = ""
    _DOC_CACHE[key] = doc
    return doc


# ------------------------------------------------------------------ one trace
def trace_page(c: Mapping[str, Any], itf: Path, itf_href: str) -> tuple[str, int]:
    """The page of one counterexample, witness or counterexample-to-induction, and the
    number of step pictures on it."""
    from .checker.replay import ReplayError, replay
    from .checker.traces import TraceFileError
    from .runner import load_counterexample

    try:
        lc = load_counterexample(str(itf))
    except TraceFileError as e:
        raise ReportError(str(e)) from None
    t = lc.trace
    if t.origin == "init":
        try:
            replay(lc.model, t, lc.prop)
        except ReplayError as e:
            raise ReplayFailed(f"{itf}: does not replay: {e}") from None
    model = lc.model
    actions = {a.name: a for a in model.actions}
    states = t.states
    pics = [picture(model, s) for s in states]
    descs = [dict(model.describe(s)) for s in states]
    drop = _empty_rows(pics)
    lasso = t.loop is not None and not t.stutter
    fatal = next((i for i, st in enumerate(t.steps, 1) if st.outcome is not None
                  and any(ev.startswith("FAULT") for ev in st.outcome.events)), None)
    if fatal is None and t.origin == "init" and lc.prop.kind.value == "safety":
        fatal = len(t.steps)
    o = c["outcome"]
    kind = lc.prop.kind.value
    what = ("counterexample to induction" if t.origin == "arbitrary" else
            "witness" if kind == "reachable" else "lasso" if lasso else
            "path to a deadlock" if kind == "deadlock" else "counterexample")
    b = ["<p class=\"nav\"><a href=\"../../index.html\">&larr; matrix</a></p>",
         f"<h1>{_e(lc.prop.name)} on {_e(c['preset'])}: {what}</h1>",
         f"<p class=\"verdict o-{_e(o.replace('/', ''))}\">{_e(OUTCOME_TEXT[o])} in "
         f"{len(t.steps)} steps ({_e(c['engine'])}, {_e(c['bound'])}) {_status_mark(c)}</p>"]
    desc = model.cfg.description if hasattr(model, "cfg") else ""
    if desc:
        b.append(f"<p class=\"design\">{_e(desc)}</p>")
    b.append(f"<p class=\"propdoc\"><b>{_e(lc.prop.name)}</b> ({_e(kind)}): "
             f"{_e(lc.prop.doc)}</p>")
    if t.origin == "arbitrary":
        b.append("<p class=\"warn\">This trace starts from an arbitrary state that satisfies "
                 "the lemmas, NOT from an initial state: it shows why the induction step "
                 "failed, not a reachable bug.</p>")
    if lasso:
        b.append(f"<p class=\"warn\">A lasso: after step {t.loop} the steps from "
                 f"{t.loop + 1} to {len(t.steps)} repeat forever (framed below) and the "
                 "property's goal is never reached.</p>")
    elif t.stutter:
        b.append("<p class=\"warn\">The path ends in a state where no step is enabled: the "
                 "system stays there forever.</p>")
    txt = itf_href.replace(".itf.json", ".txt")
    b.append(f"<p class=\"files\">trace: <a href=\"{_e(itf_href)}\">ITF JSON</a> · "
             f"<a href=\"{_e(txt)}\">text</a> · replay with "
             f"<code>gmemcheck replay {_e(itf.name)}</code></p>")
    b.append(_legend(pics[0] is not None, model))
    # the step list
    b.append("<ol class=\"toc\" start=\"0\"><li><a href=\"#step-0\">initial state</a></li>")
    for i, st in enumerate(t.steps, 1):
        cls = " class=\"fatal\"" if i == fatal else (
            " class=\"inloop\"" if lasso and i > (t.loop or 0) else "")
        b.append(f"<li{cls}><a href=\"#step-{i}\">{_e(_call(actions, st))}</a></li>")
    b.append("</ol>")
    b.append(_step_html(0, "initial state", None, pics[0], None, descs[0], None, drop,
                        False, model))
    n = 0
    for i, st in enumerate(t.steps, 1):
        if lasso and i == (t.loop or 0) + 1:
            b.append(f"<div class=\"loop\"><div class=\"loophead\">loop: from state "
                     f"{t.loop} the steps below repeat forever</div>")
        b.append(_step_html(i, _call(actions, st), st.outcome, pics[i], pics[i - 1],
                            descs[i], descs[i - 1], drop, i == fatal, model,
                            alternatives(model, t, lc.prop, i)))
        n += 1
        if lasso and i == len(t.steps):
            b.append(f"<div class=\"loophead\">&#8617; back to state {t.loop}: the "
                     "loop repeats</div></div>")
    if t.stutter:
        b.append("<p class=\"warn\">stuck: no step is enabled here.</p>")
    return _page(f"{lc.prop.name} on {c['preset']}", "\n".join(b), 2), n


def _call(actions: Mapping[str, Any], st: Any) -> str:
    from .checker.traces import _errno_name

    a = actions.get(st.action)
    call = a.label(st.args) if a else f"{st.action}{st.args}"
    if st.outcome is not None and st.outcome.ret is not None:
        call += f" = {_errno_name(st.outcome.ret)}"
    return call


def _empty_rows(pics: list[Picture | None]) -> set[str]:
    real = [p for p in pics if p is not None]
    if not real:
        return set()
    drop = set()
    for key, _, optional in real[0].rows:
        if optional and all(s.style == "none" for p in real for s in p.segs if s.row == key):
            drop.add(key)
    return drop


def _step_html(i: int, call: str, outcome: Any, pic: Picture | None, prev: Picture | None,
               desc: Mapping[str, str], pdesc: Mapping[str, str] | None, drop: set[str],
               fatal: bool, model: Any, alts: list[dict[str, Any]] | None = None) -> str:
    cls = "step fatal" if fatal else "step"
    b = [f"<section class=\"{cls}\" id=\"step-{i}\">",
         f"<h3><span class=\"n\">{i}.</span> <code>{_e(call)}</code></h3>"
         if i else "<h3>initial state</h3>"]
    if i == 0 and hasattr(model, "cfg"):
        b.append("<p class=\"small\">"
                 f"{_e(_bounds_note(model))}</p>")
    side = []
    if outcome is not None and outcome.events:
        side.append("<ul class=\"events\">")
        for ev in outcome.events:
            fe = " class=\"fatal\"" if ev.startswith("FAULT") else ""
            side.append(f"<li{fe}>! {_e(ev)}</li>")
        side.append("</ul>")
    b.append("<div class=\"stepbody\">")
    if pic is not None:
        b.append(svg(pic, prev, drop, "init-pic" if i == 0 else "step-pic"))
        side.append(_threads(pic, prev))
        rest = {k: v for k, v in desc.items() if not pic.covers(k)}
        if rest:
            side.append(_items(rest, pdesc if i else None, ""))
    else:
        b.append(_items(desc, pdesc if i else None, "init-pic" if i == 0 else "step-pic"))
    if alts is not None:
        side.append(_alternatives(alts))
    b.append("<div class=\"side\">" + "\n".join(side) + "</div></div>")
    b.append("</section>")
    return "\n".join(b)


def _alternatives(alts: list[dict[str, Any]]) -> str:
    """The other calls enabled before this step, folded: why the path goes this way."""
    if not alts:
        return "<p class=\"alts\">No other call was enabled here.</p>"
    nb = sum(a["breaks"] for a in alts)
    b = [f"<details class=\"alts\"><summary>{len(alts)} other call(s) were enabled here"
         + (f", {nb} of them would also break the property" if nb else "")
         + "</summary><ul>"]
    for a in alts:
        if a["same"]:
            what = "the same state as this step" + (", so it breaks the property too"
                                                     if a["breaks"] else "")
        elif a["breaks"]:
            what = "breaks the property: " + "; ".join(a["changes"][:3])
        else:
            what = "; ".join(a["changes"][:3]) + (" ..." if len(a["changes"]) > 3 else "")
            what = what or "no change"
        cls = " class=\"breaks\"" if a["breaks"] else ""
        b.append(f"<li{cls}><code>{_e(a['call'])}</code>: {_e(what)}</li>")
    b.append("</ul></details>")
    return "".join(b)


def _bounds_note(model: Any) -> str:
    bd = model.cfg.bounds
    n = bd.get("pages_per_huge")
    r = bd.get("regions")
    return (f"{r} huge range(s) of {n} pages: pages_per_huge = {n} stands for 512 "
            "(a 2 MB folio of 4 KiB pages). gfn = file index, and index i lives in pfn i.")


def _threads(pic: Picture, prev: Picture | None) -> str:
    old = dict(prev.threads) if prev is not None else {}
    b = ["<dl class=\"threads\">"]
    for k, v in pic.threads:
        ch = prev is not None and old.get(k) != v
        chg = ' class="chg"' if ch else ""
        b.append(f"<div{chg}><dt>{_e(k)}</dt><dd>{_e(v)}"
                 + (f" <span class=\"was\">(was: {_e(old.get(k, '-'))})</span>" if ch else "")
                 + "</dd></div>")
    b.append("</dl>")
    return "".join(b)


def _items(cur: Mapping[str, str], prev: Mapping[str, str] | None, pic_cls: str) -> str:
    """The describe() items as a table, changed ones marked (the picture of a model
    that has no drawing)."""
    cls = f"items {pic_cls}".strip()
    b = [f"<table class=\"{cls}\">"]
    for k, v in cur.items():
        ch = prev is not None and prev.get(k) != v
        was = f" <span class=\"was\">(was: {_e(prev.get(k, '-'))})</span>" if ch and prev \
            else ""
        chg = ' class="chg"' if ch else ""
        b.append(f"<tr{chg}><th>{_e(k)}</th><td>{_e(v)}{was}"
                 "</td></tr>")
    b.append("</table>")
    return "".join(b)


# ------------------------------------------------------------------ SVG
LABEL_W, COL_W, ROW_H, GROUP_H, COLHEAD_H = 190, 172, 34, 22, 20


def svg(pic: Picture, prev: Picture | None, drop: set[str], cls: str) -> str:
    rows = [r for r in pic.rows if r[0] not in drop]
    ncol = len(pic.columns)
    top = GROUP_H + COLHEAD_H
    foot = 26 if pic.fault else 6
    w = LABEL_W + ncol * COL_W + 8
    h = top + len(rows) * ROW_H + foot
    y_of = {key: top + j * ROW_H for j, (key, _, _) in enumerate(rows)}
    old: dict[tuple[str, int], Seg] = {}
    if prev is not None:
        old = {(s.row, s.start): s for s in prev.segs}
    b = [f"<svg class=\"pic {cls}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" "
         f"height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">"]
    for st, n, label in pic.groups:
        x = LABEL_W + st * COL_W
        b.append(f"<rect class=\"grp\" x=\"{x + 1}\" y=\"1\" width=\"{n * COL_W - 2}\" "
                 f"height=\"{GROUP_H - 3}\"/><text class=\"gl\" x=\"{x + n * COL_W / 2}\" "
                 f"y=\"{GROUP_H - 7}\">{_e(label)}</text>")
    for j, name in enumerate(pic.columns):
        x = LABEL_W + j * COL_W + COL_W / 2
        b.append(f"<text class=\"ch\" x=\"{x}\" y=\"{top - 6}\">{_e(name)}</text>")
    for j, (key, label, _) in enumerate(rows):
        y = y_of[key]
        if j % 2 == 0:
            b.append(f"<rect class=\"band\" x=\"0\" y=\"{y}\" width=\"{w}\" height=\"{ROW_H}\"/>")
        b.append(f"<text class=\"rl\" x=\"6\" y=\"{y + ROW_H / 2 + 4}\">{_e(label)}</text>")
    if pic.fault:       # under the boxes: the column shows between and around them
        x = LABEL_W + pic.fault[0] * COL_W
        b.append(f"<rect class=\"fault\" x=\"{x}\" y=\"{top - 2}\" width=\"{COL_W}\" "
                 f"height=\"{len(rows) * ROW_H + 4}\"/>")
    for s in pic.segs:
        if s.row in drop:
            continue
        y = y_of[s.row]
        x = LABEL_W + s.start * COL_W
        wid = s.span * COL_W
        p = old.get((s.row, s.start))
        changed = prev is not None and (p is None or (p.span, p.text, p.style)
                                        != (s.span, s.text, s.style))
        was = ""
        if changed:
            cover = [q for q in prev.segs if q.row == s.row
                     and q.start <= s.start < q.start + q.span] if prev else []
            was = cover[0].text if cover else ""
            if was == s.text:
                was = ""
        title = s.title or s.text
        c = f"c-{s.style}" + (" chg" if changed else "")
        b.append(f"<g class=\"seg\"><title>{_e(title)}</title>"
                 f"<rect class=\"{c}\" x=\"{x + 3}\" y=\"{y + 3}\" width=\"{wid - 6}\" "
                 f"height=\"{ROW_H - 6}\" rx=\"3\"/>")
        if changed and was:
            shown = s.text or "(none)"
            b.append(f"<text class=\"v\" x=\"{x + wid / 2}\" y=\"{y + 15}\">{_e(shown)}</text>"
                     f"<text class=\"was\" x=\"{x + wid / 2}\" y=\"{y + 27}\">was: {_e(was)}"
                     "</text>")
        elif changed and not s.text:
            b.append(f"<text class=\"was\" x=\"{x + wid / 2}\" y=\"{y + 23}\">(cleared)</text>")
        else:
            b.append(f"<text class=\"v\" x=\"{x + wid / 2}\" y=\"{y + ROW_H / 2 + 4}\">"
                     f"{_e(s.text)}</text>")
        b.append("</g>")
    if pic.fault:
        col, what = pic.fault
        x = LABEL_W + col * COL_W
        b.append(f"<text class=\"faultl\" x=\"{x + COL_W / 2}\" y=\"{h - 8}\">&#10006; "
                 f"{_e(what)} at pfn {col}</text>")
    b.append("</svg>")
    return "".join(b)


def _legend(has_pic: bool, model: Any) -> str:
    if not has_pic:
        return ("<p class=\"legend\">Each step lists the state's items; the ones the step "
                "changed are highlighted, with their previous value.</p>")
    items = [("c-folio", "folio (its extent is the box)"), ("c-hole", "hole"),
             ("c-yes", "flag set"), ("c-dirty", "dirty"), ("c-ref", "extra reference"),
             ("c-private", "private"), ("c-shared", "shared"), ("c-stale", "stale host data"),
             ("c-zero", "zeroes"), ("c-data", "guest data")]
    if getattr(model, "k", None) is not None and model.k.snp:
        items += [("c-assigned", "RMP assigned 4K"), ("c-assigned2m", "RMP assigned 2M")]
    items += [("c-huge", "mapped huge"), ("c-small", "mapped 4K")]
    sw = "".join(f"<span class=\"sw\"><svg width=\"14\" height=\"12\"><rect class=\"{c}\" "
                 f"width=\"14\" height=\"12\"/></svg> {_e(t)}</span>" for c, t in items)
    return ("<p class=\"legend\">One column per 4 KiB page. " + sw +
            " <span class=\"sw\"><svg width=\"14\" height=\"12\"><rect class=\"c-none chg\" "
            "width=\"14\" height=\"12\"/></svg> changed by this step (with its old value)"
            "</span> <span class=\"sw\"><svg width=\"14\" height=\"12\"><rect class=\"fault\" "
            "width=\"14\" height=\"12\"/></svg> page of the fatal event</span></p>")


# ------------------------------------------------------------------ claims
def _claims(path: Path | None, cells: set[tuple[str, str]]) -> tuple[str, str] | None:
    """The claims table for the index page and the claims page, from docs/claims.md."""
    if path is None:
        from .model.config import configs_dir

        path = configs_dir().parent / "docs" / "claims.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    lines = text.splitlines()
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| # ")]
    table = ["<h2>Claims from the thread</h2><p>From <a href=\"claims.html\">docs/claims.md"
             "</a> (<code>gmemcheck claims</code>): each claim tied to the preset and "
             "property that test it. A preset with <code>--set</code> is a variant this "
             "matrix does not run; its trace is on the claims page.</p>",
             "<table class=\"plain claims\"><tr><th>#</th><th>claim</th><th>who</th>"
             "<th>preset</th><th>property</th><th>verdict</th></tr>"]
    for ln in rows:
        parts = [p.strip() for p in ln.strip().strip("|").split("|")]
        if len(parts) != 6:
            continue
        num, claim, who, preset, prop, verdict = parts
        pname = prop.strip("`")
        link = None
        if "--set" not in preset and (preset, pname) in cells:
            link = cell_href(preset, pname)
        v = f"<a href=\"{_e(link)}\">{_e(verdict)}</a>" if link else _e(verdict)
        table.append(f"<tr><td><a href=\"claims.html#claim-{_e(num)}\">{_e(num)}</a></td>"
                     f"<td>{_e(claim)}</td><td>{_e(who)}</td><td>{_md_inline(preset)}</td>"
                     f"<td>{_md_inline(prop)}</td><td>{v}</td></tr>")
    table.append("</table>")
    return "\n".join(table), _page("claims", "<p class=\"nav\"><a href=\"index.html\">"
                                   "&larr; matrix</a></p>\n" + _markdown(lines), 0)


def _md_inline(s: str) -> str:
    out = _e(s)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<i>\1</i>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)


def _markdown(lines: list[str]) -> str:
    """The small part of Markdown that docs/claims.md uses: headings, one table,
    paragraphs, fenced code."""
    out: list[str] = []
    code = False
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append("<p>" + _md_inline(" ".join(para)) + "</p>")
            para.clear()

    for ln in lines:
        if ln.startswith("```"):
            flush()
            out.append("</pre>" if code else "<pre>")
            code = not code
        elif code:
            out.append(_e(ln))
        elif ln.startswith("#"):
            flush()
            level = len(ln) - len(ln.lstrip("#"))
            title = ln[level:].strip()
            m = re.match(r"(\d+)\.", title)
            anchor = f" id=\"claim-{m.group(1)}\"" if m and level == 2 else ""
            out.append(f"<h{level}{anchor}>{_md_inline(title)}</h{level}>")
        elif ln.startswith("|"):
            flush()
            if set(ln) <= set("|-: "):
                continue
            parts = [p.strip() for p in ln.strip().strip("|").split("|")]
            if not out or not out[-1].startswith("<tr") and out[-1] != "<table class=\"plain\">":
                out.append("<table class=\"plain\">")
            out.append("<tr>" + "".join(f"<td>{_md_inline(p)}</td>" for p in parts) + "</tr>")
        else:
            if out and out[-1].startswith("<tr"):
                out.append("</table>")
            if ln.strip():
                para.append(ln.strip())
            else:
                flush()
    flush()
    if code:
        out.append("</pre>")
    return "\n".join(out)


# ------------------------------------------------------------------ style
CSS = """\
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em 2em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 0 0 .3em; } code { font-size: .95em; }
.lead, .design, .propdoc { max-width: 70em; }
.scroll { overflow-x: auto; }
table.matrix { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: 3px 6px; }
table.matrix th.prop { text-align: left; font-weight: normal; font-family: monospace;
  white-space: nowrap; }
table.matrix th.preset { vertical-align: bottom; height: 9em; white-space: nowrap; }
table.matrix th.preset span { writing-mode: vertical-rl; transform: rotate(180deg); }
table.matrix td { text-align: center; min-width: 4.5em; }
table.matrix td a { color: inherit; font-weight: 600; text-decoration: none; display: block; }
table.matrix td a:hover { text-decoration: underline; }
.exp { display: block; font-size: 10px; color: #555; }
.exp.ok { color: #2b6b34; } .exp.bad { color: #a00; font-weight: bold; }
td.mismatch { outline: 3px solid #c00; outline-offset: -3px; }
.o-holds { background: #cdebd3; } .o-violated { background: #f6c4bf; }
.o-holds_bounded { background: #fff1b8; } .o-inconclusive { background: #ffd9a8; }
.o-na { background: #eee; color: #888; }
.legend span { padding: 1px 6px; margin-right: .6em; }
.legend .sw { padding: 0; white-space: nowrap; } .legend svg { vertical-align: -1px; }
table.plain { border-collapse: collapse; margin: .5em 0; }
table.plain th, table.plain td { border: 1px solid #ddd; padding: 3px 8px; text-align: left;
  vertical-align: top; }
td.num { text-align: right; }
.verdict { display: inline-block; padding: 3px 10px; font-weight: bold; }
.warn { background: #fff4d6; border-left: 4px solid #e0a000; padding: 4px 10px; }
.files { color: #555; } .small { color: #555; font-size: 12px; margin: 0 0 .4em; }
ol.toc { columns: 2; font-family: monospace; font-size: 12.5px; }
ol.toc li.fatal a { color: #b00; font-weight: bold; } ol.toc li.inloop { background: #eef; }
section.step { border: 1px solid #ddd; border-radius: 6px; padding: .6em .8em; margin: 1em 0; }
section.step.fatal { border: 2px solid #c00; background: #fff7f6; }
section.step .n { color: #666; }
ul.events { margin: .6em 0 .5em; padding-left: 0; list-style: none;
  font-family: monospace; font-size: 12.5px; color: #444; }
ul.events li.fatal { color: #b00; font-weight: bold; }
.loop { border: 3px dashed #5560c8; border-radius: 8px; padding: 0 .8em; margin: 1em -0.8em; }
.loophead { color: #3b43a3; font-weight: bold; margin: .5em 0; }
.stepbody { display: flex; flex-wrap: wrap; gap: .5em 1.5em; align-items: flex-start; }
.stepbody .side { flex: 1 1 22em; max-width: 44em; }
dl.threads { margin: .4em 0 0; }
dl.threads div { padding: 2px 6px; margin-bottom: 3px; }
dl.threads dt { color: #666; font-size: 12px; } dl.threads dd { margin: 0; }
dl.threads div.chg, table.items tr.chg { background: #ffe2c4; outline: 2px solid #ff7a00; }
.was { color: #8a4b00; font-size: 11px; }
details.alts { margin-top: .5em; font-size: 12px; color: #444; }
details.alts summary { cursor: pointer; color: #555; }
details.alts ul { margin: .2em 0; padding-left: 1.2em; } details.alts li.breaks { color: #b00; }
p.alts { font-size: 12px; color: #666; }
table.items { border-collapse: collapse; font-size: 12.5px; }
table.items th, table.items td { border: 1px solid #eee; padding: 1px 6px; text-align: left; }
svg.pic { display: block; margin: .3em 0; font-family: system-ui, sans-serif; }
svg .band { fill: #f7f7f9; } svg .grp { fill: #e9ecf5; stroke: #9aa3c7; }
svg .gl { font-size: 11.5px; text-anchor: middle; fill: #333; }
svg .ch { font-size: 11px; text-anchor: middle; fill: #555; }
svg .rl { font-size: 12px; fill: #333; }
svg .v { font-size: 11.5px; text-anchor: middle; fill: #111; }
svg .was { font-size: 10px; text-anchor: middle; fill: #8a4b00; }
svg rect { stroke: #b5b5b5; stroke-width: 1; }
.c-none { fill: #fff; stroke: #e2e2e2; } .c-hole { fill: #fff; stroke-dasharray: 4 3; }
.c-folio { fill: #ffe39a; stroke: #b08a00; stroke-width: 1.5; }
.c-yes { fill: #cdebd3; } .c-no { fill: #fff; } .c-dirty { fill: #ffc98f; }
.c-ref { fill: #f7b6c2; } .c-held { fill: #e0c8f0; }
.c-private { fill: #d9cdf5; } .c-shared { fill: #d4efdb; }
.c-stale { fill: #c9b79c; } .c-zero { fill: #fff; } .c-data { fill: #9cc3f7; }
.c-assigned { fill: #f3a6a0; } .c-assigned2m { fill: #e0716a; stroke: #8b2a24; }
.c-huge { fill: #8fb8ef; stroke: #2f5e9e; } .c-small { fill: #c7dcf7; }
.c-dmsplit { fill: #fff1b8; } .c-hostmap { fill: #ffd9a8; }
.c-leaked { fill: #999; } .c-punched { fill: #e8e8e8; }
.c-punch { fill: #fbe3f0; stroke: #b03a7a; stroke-dasharray: 5 2; }
rect.chg { stroke: #ff6a00; stroke-width: 3.5; }
rect.fault { fill: #ffb3ad; stroke: #d00; stroke-width: 2.5; stroke-dasharray: 7 4; }
.faultl { font-size: 12.5px; font-weight: bold; fill: #c00; text-anchor: middle; }
"""

JS = """\
// gmemcheck report: record how many step pictures the browser laid out (the browser
// test reads it back); nothing else happens here.
document.addEventListener("DOMContentLoaded", function () {
  var shown = 0;
  document.querySelectorAll(".step-pic").forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) shown += 1;
  });
  document.body.setAttribute("data-pictures-rendered", String(shown));
});
"""
