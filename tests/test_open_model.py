"""The open model (issue 12): plug-ins that add state, threads, locks, actions and
choices, wrap what they replace, and the worked examples (b) and (c).

Command-line checks run in a fresh process (a plug-in registers for the whole
process); the in-process checks load a plug-in and restore every registry afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gmemcheck import plugins
from gmemcheck.model import apply_overrides, build, load_preset
from gmemcheck.model.config import configs_dir
from gmemcheck.model.state import BUILTIN_FIELDS, DECLARED, GmemState

ROOT = configs_dir().parent


def cli(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmemcheck.cli", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def error_line(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 64, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


@pytest.fixture
def isolated():
    """Load plug-ins in this process and undo every registration afterwards."""
    snap = plugins._snapshot()
    loaded = dict(plugins.LOADED)
    yield
    plugins._restore(snap)
    plugins.LOADED.clear()
    plugins.LOADED.update(loaded)


# ---------------------------------------------------------------- declarations
def test_builtin_state_is_built_from_the_declarations():
    assert tuple(DECLARED)[:len(BUILTIN_FIELDS)] == BUILTIN_FIELDS == GmemState._fields
    m = build(load_preset("mainline-6.13"))
    assert m.state_type is GmemState and not m.extra_fields


def test_plugin_fields_extend_the_state_and_render(isolated):
    plugins.load(ROOT / "examples" / "lock_order.py")
    cfg = apply_overrides(load_preset(str(ROOT / "examples" / "lock-order-abba.toml")), [])
    m = build(cfg, plugins.used_by(cfg.axes))
    (init,) = m.init_states()
    assert init._fields == BUILTIN_FIELDS + ("worker", "lock_conv_lock")
    assert init.worker == "idle" and init.lock_conv_lock == ""
    d = m.describe(init)
    assert d["thread gmem_worker"] == "idle" and d["lock conv_lock"] == "free"
    # the built-in part of the rendering is unchanged, in the same order
    base = build(load_preset("mainline-6.13"))
    assert list(d)[:len(base.describe(next(iter(base.init_states()))))] == \
        list(base.describe(next(iter(base.init_states()))))


# ---------------------------------------------------------------- example (c)
def _plugin_model(tmp_path: Path, text: str, name: str = "series.py",
                  sets: list[str] | None = None) -> tuple:
    """Plug-in source ``text`` written to ``tmp_path/name`` and loaded; mainline-6.13
    with ``sets``, and its model built with the plug-ins it uses."""
    f = tmp_path / name
    f.write_text(text)
    plugins.load(f)
    cfg = apply_overrides(load_preset("mainline-6.13"), sets or [])
    return cfg, build(cfg, plugins.used_by(cfg.axes))


def _check(preset: str, *extra: str, rc: int = 0) -> dict:
    p = cli("check", "--config", f"examples/{preset}.toml", "--format", "json", *extra)
    assert p.returncode == rc, p.stderr
    return json.loads(p.stdout)


def _pinned(preset: str) -> tuple[int, dict[str, str]]:
    data = tomllib.loads((ROOT / "examples" / f"{preset}.toml").read_text())
    return data["expect"]["states"], data["expect"]["verdicts"]


@pytest.mark.parametrize("preset", ["lock-order-abba", "lock-order-fixed"])
def test_lock_order_examples_match_their_pins(preset, tmp_path):
    d = _check(preset, "--out", str(tmp_path))
    states, verdicts = _pinned(preset)
    assert d["presets"][0]["states"] == states
    got = {r["property"]: r["outcome"] for r in d["results"] if r["outcome"] != "n/a"}
    assert got == verdicts
    assert all(r["status"] in ("match", "n/a") for r in d["results"]), d["results"]
    if preset == "lock-order-abba":
        assert verdicts["no-deadlock"] == "violated"
        itf = tmp_path / preset / "no-deadlock.itf.json"
        doc = json.loads(itf.read_text())
        labels = [(s["#meta"]["action"], s["#meta"]["args"]) for s in doc["states"][1:]]
        assert labels == [("kvm_gmem_punch_hole", {"offset": 0, "len": 1}),
                          ("gmem_worker_lock_first", {})]
        assert doc["vars"][-2:] == ["worker", "lock_conv_lock"]
        txt = (tmp_path / preset / "no-deadlock.txt").read_text()
        assert "thread gmem_worker: idle -> holds conv_lock, waits for invalidate_lock" in txt
        assert "lock conv_lock: free -> held by gmem_worker" in txt
        assert "vmm: idle -> punch 0 1 invalidated" in txt
        r = cli("replay", str(itf))
        assert r.returncode == 0 and "replays: 2-step trace" in r.stdout, r.stderr
        s = cli("show", str(itf))
        assert s.returncode == 0 and "gmem_worker_lock_first()" in s.stdout
    else:
        assert verdicts["no-deadlock"] == "holds"


def test_lock_order_deadlock_under_simulate_and_bmc():
    sim = _check("lock-order-abba", "--engine", "simulate", "--walks", "200", "--seed", "1",
                 "-p", "no-deadlock", "--no-write")
    assert [r["outcome"] for r in sim["results"]] == ["violated"]
    # the worker's actions, the punch/populate/truncate extensions and the witness have
    # Z3 forms: bmc finds the deadlock in the same 2 steps as bfs, and replays it
    bmc = _check("lock-order-abba", "--engine", "bmc", "--depth", "2", "-p", "no-deadlock",
                 "-p", "reach-worker-holds-both", "--no-write")
    assert {r["property"]: (r["outcome"], r["bound"]) for r in bmc["results"]} == {
        "no-deadlock": ("violated", "shortest: 2 steps"),
        "reach-worker-holds-both": ("holds", "witness: 2 steps")}


def test_preset_plugin_properties_are_selectable_with_p():
    d = _check("lock-order-fixed", "-p", "reach-worker-holds-both", "-p", "no-deadlock",
               "--no-write")
    assert {r["property"]: r["outcome"] for r in d["results"]} == {
        "reach-worker-holds-both": "holds", "no-deadlock": "holds"}


def test_list_shows_plugin_axis_origin():
    p = cli("list", "--plugin", "examples/lock_order.py")
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stdout.splitlines() if ln.split()[:1] == ["conv_lock_order"])
    assert "(plug-in examples/lock_order.py)" in line and "DOMAIN.md" not in line


# ---------------------------------------------------------------- example (b)
def test_second_vcpu_example_matches_its_pins():
    d = _check("second-vcpu", "--no-write")
    states, verdicts = _pinned("second-vcpu")
    assert d["presets"][0]["states"] == states
    assert {r["property"]: r["outcome"] for r in d["results"]
            if r["outcome"] != "n/a"} == verdicts
    assert verdicts["reach-vcpu1-ref-keeps-folio"] == "holds"


# ---------------------------------------------------------------- load and build errors
HEADER = "from gmemcheck.api import *\n"


@pytest.mark.parametrize("body, expect", [
    ('add_field("x", "global", domain=(0, 1), initial=0)',
     "field 'x': unknown field type 'global' (one of page, region, scalar, thread)"),
    ('add_field("x", "page", domain=(), initial=0)', "field 'x': bad domain ()"),
    ('add_field("x", "scalar", domain=(0.5, 1.5), initial=0.5)',
     "field 'x': bad domain value 0.5"),
    ('add_field("x", "scalar", domain=(0, 1), initial=2)',
     "field 'x': initial value 2 is not in its domain (0, 1)"),
    ('add_field("order", "page", domain=(0, 1), initial=0)',
     "field 'order' is already declared (built-in)"),
    ('add_field("x", "thread", thread="nobody", domain=(0,), initial=0)',
     "unknown thread 'nobody'"),
    ('add_thread("t", "d", pcs=())', "thread 't': bad domain ()"),
    ('add_action("kvm_tdp_mmu_map", lambda k: None)', "action 'kvm_tdp_mmu_map' already "
     "exists: replace it with add_value(..., actions=...) or extend it with add_action"),
    ('add_action("x", lambda k, p: p, wraps=True)', "wraps unknown action 'x'"),
    ('add_choice("c", (True,), "d", actions=["kvm_gmem_get_pfn"])',
     "choice 'c': bad domain (True,)"),
    ('add_choice("c", (False, True), "d", actions=["nope"])', "choice 'c': unknown action "
     "'nope'"),
    ('add_value("snp_prepare", "x", "d", steps={}, wraps=("kvm_arch_gmem_prepare",))',
     "wraps 'kvm_arch_gmem_prepare', which it does not supply"),
])
def test_declaration_errors_name_the_file(tmp_path, body, expect):
    f = tmp_path / "series.py"
    f.write_text(HEADER + body + "\n")
    line = error_line(cli("check", "--plugin", str(f), "--config", "mainline-6.13",
                          "-p", "no-deadlock", "--no-write"))
    assert "series.py" in line and expect in line, line


def _prep(name: str, wraps: bool) -> str:
    if wraps:
        return (f"def {name}(k, prev, w, pfn, mo):\n"
                f"    w.event('{name}')\n"
                f"    prev(w, pfn, mo)\n")
    return f"def {name}(k, w, pfn, mo):\n    w.event('{name}')\n"


def _two_axes(wraps_b: bool) -> str:
    return (HEADER + _prep("a_prep", False) + _prep("b_prep", wraps_b)
            + 'add_axis("series_a", "d", {"off": ("d", {}, {}), "on": ("d", '
              '{"kvm_arch_gmem_prepare": a_prep}, {})})\n'
            + 'add_axis("series_b", "d", {"off": ("d", {}, {}), "on": ("d", '
              f'{{"kvm_arch_gmem_prepare": b_prep}}, {{}}, {wraps_b})}})\n')


def test_two_values_replacing_one_step_are_refused_naming_both(tmp_path):
    f = tmp_path / "series.py"
    f.write_text(_two_axes(False))
    line = error_line(cli("check", "--plugin", str(f), "--config", "mainline-6.13", "--set",
                          "series_a=on", "--set", "series_b=on", "-p", "no-deadlock",
                          "--no-write"))
    assert ("step kvm_arch_gmem_prepare is replaced by both series_a=on (plug-in" in line
            and "series_b=on (plug-in" in line and "wraps=True" in line), line
    # each alone is fine
    p = cli("check", "--plugin", str(f), "--config", "mainline-6.13", "--set", "series_b=on",
            "-p", "no-deadlock", "--no-write")
    assert p.returncode == 0, p.stderr


def test_a_wrapping_value_composes_with_the_one_it_wraps(tmp_path, isolated):
    cfg, m = _plugin_model(tmp_path, _two_axes(True), sets=["series_a=on", "series_b=on"])
    (init,) = m.init_states()
    s = init._replace(launched=True)
    (act,) = [a for a in m.actions if a.name == "kvm_gmem_get_pfn"]
    events = act.explain(s, (0, True)).events
    # b wraps a: b's event, then a's replacement (which does not call the built-in)
    assert [e for e in events if e in ("a_prep", "b_prep")] == ["b_prep", "a_prep"]
    plugins.check_contract(m)


def test_an_action_smuggled_through_another_slot_is_refused(tmp_path):
    f = tmp_path / "series.py"
    f.write_text(HEADER + 'add_value("allocation", "x", "d", actions={"kvm_tdp_mmu_map": '
                 'lambda k: make(k, "my_new_action", (), [()], lambda s, a: False, '
                 'lambda k, w: None, frozenset(), "d")})\n')
    line = error_line(cli("check", "--plugin", str(f), "--config", "mainline-6.13", "--set",
                          "allocation=x", "-p", "no-deadlock", "--no-write"))
    assert ("allocation=x (plug-in" in line and "builds an action named my_new_action in the "
            "slot of action kvm_tdp_mmu_map: add a new action with add_action" in line), line


def test_a_field_leaving_its_domain_is_refused(tmp_path):
    f = tmp_path / "series.py"
    f.write_text(HEADER + 'add_field("ticks", "scalar", domain=(0, 1), initial=0)\n'
                 'add_action("tick", lambda k: make(k, "tick", (), [()], '
                 'lambda s, a: s.ticks < 2, lambda k, w: w.put("ticks", w.get("ticks") + 1), '
                 'frozenset({"ticks"}), "d"))\n')
    line = error_line(cli("check", "--plugin", str(f), "--config", "mainline-6.13", "-p",
                          "no-deadlock", "--no-write"))
    assert "series.py" in line and "tick() leaves ticks = 2 is outside its domain" in line


CHOICE = HEADER + """
def prep(k, prev, w, pfn, mo):
    if w.choose("arch_prepare_fails", (False, True)):
        w.event("sev_gmem_prepare: rmp_make_private failed, error ignored (deliberate bug)")
        return
    prev(w, pfn, mo)

add_choice("arch_prepare_fails", (False, True), "kvm_arch_gmem_prepare may fail",
           actions=[ACTIONS], when=lambda k: k.axes["snp_prepare"] == "may-fail")
add_value("snp_prepare", "may-fail", "sev_gmem_prepare whose failure is ignored",
          steps={"kvm_arch_gmem_prepare": prep}, wraps=True)
"""


def test_a_choice_becomes_an_argument_and_its_trace_replays(tmp_path):
    f = tmp_path / "series.py"
    f.write_text(CHOICE.replace("ACTIONS", '"kvm_gmem_get_pfn"'))
    out = tmp_path / "cx"
    p = cli("check", "--plugin", str(f), "--config", "mainline-6.13", "--set",
            "snp_prepare=may-fail", "-p", "private-mapping-implies-assigned", "--out",
            str(out), "--format", "json")
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(p.stdout)["results"]
    assert r["outcome"] == "violated"
    itf = out / "mainline-6.13" / "private-mapping-implies-assigned.itf.json"
    doc = json.loads(itf.read_text())
    steps = [(s["#meta"]["action"], s["#meta"]["args"]) for s in doc["states"][1:]]
    assert ("kvm_gmem_get_pfn", {"gfn": 0, "huge_ok": True, "arch_prepare_fails": True}) \
        in steps or ("kvm_gmem_get_pfn", {"gfn": 1, "huge_ok": True,
                                          "arch_prepare_fails": True}) in steps, steps
    rp = cli("replay", str(itf))
    assert rp.returncode == 0 and "replays" in rp.stdout, rp.stderr
    # the same design without the value: no extra argument, the pinned count
    d = cli("check", "--plugin", str(f), "--config", "mainline-6.13", "-p", "no-deadlock",
            "--no-write", "--format", "json")
    assert json.loads(d.stdout)["presets"][0]["states"] == 11917


def test_a_choice_its_action_does_not_carry_is_refused(tmp_path):
    f = tmp_path / "series.py"
    f.write_text(CHOICE.replace("ACTIONS", '"kvm_gmem_allocate"'))
    line = error_line(cli("check", "--plugin", str(f), "--config", "mainline-6.13", "--set",
                          "snp_prepare=may-fail", "-p", "no-deadlock", "--no-write"))
    assert "series.py" in line and "kvm_gmem_get_pfn(" in line and \
        "calls w.choose('arch_prepare_fails') but the action does not carry" in line, line


def test_the_api_exports_what_a_series_needs_and_documents_it():
    import re

    import gmemcheck.api as api

    needed = {"rmp_make_private", "rmp_make_shared", "rmpupdate", "psmash",
              "adjust_direct_map", "zap", "put_extra_ref", "free_frames", "merge",
              "safe_refcount", "make", "huge_attempt", "HOST_NONE", "HOST_MAPPED", "HOST_GUP",
              "HOST_PINNED", "OP_PUNCH", "OP_POPULATE", "EAGAIN", "ENOMEM", "EEXIST",
              "EINVAL", "EIO", "add_field", "add_thread", "add_lock", "add_action",
              "add_choice", "add_step", "extend_action"}
    assert needed <= set(api.__all__)
    doc = (ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z_0-9]*)", doc))
    assert set(api.__all__) - documented == set()
    for n in api.__all__:
        assert hasattr(api, n), n


# ---------------------------------------------------------------- symbolic twins
def test_a_twin_for_a_step_without_a_twin_slot_is_refused(tmp_path):
    f = tmp_path / "series.py"
    f.write_text(HEADER + "def prep(k, w, pfn, mo):\n    pass\n"
                 'add_value("snp_prepare", "x", "d", steps={"kvm_arch_gmem_prepare": prep}, '
                 'symbolic={"kvm_arch_gmem_prepare": lambda k, w, failed: None})\n')
    line = error_line(cli("check", "--plugin", str(f), "--config", "mainline-6.13",
                          "-p", "no-deadlock", "--no-write"))
    assert "series.py" in line and "step 'kvm_arch_gmem_prepare' cannot take a symbolic " \
        "twin (only rmp_make_shared_failed, extra_refs)" in line, line


def test_a_twin_that_disagrees_with_its_python_body_fails_loudly(tmp_path):
    ex = tmp_path / "ex"
    ex.mkdir()
    src = (ROOT / "examples" / "leak_on_failure.py").read_text()
    bad = src.replace('    sym_set(w, "leaked", failed, True)', "    pass")
    assert bad != src
    (ex / "leak_on_failure.py").write_text(bad)
    (ex / "leak-on-failure.toml").write_text(
        (ROOT / "examples" / "leak-on-failure.toml").read_text())
    line = error_line(cli("check", "--config", str(ex / "leak-on-failure.toml"), "--engine",
                          "bmc", "--depth", "1", "-p", "freed-pages-are-shared",
                          "--no-write"))
    assert ("leak_on_failure.py: the symbolic twin of rmp_make_shared_failed disagrees with "
            "its Python body (pages_per_huge=2, regions=1, after kvm_gmem_allocate(0, 2) -> "
            "kvm_gmem_populate(1,) -> kvm_gmem_punch_hole(1, 1)): "
            "truncate_inode_pages_range(True, False) successors differ in leaked") in line, line


def test_the_leak_twin_agrees_and_the_design_gets_an_encoding(isolated):
    from gmemcheck.symbolic import twins
    from gmemcheck.symbolic.model import SymModel

    plugins.load(ROOT / "examples" / "leak_on_failure.py")
    cfg = load_preset(str(ROOT / "examples" / "leak-on-failure.toml"))
    m = build(cfg, plugins.used_by(cfg.axes))
    twins._CHECKED.discard(twins._key(m))
    assert twins.check_twins(m) > 20
    assert twins.check_twins(m) == 0  # once per design and process
    assert SymModel(m).actions


def test_a_plugin_action_without_a_symbolic_form_stays_inconclusive(isolated, tmp_path):
    from gmemcheck.symbolic.model import NoEncoding, SymModel

    cfg, m = _plugin_model(
        tmp_path, HEADER + 'add_field("ticks", "scalar", domain=(0, 1), initial=0)\n'
        'add_action("tick", lambda k: make(k, "tick", (), [()], '
        'lambda s, a: s.ticks == 0, lambda k, w: w.put("ticks", 1), '
        'frozenset({"ticks"}), "d"))\n')
    with pytest.raises(NoEncoding, match="action tick comes from plug-in .*series.py "
                       "without a symbolic form and has no Z3 encoding"):
        SymModel(m)


def test_plugin_fields_get_z3_variables_from_their_declarations(isolated, tmp_path):
    """bool domain -> Bool, int domain -> a range-limited integer, any other domain (pc
    names, lock holders) -> an index into the domain tuple."""
    import z3

    from gmemcheck.symbolic.extra import codecs
    from gmemcheck.symbolic.model import SymModel

    cfg, m = _plugin_model(
        tmp_path, HEADER + 'add_field("flag", "page", domain=(False, True), initial=False)\n'
        'add_field("count", "region", domain=(-1, 0, 1, 2), initial=-1)\n'
        'add_thread("t", "d", pcs=("idle", "busy"))\n'
        'add_lock("l", "d")\n')
    got = {c.name: (c.scope, c.sort, c.index, c.values) for c in codecs(m, m.k)}
    assert got == {"flag": ("page", "bool", False, (False, True)),
                   "count": ("region", "int", False, (-1, 0, 1, 2)),
                   "t_pc": ("thread", "int", True, ("idle", "busy")),
                   "lock_l": ("scalar", "int", True, ("", "vcpu", "vmm", "t"))}
    sm = SymModel(m)
    s = sm.fresh("s")
    assert z3.is_bool(s.flag[0]) and len(s.flag) == m.k.P and len(s.count) == m.k.R
    assert str(z3.simplify(sm.canonical(s))).count("count") >= 2
    # the initial state decodes back, plug-in fields included
    solver = z3.Solver()
    solver.add(sm.init_constraint(s), sm.canonical(s))
    assert solver.check() == z3.sat
    (init,) = m.init_states()
    assert sm.decode(solver.model(), s) == init


# ---------------------------------------------------------------- plug-in Z3 forms
def _wrong_lock_order(tmp_path: Path, old: str, new: str) -> Path:
    """examples/lock_order.py with one Z3 form made wrong, next to the abba preset."""
    ex = tmp_path / "ex"
    ex.mkdir()
    src = (ROOT / "examples" / "lock_order.py").read_text()
    assert src.count(old) == 1, old
    (ex / "lock_order.py").write_text(src.replace(old, new))
    (ex / "lock-order-abba.toml").write_text(
        (ROOT / "examples" / "lock-order-abba.toml").read_text())
    return ex / "lock-order-abba.toml"


WRONG_FORMS = {
    "action body": (
        '''        w.release("conv_lock", "gmem_worker")
        w.put("worker", IDLE)

    return make''',
        '''        w.put("worker", IDLE)

    return make''',
        "the symbolic form of action gmem_worker_unlock disagrees with its Python body "
        "(pages_per_huge=2, regions=1, after gmem_worker_lock_first() -> "
        "gmem_worker_lock_second() -> kvm_vm_set_mem_attributes(0, False) -> "
        "snp_launch_finish() -> kvm_gmem_get_pfn(1, True) -> kvm_tdp_mmu_map()): "
        "gmem_worker_unlock() successors differ in lock_conv_lock"),
    "extension guard": (
        'sym_guard=lambda k, s, *a: sym_lock_free(s, "conv_lock"),',
        'sym_guard=lambda k, s, *a: z3.BoolVal(True),',
        "the symbolic form of action truncate_inode_pages_range disagrees with its Python "
        "body (pages_per_huge=2, regions=1, after gmem_worker_lock_first() -> "
        "kvm_vm_set_mem_attributes(0, False) -> kvm_gmem_punch_hole(1, 1)): "
        "truncate_inode_pages_range(False, False) enabled in the Z3 form only"),
    "property form": (
        'symbolic=lambda k, s: sym_eq(s, "worker", HOLDS_BOTH),',
        'symbolic=lambda k, s: sym_eq(s, "worker", WAITS_INV),',
        "the symbolic form of property reach-worker-holds-both disagrees with its Python "
        "predicate (pages_per_huge=2, regions=1, after gmem_worker_lock_first() -> "
        "gmem_worker_lock_second()): Python true, Z3 false"),
}


@pytest.mark.parametrize("what", list(WRONG_FORMS))
def test_a_wrong_plugin_form_stops_before_any_symbolic_verdict(tmp_path, what):
    old, new, expect = WRONG_FORMS[what]
    cfg = _wrong_lock_order(tmp_path, old, new)
    line = error_line(cli("check", "--config", str(cfg), "--engine", "bmc", "--depth", "1",
                          "-p", "no-deadlock", "--no-write"))
    assert line.startswith("gmemcheck: plugin ") and line.endswith(
        "/ex/lock_order.py: " + expect), line


# ---------------------------------------------------------------- every engine
PROVED2 = "proved (k=1, pages_per_huge=2, regions=1)"


def test_lock_order_fixed_under_bmc():
    bmc = _check("lock-order-fixed", "--engine", "bmc", "--depth", "2", "-p", "no-deadlock",
                 "-p", "reach-worker-holds-both", "--no-write", rc=2)
    assert {r["property"]: (r["outcome"], r["bound"]) for r in bmc["results"]} == {
        "no-deadlock": ("holds_bounded", "depth<=2"),
        "reach-worker-holds-both": ("holds", "witness: 2 steps")}


def _strongest_at_2(preset: str) -> tuple[dict, set[str]]:
    """strongest on an example at 2 pages per huge folio: its bfs gives the pinned state
    count and verdicts; returns the JSON report and the properties proved at 2 pages."""
    d = _check(preset, "--engine", "strongest", "--prove-at", "2", "--no-write")
    states, verdicts = _pinned(preset)
    assert d["presets"][0]["states"] == states
    got = {r["property"]: r["outcome"] for r in d["results"] if r["outcome"] != "n/a"}
    assert got == verdicts
    return d, {r["property"] for r in d["results"] if r["bound"] == PROVED2}


def test_lock_order_abba_under_strongest():
    """strongest: bfs, then a proof of every safety property bfs found to hold (at 2
    pages per huge folio here; the README gives the proofs at 512 and 262,144)."""
    d, proved = _strongest_at_2("lock-order-abba")
    safety = {r["property"] for r in d["results"] if r["kind"] == "safety"
              and r["outcome"] == "holds"}
    assert proved == safety and len(proved) == 13


def test_second_vcpu_under_simulate_and_bmc():
    sim = _check("second-vcpu", "--engine", "simulate", "--walks", "100", "--seed", "1",
                 "-p", "reach-vcpu1-ref-keeps-folio", "--no-write")
    assert [r["outcome"] for r in sim["results"]] == ["holds"]
    # bmc finds the 5-step violation bfs finds (and replays it)
    bmc = _check("second-vcpu", "--engine", "bmc", "--depth", "5", "-p",
                 "mapping-implies-page-cache", "-p", "reach-vcpu1-ref-keeps-folio",
                 "--no-write")
    assert {r["property"]: (r["outcome"], r["bound"]) for r in bmc["results"]} == {
        "mapping-implies-page-cache": ("violated", "shortest: 5 steps"),
        "reach-vcpu1-ref-keeps-folio": ("holds", "witness: 5 steps")}


def test_second_vcpu_under_strongest():
    """strongest on the second-vCPU series: bfs, then a proof at 2 pages of exactly the
    5 safety properties bfs finds to hold (the README gives the same proofs at 512 and
    262,144 pages); the violations stay bfs's shortest traces."""
    d, proved = _strongest_at_2("second-vcpu")
    assert proved == {"freed-pages-are-shared", "populate-refuses-prepared",
                      "no-rmpupdate-overlap", "rmp-2m-well-formed",
                      "preparedness-preserved-on-split", "no-deadlock"}
    by = {r["property"]: r["bound"] for r in d["results"]}
    assert by["mapping-implies-page-cache"] == "shortest: 5 steps"


def test_leak_on_failure_under_simulate_and_bmc():
    sim = _check("leak-on-failure", "--engine", "simulate", "--walks", "50", "--seed", "1",
                 "-p", "freed-pages-are-shared", "--no-write", rc=2)
    assert [(r["outcome"]) for r in sim["results"]] == ["holds_bounded"]
    bmc = _check("leak-on-failure", "--engine", "bmc", "--depth", "3", "-p",
                 "freed-pages-are-shared", "-p", "reach-fallback-order0", "--no-write", rc=2)
    assert {r["property"]: (r["outcome"], r["bound"]) for r in bmc["results"]} == {
        "freed-pages-are-shared": ("holds_bounded", "depth<=3"),
        "reach-fallback-order0": ("inconclusive", "depth<=3")}


def test_leak_on_failure_under_strongest():
    """strongest proves every safety property that holds through the twin (k-induction
    at 2 pages per huge folio here; at 512 in the README)."""
    _, proved = _strongest_at_2("leak-on-failure")
    _, verdicts = _pinned("leak-on-failure")
    assert proved == {p for p, v in verdicts.items() if v == "holds"
                      and p != "punched-memory-eventually-freed"} and len(proved) == 13


TICK = HEADER + """import z3
add_field("ticks", "scalar", domain=(0, 1), initial=0)


def tick(k):
    def body(k, w):
        if not w.choose("tick_fails"):
            w.put("ticks", 1)

    def sym_body(k, w):
        with w.when(z3.Not(w.choose("tick_fails"))):
            w.put("ticks", 1)

    return make(k, "tick", (), [()], lambda s, a: s.launched and s.ticks == 0, body,
                frozenset({"ticks"}), "d",
                symbolic=(lambda k, s: z3.And(s.launched, s.ticks == 0), sym_body))


add_action("tick", tick)
add_choice("tick_fails", (False, True), "the tick may fail", actions=["tick"])
"""


@pytest.mark.parametrize("wrong", [False, True])
def test_a_bool_choice_is_a_z3_argument_bound_by_the_check(isolated, tmp_path, wrong):
    from gmemcheck.symbolic import twins
    from gmemcheck.symbolic.model import SymModel

    cfg, m = _plugin_model(
        tmp_path, TICK.replace("z3.Not(w.choose", "(w.choose") if wrong else TICK)
    assert m.symbolic_gaps == []
    twins._CHECKED.discard(twins._key(m))
    if wrong:
        with pytest.raises(twins.TwinMismatch, match=r"the symbolic form of action tick "
                           r"disagrees with its Python body .*: tick\(False,\) successors "
                           "differ in ticks"):
            SymModel(m)
        return
    sm = SymModel(m)
    (a,) = [x for x in sm.actions if x.name == "tick"]
    assert a.params == ("tick_fails",) and a.sorts == ("bool",)


# ---------------------------------------------------------------- memo soundness
STASH_PLUGIN = '''
"""Test plug-in: an action whose body reads spec through a path the step memo cannot
see (the state its guard stashed), not through w (mm/compaction.c:isolate_migratepages_block
as a copy of the walker's pfn; DOMAIN.md §1.1)."""
from gmemcheck.api import add_action, add_field, make

add_field("spec_copy", "scalar", domain=(-2, -1, 0, 1), initial=-2)
STASH = []


def guard(s, a):
    STASH[:] = [s]
    return s.spec_copy != s.spec


def body(k, w):
    w.put("spec_copy", STASH[0].spec)


def build(k):
    return make(k, "copy_spec", (), [()], guard, body, {"spec_copy"},
                "mm/compaction.c:isolate_migratepages_block (test: DOMAIN.md §1.1)",
                environment=True)


add_action("copy_spec", build)
'''


def _reachable(m) -> set:
    """The first 6,000 states in BFS order (the whole space, 46,316, costs seconds)."""
    from gmemcheck.checker.explicit import Caps, explore

    return set(explore(m, [], caps=Caps(max_states=6000)).states)


def test_plugin_actions_are_not_memoized(isolated, tmp_path, monkeypatch):
    """A plug-in's body may read what the step memo cannot see: api.make builds its
    action unmemoized, so the reachable states are those of the search with the memo
    off (exactly), while the same body memoized would replay one write everywhere."""
    from gmemcheck.model import actions, kernel

    f = tmp_path / "stash.py"
    f.write_text(STASH_PLUGIN)
    plugins.load(f)
    cfg = load_preset("mainline-6.13")
    m = build(cfg, plugins.used_by(cfg.axes))
    assert m.k.memo.on and not m._guard_memo  # built-in steps memoized, guards not
    got = _reachable(m)
    monkeypatch.setattr(kernel, "MEMO", False)
    plain = build(cfg, plugins.used_by(cfg.axes))
    assert not plain.k.memo.on
    want = _reachable(plain)
    assert got == want and len(want) == 6000
    # the teeth: the same body memoized gives wrong successors
    monkeypatch.setattr(kernel, "MEMO", True)
    mk = build(cfg, plugins.used_by(cfg.axes))
    src = next(a for a in mk.actions if a.name == "copy_spec")
    stash = sys.modules[f"gmemcheck_plugin_{plugins.digest(f)[:16]}"]
    memoized = actions.make(mk.k, "copy_spec", (), [()], src.guard, stash.body,
                            frozenset({"spec_copy"}), "", memo=True)
    wrong = 0
    for s in want:
        if src.guard(s, ()):
            wrong += memoized.apply(s, ()) != src.apply(s, ())
    assert wrong > 0


SWALLOW_GUARD = '''
"""Test plug-in: a guard conjunct on kvm_gmem_get_pfn, a pure function of the state,
that reads it whole inside a broad except (virt/kvm/guest_memfd.c:kvm_gmem_get_pfn with
an extra precondition; DOMAIN.md section 2.1)."""
from gmemcheck.api import add_action, extend_action


def guard(s, a):
    try:
        return s._asdict()["spec"] < 0
    except Exception:
        return True


def wrap(k, prev):
    if prev is None:
        return None
    return extend_action(k, prev, guard=guard, sym_guard=lambda k, s, *a: s.spec < 0)


add_action("kvm_gmem_get_pfn", wrap, wraps=True)
'''


def test_guards_extended_by_a_plugin_are_not_memoized(isolated, tmp_path, monkeypatch):
    """A plug-in's guard conjunct (here one with a Z3 form) may read what the guard memo
    cannot record: the design's guards are called one by one, and the search reaches
    exactly the states of the search with every memo off."""
    from gmemcheck.model import kernel

    cfg, m = _plugin_model(tmp_path, SWALLOW_GUARD, name="swallow.py")
    assert m.k.memo.on and not m._guard_memo and m.symbolic_gaps == []
    got = _reachable(m)
    monkeypatch.setattr(kernel, "MEMO", False)
    want = _reachable(build(cfg, plugins.used_by(cfg.axes)))
    assert got == want and len(want) == 6000
