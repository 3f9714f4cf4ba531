"""The command line: formats, exit codes, and one clear line for every kind of bad input."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import one_line_error, run

from gmemcheck.model.config import configs_dir

ROOT = configs_dir().parent
CX = ROOT / "counterexamples"
S1 = CX / "rfc-thp" / "host-never-writes-guest-owned.itf.json"




# ------------------------------------------------------------------ check
def test_check_one_preset_text_and_exit_zero(capsys, tmp_path):
    code, out, err = run(capsys, "check", "--config", "mainline-6.13", "--out", str(tmp_path))
    assert code == 0
    assert "preset mainline-6.13" in out and "11917 distinct states" in out
    assert "host-never-writes-guest-owned       safety      holds         holds" in out
    assert list(tmp_path.rglob("*")) == []          # nothing violated, nothing written


def test_json_and_junit_give_the_same_verdicts(capsys, tmp_path):
    code_j, out_j, _ = run(capsys, "check", "--config", "pb-bitmap", "--format", "json",
                           "--out", str(tmp_path))
    code_x, out_x, _ = run(capsys, "check", "--config", "pb-bitmap", "--format", "junit",
                           "--no-write")
    assert code_j == code_x == 0
    doc = json.loads(out_j)
    assert doc["exit_code"] == 0
    res = {r["property"]: r for r in doc["results"]}
    for key in ("preset", "property", "kind", "outcome", "expected", "engine", "bound",
                "states", "seconds", "trace"):
        assert key in res["no-deadlock"]
    assert res["host-never-writes-guest-owned"]["outcome"] == "violated"
    trace = res["host-never-writes-guest-owned"]["trace"]
    assert trace == str(tmp_path / "pb-bitmap" / "host-never-writes-guest-owned.itf.json")
    assert Path(trace).exists() and Path(trace).with_suffix("").with_suffix(".txt").exists()
    suite = ET.fromstring(out_x).find("testsuite")
    assert suite is not None and suite.get("name") == "pb-bitmap"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == set(res) | {"distinct-states"}
    for name, r in res.items():
        out_text = cases[name].findtext("system-out") or ""
        assert out_text.startswith(r["outcome"]) or r["outcome"] == "n/a"


def test_a_changed_verdict_exits_one(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    text = (ROOT / "configs" / "mainline-6.13.toml").read_text()
    bad.write_text(text.replace('"no-deadlock" = "holds"', '"no-deadlock" = "violated"'))
    code, out, _ = run(capsys, "check", "--config", str(bad), "--no-write")
    assert code == 1
    assert "! no-deadlock" in out


def test_a_changed_state_count_exits_one(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    text = (ROOT / "configs" / "mainline-6.13.toml").read_text()
    bad.write_text(text.replace("states = 11917", "states = 11916"))
    code, out, _ = run(capsys, "check", "--config", str(bad), "--no-write")
    assert code == 1 and "pinned 11916, got 11917" in out


def test_a_bounded_verdict_exits_two(capsys):
    code, out, _ = run(capsys, "check", "--config", "mainline-6.13", "--max-states", "100",
                       "--no-write", "-p", "no-deadlock")
    assert code == 2 and "states<=100" in out


def test_set_overrides_a_bound_keeping_verdicts_but_not_the_state_count(capsys):
    code, out, _ = run(capsys, "check", "--config", "always-huge-reject", "--set",
                       "pages_per_huge=2", "--no-write", "-p", "no-deadlock", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["presets"][0]["expected_states"] is None
    assert doc["results"][0]["expected"] == "holds"


def test_set_overrides_an_axis_dropping_the_pinned_verdicts(capsys):
    code, out, _ = run(capsys, "check", "--config", "always-huge-reject", "--set",
                       "huge_alloc_may_fail=true", "--no-write", "-p", "no-deadlock")
    assert code == 0
    assert "1 without an expected verdict" in out


def test_simulate_prints_its_seed_and_is_reproducible(capsys):
    argv = ("check", "--config", "rfc-thp", "--engine", "simulate", "--walks", "50",
            "--depth", "30", "--seed", "3", "--no-write", "-p", "no-data-loss-outside-punch",
            "-p", "no-deadlock")
    code1, out1, _ = run(capsys, *argv)
    code2, out2, _ = run(capsys, *argv)
    assert code1 == code2 == 2            # holds_bounded for no-deadlock
    assert "--seed 3" in out1
    assert out1.replace(_secs(out1), "") == out2.replace(_secs(out2), "")


def _secs(out: str) -> str:
    line = out.splitlines()[1]
    return line[line.rfind(",") + 1:]


def test_progress_lines_go_to_stderr_when_asked(capsys):
    # a search longer than the 2 s between progress lines (rfc-thp at two pages takes
    # well under a second with the C loop): four pages, capped at 3 s, so bounded (2)
    code, out, err = run(capsys, "check", "--config", "rfc-thp", "--no-write", "--progress",
                         "-p", "no-deadlock", "--set", "pages_per_huge=4", "--max-seconds", "3")
    assert code == 2
    assert "states/s" in err and "states/s" not in out


# ------------------------------------------------------------------ replay / show
def test_replay_accepts_a_committed_trace(capsys):
    code, out, _ = run(capsys, "replay", str(S1))
    assert code == 0 and "replays" in out and "9-step" in out


def test_replay_rejects_a_tampered_trace_in_one_line(capsys, tmp_path):
    doc = json.loads(S1.read_text())
    doc["states"][3]["content"] = {"#tup": [2, 2]}
    f = tmp_path / "t.itf.json"
    f.write_text(json.dumps(doc))
    code, _, err = run(capsys, "replay", str(f))
    assert code == 1
    line = one_line_error(err)
    assert "does not replay" in line and "step 3" in line


def test_show_prints_the_selftest_listing(capsys):
    code, out, _ = run(capsys, "show", str(S1))
    assert code == 0
    assert "9. kvm_gmem_get_pfn(gfn=0, huge_ok=true)" in out
    assert "FAULT host-rmp-#pf-oops at pfn 0" in out


def test_graph_dot_highlights_the_trace(capsys, tmp_path):
    f = tmp_path / "g.dot"
    code, _, _ = run(capsys, "graph", "--config", "mainline-6.13", "--trace",
                     str(CX / "pb-bitmap" / "prepared-agrees-with-rmp.itf.json"), "-o", str(f))
    assert code == 0
    text = f.read_text()
    assert text.startswith("digraph gmemcheck") and "// complete exploration, 11917 states" in text


def test_graph_graphml(capsys, tmp_path):
    f = tmp_path / "g.graphml"
    code, _, _ = run(capsys, "graph", "--config", "always-huge-reject", "--format", "graphml",
                     "-o", str(f))
    assert code == 0 and "<graphml" in f.read_text()


def test_list_shows_presets_properties_and_axes(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    for word in ("rfc-thp", "hugetlb", "punched-memory-eventually-freed", "partial_punch",
                 "zero-in-place", "pages_per_huge"):
        assert word in out


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("argv, expect", [
    (("check", "--config", "no-such-preset"), "unknown preset 'no-such-preset'"),
    (("check", "--config", "rfc-thp", "-p", "no-such-property"), "unknown property"),
    (("check", "--config", "rfc-thp", "--set", "allocation=huge"),
     "--set allocation: unknown value 'huge'"),
    (("check", "--config", "rfc-thp", "--set", "pages_per_huge=3"),
     "--set pages_per_huge: 3 is not supported"),
    (("check", "--config", "rfc-thp", "--set", "nonsense"), "expected KEY=VALUE"),
    (("check", "--config", "rfc-thp", "--set", "colour=red"), "--set colour: unknown key"),
    (("check", "--max-states", "zero"), "not an integer"),
    (("check", "--max-states", "0"), "must be positive"),
    (("check", "--engine", "magic"), "invalid choice: 'magic'"),
    (("check", "--bogus"), "unrecognized arguments: --bogus"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    ((), "a command is required"),
    (("replay", "/no/such/file.itf.json"), "no such file"),
    (("check", "--config", "rfc-thp", "--set", "pages_per_huge=512"), "too large to explore"),
])
def test_bad_input_is_one_line_and_exit_64(capsys, argv, expect):
    code, _, err = run(capsys, *argv)
    assert code == 64
    assert expect in one_line_error(err)


@pytest.mark.parametrize("text, expect", [
    ("name = 'x'\n[axes\nplatform='snp'", "not valid TOML"),
    ("name = 'x'\n[bounds]\nregions = 1\npages_per_huge = 2\n", "missing table [axes]"),
    ("[axes]\nplatform = 'arm'\n", "[axes] platform: unknown value 'arm'"),
    ("[axes]\nflavour = 'x'\n", "[axes] flavour: unknown axis"),
    ("colour = 1\n", "unknown top-level key(s) colour"),
])
def test_malformed_preset_names_file_and_key(capsys, tmp_path, text, expect):
    f = tmp_path / "p.toml"
    f.write_text(text)
    code, _, err = run(capsys, "check", "--config", str(f))
    assert code == 64
    line = one_line_error(err)
    assert str(f) in line and expect in line


def test_preset_missing_an_axis_is_named(capsys, tmp_path):
    text = (ROOT / "configs" / "rfc-thp.toml").read_text().replace('truncate = "uniform"\n', "")
    f = tmp_path / "p.toml"
    f.write_text(text)
    code, _, err = run(capsys, "check", "--config", str(f))
    assert code == 64 and "[axes] missing truncate" in one_line_error(err)


def test_bad_expected_verdict_is_named(capsys, tmp_path):
    text = (ROOT / "configs" / "rfc-thp.toml").read_text().replace(
        '"no-deadlock" = "holds"', '"no-deadlock" = "fine"')
    f = tmp_path / "p.toml"
    f.write_text(text)
    code, _, err = run(capsys, "check", "--config", str(f))
    assert code == 64 and "[expect.verdicts] no-deadlock: must be one of" in one_line_error(err)


@pytest.mark.parametrize("mangle, expect", [
    (lambda t: t[: len(t) // 2], "not valid JSON"),
    (lambda t: "[]", "top level must be a JSON object"),
    (lambda t: t.replace('"format": "ITF"', '"format": "TLA"'), "not an ITF trace"),
    (lambda t: t.replace('"action": "kvm_gmem_punch_hole"', '"action": "rm_rf"'),
     "unknown action 'rm_rf'"),
    (lambda t: t.replace('"model": "guest_memfd"', '"model": "toy/diehard"'),
     "does not name the guest_memfd model"),
    (lambda t: t.replace('"vars": [', '"vars": ["extra", '), "do not match this model"),
    (lambda t: t.replace('"property": "host-never-writes-guest-owned"', '"property": "nope"'),
     "unknown property 'nope'"),
    (lambda t: t.replace('"allocation": "thp-fallback"', '"allocation": "magic"'),
     "allocation: unknown value 'magic'"),
])
def test_corrupt_trace_files_are_one_line_and_exit_64(capsys, tmp_path, mangle, expect):
    f = tmp_path / "t.itf.json"
    f.write_text(mangle(S1.read_text()))
    for cmd in ("replay", "show"):
        code, _, err = run(capsys, cmd, str(f))
        assert code == 64
        line = one_line_error(err)
        assert expect in line and str(f) in line


# ------------------------------------------------------------------ writing
def test_trace_files_are_written_atomically(capsys, tmp_path, monkeypatch):
    """An interrupted write leaves the previous trace intact and no temporary file."""
    out = tmp_path / "cx"
    shutil.copytree(CX / "pb-bitmap", out / "pb-bitmap")
    before = (out / "pb-bitmap" / "host-never-writes-guest-owned.txt").read_bytes()
    import gmemcheck.checker.traces as traces

    def boom(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(traces.os, "fsync", boom)
    code, _, err = run(capsys, "check", "--config", "pb-bitmap", "--out", str(out))
    assert code == 130 and "interrupted" in err
    assert (out / "pb-bitmap" / "host-never-writes-guest-owned.txt").read_bytes() == before
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_file_names_are_deterministic(capsys, tmp_path):
    for _ in range(2):
        run(capsys, "check", "--config", "pb-bitmap", "--out", str(tmp_path))
    names = sorted(p.name for p in (tmp_path / "pb-bitmap").iterdir())
    assert names == ["host-never-writes-guest-owned.itf.json",
                     "host-never-writes-guest-owned.txt",
                     "prepared-agrees-with-rmp.itf.json", "prepared-agrees-with-rmp.txt"]


def test_workers_and_hash_compaction_flags_reach_the_engine(capsys):
    """--workers 2 gives the single-process verdicts and state count; --hash-compaction
    names itself in every verdict, is never 'holds', and is not a pinned run (its
    traces go to the scratch directory, never to counterexamples/)."""
    code, out, _ = run(capsys, "check", "--config", "pb-bitmap", "--workers", "2",
                       "--format", "json", "--no-write")
    res = json.loads(out)["results"]
    assert code == 0 and {r["states"] for r in res} == {22369}
    assert all(r["outcome"] == r["expected"] or r["outcome"] == "n/a" for r in res)
    code, out, _ = run(capsys, "check", "--config", "mainline-6.13", "--hash-compaction",
                       "-p", "host-never-writes-guest-owned", "-p", "reach-psmash",
                       "--format", "json", "--no-write")
    res = {r["property"]: r for r in json.loads(out)["results"]}
    assert code == 2
    assert res["host-never-writes-guest-owned"]["outcome"] == "holds_bounded"
    assert res["reach-psmash"]["outcome"] == "inconclusive"
    assert all("hash compaction" in r["bound"] for r in res.values())
    from gmemcheck.model import load_preset
    from gmemcheck.runner import not_pinned
    assert "hash-compaction" in (not_pinned(load_preset("rfc-thp"), "bfs", [], True) or "")
    assert not_pinned(load_preset("rfc-thp"), "bfs", [], False) is None


def test_workers_check_several_presets_at_once(capsys, tmp_path):
    """check --workers 2 with two presets checks them in two processes: the same report
    (but for the seconds) and byte-identical trace files as the sequential run."""
    import re

    presets = ("--config", "always-huge-reject", "--config", "tdx-huge")
    outs, files = [], []
    for n, w in (("seq", "1"), ("par", "2")):
        code, out, err = run(capsys, "check", *presets, "--workers", w, "--format", "json",
                             "--out", str(tmp_path / n))
        assert code == 0, err
        out = out.replace(str(tmp_path / n), "OUT")
        outs.append(re.sub(r'"seconds": [0-9.e-]+', '"seconds": 0', out))
        files.append({p.relative_to(tmp_path / n): p.read_bytes()
                      for p in sorted((tmp_path / n).rglob("*")) if p.is_file()})
    assert outs[0] == outs[1]
    assert files[0] == files[1] and len(files[0]) >= 2
    res = json.loads(outs[1])["results"]
    assert {(r["preset"], r["states"]) for r in res} == {("always-huge-reject", 3040),
                                                         ("tdx-huge", 9783)}
