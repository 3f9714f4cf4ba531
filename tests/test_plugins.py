"""Plug-ins: the worked example, the test-only mutants, and every loading error.

Each check runs the command line in a fresh process, since a plug-in registers axis
values for the whole process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gmemcheck.model.config import configs_dir

ROOT = configs_dir().parent


def cli(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmemcheck.cli", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def verdicts(p: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {r["property"]: r["outcome"] for r in json.loads(p.stdout)["results"]}


def error_line(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 64, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


def test_worked_example_flips_freed_pages_are_shared(tmp_path):
    props = ("-p", "freed-pages-are-shared", "-p", "host-never-writes-guest-owned")
    base = cli("check", "--config", "mainline-latest-rmp-fail", *props, "--format", "json",
               "--no-write")
    leak = cli("check", "--config", "examples/leak-on-failure.toml", *props, "--format",
               "json", "--out", str(tmp_path))
    assert base.returncode == leak.returncode == 0, (base.stderr, leak.stderr)
    assert verdicts(base) == {"freed-pages-are-shared": "violated",
                              "host-never-writes-guest-owned": "violated"}
    assert verdicts(leak) == {"freed-pages-are-shared": "holds",
                              "host-never-writes-guest-owned": "holds"}


def test_plugin_flag_adds_the_value_for_any_preset():
    p = cli("check", "--plugin", "examples/leak_on_failure.py", "--config",
            "mainline-latest-rmp-fail", "--set", "rmp_shared_failure=leak", "-p",
            "freed-pages-are-shared", "--format", "json", "--no-write")
    assert p.returncode == 0, p.stderr
    assert verdicts(p) == {"freed-pages-are-shared": "holds"}


def test_list_shows_a_plugin_value_with_its_origin():
    plain = cli("list")
    added = cli("list", "--plugin", "examples/leak_on_failure.py")
    assert plain.returncode == added.returncode == 0
    assert "[plug-in" not in plain.stdout
    line = next(ln for ln in added.stdout.splitlines() if ln.split()[:1] == ["leak"])
    assert "snp_leak_pages" in line and "[plug-in examples/leak_on_failure.py]" in line


@pytest.mark.parametrize("mutant, prop", [
    ("mutant-no-psmash", "no-rmpupdate-overlap"),
    ("mutant-populate-no-check", "populate-refuses-prepared"),
])
def test_mutants_violate_the_properties_no_preset_breaks(mutant, prop):
    p = cli("check", "--config", f"tests/mutants/{mutant}.toml", "-p", prop, "--format",
            "json", "--no-write")
    assert p.returncode == 0, p.stderr
    assert verdicts(p) == {prop: "violated"}


def _mutant_trace(tmp_path: Path) -> tuple[Path, Path]:
    """A counterexample found with a plug-in, in a scratch copy of the mutant files."""
    work = tmp_path / "w"
    shutil.copytree(ROOT / "tests" / "mutants", work / "mutants")
    p = cli("check", "--config", "mutants/mutant-no-psmash.toml", "-p",
            "no-rmpupdate-overlap", "--out", "cx", cwd=work)
    assert p.returncode == 0, p.stderr
    itf = work / "cx" / "mutant-no-psmash" / "no-rmpupdate-overlap.itf.json"
    return work, itf


def test_traces_record_the_plugin_file_and_hash(tmp_path):
    work, itf = _mutant_trace(tmp_path)
    meta = json.loads(itf.read_text())["#meta"]
    rec = meta["model"]["plugins"]
    assert [r["file"] for r in rec] == ["mutants/no_psmash.py"]
    import hashlib

    assert rec[0]["sha256"] == hashlib.sha256(
        (work / "mutants" / "no_psmash.py").read_bytes()).hexdigest()
    p = cli("replay", str(itf), cwd=work)
    assert p.returncode == 0 and "replays" in p.stdout, p.stderr


def test_replay_refuses_a_changed_plugin(tmp_path):
    work, itf = _mutant_trace(tmp_path)
    f = work / "mutants" / "no_psmash.py"
    f.write_text(f.read_text() + "\n# edited\n")
    line = error_line(cli("replay", str(itf), cwd=work))
    assert "plug-in mutants/no_psmash.py has changed since the trace was written" in line


def test_replay_refuses_a_missing_plugin(tmp_path):
    work, itf = _mutant_trace(tmp_path)
    (work / "mutants" / "no_psmash.py").unlink()
    line = error_line(cli("replay", str(itf), cwd=work))
    assert "plug-in mutants/no_psmash.py, which is missing" in line


GOOD_STEP = """
def prep(k, w, pfn, max_order):
    pass
"""


@pytest.mark.parametrize("body, expect", [
    ('add_value("allocation", "x", "d", actions={"kvm_gmem_frobnicate": lambda k: None})',
     "unknown action 'kvm_gmem_frobnicate'"),
    ('add_value("allocation", "x", "d", steps={"no_such_step": prep})',
     "unknown step 'no_such_step'"),
    ('add_value("colour", "x", "d")', "unknown axis 'colour'"),
    ('raise RuntimeError("boom")', "raised RuntimeError while loading: boom"),
    ('import no_such_module_anywhere', "raised ModuleNotFoundError while loading"),
    ('add_value("allocation", "order0", "d")', "already has a value 'order0'"),
    ('add_axis("platform", "d", {"a": ("d", {}, {})})', "axis 'platform' is already defined"),
    ('add_property("no-deadlock", lambda m: None)', "property 'no-deadlock' already exists"),
    ('add_value("huge_alloc_may_fail", "x", "d")', "is a bool axis"),
])
def test_loading_errors_name_the_file(tmp_path, body, expect):
    f = tmp_path / "series.py"
    f.write_text("from gmemcheck.api import add_value, add_axis, add_property\n"
                 + GOOD_STEP + body + "\n")
    line = error_line(cli("check", "--plugin", str(f), "--config", "mainline-6.13",
                          "-p", "no-deadlock", "--no-write"))
    assert "series.py" in line and expect in line


def test_missing_or_non_python_plugin(tmp_path):
    line = error_line(cli("check", "--plugin", str(tmp_path / "nope.py"), "--no-write"))
    assert "nope.py: no such file" in line
    f = tmp_path / "series.txt"
    f.write_text("x")
    assert "not a Python file" in error_line(cli("check", "--plugin", str(f), "--no-write"))


CONTRACT = """
from gmemcheck.api import add_value
calls = [0]

def writes_attr(k, w, pfn, max_order):
    w.arr("attr")[pfn] = False

def flaky(k, w, pfn, max_order):
    calls[0] += 1
    if calls[0] % 2:
        w.arr("rmp")[pfn] = 1

add_value("snp_prepare", "writes-attr", "d", steps={"kvm_arch_gmem_prepare": writes_attr})
add_value("snp_prepare", "flaky", "d", steps={"kvm_arch_gmem_prepare": flaky})
"""


@pytest.mark.parametrize("value, expect", [
    ("writes-attr", "changes attr, not in its modifies"),
    ("flaky", "is not deterministic"),
])
def test_contract_breaks_are_refused(tmp_path, value, expect):
    f = tmp_path / "series.py"
    f.write_text(CONTRACT)
    line = error_line(cli("check", "--plugin", str(f), "--config", "mainline-6.13", "--set",
                          f"snp_prepare={value}", "-p", "no-deadlock", "--no-write"))
    assert "series.py" in line and expect in line and "kvm_gmem_get_pfn" in line


def test_preset_plugins_resolve_relative_to_the_preset(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "ex")
    p = cli("check", "--config", str(tmp_path / "ex" / "leak-on-failure.toml"), "-p",
            "no-deadlock", "--no-write", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    (tmp_path / "ex" / "leak_on_failure.py").unlink()
    line = error_line(cli("check", "--config", str(tmp_path / "ex" / "leak-on-failure.toml"),
                          "--no-write", cwd=tmp_path))
    assert "plugins[0]" in line and "leak_on_failure.py: no such file" in line
