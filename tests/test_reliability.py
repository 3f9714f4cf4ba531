"""Users' data and the exit-code contract (issue 16): where traces go, what each kind of
failure exits with, strict presets, what replay checks, and sizes refused up front."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from helpers import one_line_error as one_line
from helpers import run

from gmemcheck import cli, properties
from gmemcheck.cli import main
from gmemcheck.model.config import configs_dir

ROOT = configs_dir().parent
CX = ROOT / "counterexamples"
PB = CX / "pb-bitmap"
PB_TRACE = PB / "prepared-agrees-with-rmp.itf.json"     # 5 steps
S1 = CX / "rfc-thp" / "host-never-writes-guest-owned.itf.json"




def snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def committed_untouched():
    """The committed counterexamples are byte-for-byte and mtime-for-mtime unchanged."""
    before = snapshot(CX)
    yield
    assert snapshot(CX) == before


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)          # gmemcheck-out/ is relative to the current dir
    return tmp_path


# ------------------------------------------------- 1. who writes counterexamples/
def test_a_set_run_writes_under_gmemcheck_out_and_says_so(capsys, in_tmp,
                                                         committed_untouched):
    code, out, err = run(capsys, "check", "--config", "pb-bitmap", "--set", "regions=1",
                         "-p", "host-never-writes-guest-owned", "-p", "prepared-agrees-with-rmp")
    assert code == 0
    scratch = in_tmp / "gmemcheck-out" / "pb-bitmap"
    assert sorted(p.name for p in scratch.iterdir()) == [
        "host-never-writes-guest-owned.itf.json", "host-never-writes-guest-owned.txt",
        "prepared-agrees-with-rmp.itf.json", "prepared-agrees-with-rmp.txt"]
    assert "2 trace(s) written under gmemcheck-out/pb-bitmap/" in err
    assert "--set regions=1 changes the preset" in err
    assert "gmemcheck-out/pb-bitmap/prepared-agrees-with-rmp.itf.json" in out
    txt = (scratch / "prepared-agrees-with-rmp.txt").read_text()
    assert "# replay: gmemcheck replay gmemcheck-out/pb-bitmap/prepared-agrees-with-rmp" \
           ".itf.json\n" in txt


def test_an_axis_change_that_removes_violations_keeps_the_committed_ones(
        capsys, in_tmp, committed_untouched):
    # the claims example: with partial punches rejected, fewer properties are violated;
    # the committed traces of pb-bitmap must not be deleted
    code, _, _ = run(capsys, "check", "--config", "pb-bitmap", "--set",
                     "partial_punch=reject", "-p", "prepared-agrees-with-rmp")
    assert code in (0, 2)


def test_bmc_writes_under_gmemcheck_out(capsys, in_tmp, committed_untouched):
    code, out, err = run(capsys, "check", "--config", "pb-bitmap", "--engine", "bmc",
                         "--depth", "5", "-p", "prepared-agrees-with-rmp")
    assert code == 0
    assert "bmc is not the engine of the pinned verdicts" in err
    assert (in_tmp / "gmemcheck-out" / "pb-bitmap" / "prepared-agrees-with-rmp.txt").exists()


def test_a_user_preset_named_like_a_built_in_never_touches_its_traces(
        capsys, in_tmp, committed_untouched):
    f = in_tmp / "mine.toml"
    f.write_text((ROOT / "configs" / "pb-bitmap.toml").read_text())   # name = "pb-bitmap"
    code, _, err = run(capsys, "check", "--config", str(f), "-p", "prepared-agrees-with-rmp")
    assert code == 0
    assert "is not a built-in preset" in err
    assert (in_tmp / "gmemcheck-out" / "pb-bitmap" / "prepared-agrees-with-rmp.txt").exists()
    code, _, err = run(capsys, "check", "--config", str(f), "--update-counterexamples")
    assert code == 64 and "is not a built-in preset" in one_line(err)


def test_out_naming_the_committed_dir_is_refused_unless_pinned(capsys, in_tmp,
                                                               committed_untouched):
    code, _, err = run(capsys, "check", "--config", "pb-bitmap", "--set", "regions=1",
                       "--out", str(CX))
    assert code == 64
    assert "written only by the pinned run" in one_line(err)


def test_kinduction_ctis_go_to_gmemcheck_out(capsys):
    import argparse

    cfg = cli.load_preset("pb-bitmap")
    a = argparse.Namespace(no_write=False, update_counterexamples=False, out=None,
                           engine="kinduction", plugins=[])
    assert cli._where_to_write(a, [cfg]) == [
        (cli.SCRATCH_DIR, "--engine kinduction is not the engine of the pinned verdicts (bfs)")]
    a.engine = "bfs"
    assert cli._where_to_write(a, [cfg]) == [(CX, "")]
    a.plugins = ["x.py"]
    assert cli._where_to_write(a, [cfg])[0][0] == cli.SCRATCH_DIR


def test_the_pinned_run_writes_the_committed_traces(capsys, committed_untouched_content):
    code, out, err = run(capsys, "check", "--config", "pb-bitmap", "--format", "json",
                         "-p", "prepared-agrees-with-rmp")
    assert code == 0 and "written under" not in err
    res = {r["property"]: r for r in json.loads(out)["results"]}
    assert res["prepared-agrees-with-rmp"]["trace"] == str(PB_TRACE)


@pytest.fixture
def committed_untouched_content():
    before = {k: v[0] for k, v in snapshot(CX).items()}
    yield
    assert {k: v[0] for k, v in snapshot(CX).items()} == before


# ------------------------------------------------- 2. one error path
def test_a_full_disk_prints_the_verdicts_then_one_line_and_exits_74(capsys, tmp_path,
                                                                    monkeypatch):
    out = tmp_path / "cx"
    shutil.copytree(PB, out / "pb-bitmap")
    before = snapshot(out)
    import gmemcheck.checker.traces as traces

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(traces.os, "fsync", full)
    code, stdout, err = run(capsys, "check", "--config", "pb-bitmap", "--out", str(out),
                            "-p", "host-never-writes-guest-owned", "-p", "prepared-agrees-with-rmp")
    assert code == 74
    assert "prepared-agrees-with-rmp" in stdout and "violated" in stdout   # the verdicts
    line = one_line(err)
    assert f"cannot write {out / 'pb-bitmap'}" in line and "No space left" in line
    assert snapshot(out) == before            # old traces intact, no temporary left


def test_a_read_only_output_dir_exits_74(capsys, tmp_path, monkeypatch):
    import gmemcheck.checker.traces as traces

    def ro(*a: object, **k: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "pb-bitmap"))

    monkeypatch.setattr(traces.tempfile, "mkstemp", ro)
    code, stdout, err = run(capsys, "check", "--config", "pb-bitmap", "--out", str(tmp_path),
                            "-p", "prepared-agrees-with-rmp")
    assert code == 74 and "prepared-agrees-with-rmp" in stdout
    assert "Read-only file system" in one_line(err)


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_out_naming_a_file_or_a_missing_path_exits_74(capsys, tmp_path, kind):
    bad = tmp_path / "f"
    if kind == "file":
        bad.write_text("x")
    else:
        bad = tmp_path / "no" / "such" / "dir"
    code, _, err = run(capsys, "check", "--config", "pb-bitmap", "--out", str(bad))
    assert code == 74
    assert f"cannot write {bad}" in one_line(err)


@pytest.mark.parametrize("exc", [RuntimeError("boom"), MemoryError()])
def test_anything_unexpected_exits_70_naming_the_saved_traceback(capsys, monkeypatch, exc):
    def crash(*a: object, **k: object) -> None:
        raise exc

    monkeypatch.setattr(cli, "compute_preset", crash)
    code, _, err = run(capsys, "check", "--config", "pb-bitmap", "--no-write")
    assert code == 70
    line = one_line(err)
    assert "internal error" in line and "traceback saved to " in line
    saved = Path(line.split("traceback saved to ", 1)[1])
    assert type(exc).__name__ in saved.read_text()
    saved.unlink()


def test_deeply_nested_json_is_one_line_and_64(capsys, tmp_path):
    f = tmp_path / "deep.itf.json"
    f.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run(capsys, "replay", str(f))
    assert code == 64 and "nested too deeply" in one_line(err)


# ------------------------------------------------- 3. strict presets and caps
@pytest.mark.parametrize("old, new, expect", [
    ('"no-deadlock" = "holds"', '"no-dedlock" = "holds"',
     "[expect.verdicts] no-dedlock: unknown property"),
    ("regions = 1", 'regions = "1"', "[bounds] regions: must be an integer, got '1'"),
    ("huge_alloc_may_fail = true", 'huge_alloc_may_fail = "true"',
     "[axes] huge_alloc_may_fail: must be true or false, got 'true'"),
    ('unexpected_refs = ["speculative"]', 'unexpected_refs = "speculative"',
     "[axes] unexpected_refs: must be a list of names"),
])
def test_presets_are_validated_strictly(capsys, tmp_path, old, new, expect):
    text = (ROOT / "configs" / "rfc-thp.toml").read_text()
    assert old in text
    f = tmp_path / "p.toml"
    f.write_text(text.replace(old, new))
    code, _, err = run(capsys, "check", "--config", str(f), "--no-write")
    assert code == 64
    line = one_line(err)
    assert str(f) in line and expect in line


@pytest.mark.parametrize("argv, expect", [
    (("--prove-at", "3"), "3 is not a supported pages_per_huge"),
    (("--prove-at", "524288"), "524288 is not a supported pages_per_huge"),
    (("--max-seconds", "nan"), "must be a finite number"),
    (("--max-seconds", "inf"), "must be a finite number"),
    (("--max-seconds", "-1"), "must be positive"),
    (("--solver-timeout", "nan"), "must be a finite number"),
    (("--max-memory", "lots"), "not a size"),
])
def test_caps_and_sizes_are_refused(capsys, argv, expect):
    code, _, err = run(capsys, "check", "--config", "pb-bitmap", "--no-write", *argv)
    assert code == 64 and expect in one_line(err)


def test_set_still_parses_its_strings(capsys):
    code, _, _ = run(capsys, "check", "--config", "always-huge-reject", "--set",
                     "huge_alloc_may_fail=false", "--set", "regions=1", "--no-write",
                     "-p", "no-deadlock")
    assert code == 0


def test_set_of_an_empty_set_axis_means_none(capsys):
    from helpers import model

    assert model("rfc-thp", "unexpected_refs=").k.axes["unexpected_refs"] == ()
    code, _, _ = run(capsys, "check", "--config", "rfc-thp", "--set", "unexpected_refs=",
                     "--no-write", "-p", "no-deadlock")
    assert code == 0


@pytest.mark.parametrize("val, expect", [
    ("[]", "unknown value(s) []"),
    ("none", "unknown value(s) none"),
    ("speculative,,gup", "empty name in the list"),
    ("speculative,", "empty name in the list"),
    (",", "empty name in the list"),
])
def test_set_refuses_empty_names_and_spelled_out_empty_sets(capsys, val, expect):
    code, _, err = run(capsys, "check", "--config", "rfc-thp", "--set",
                       f"unexpected_refs={val}", "--no-write")
    assert code == 64 and expect in one_line(err)


# ------------------------------------------------- 4. replay checks what a file says
def _edited(tmp_path: Path, src: Path, edit, txt: bool = False) -> Path:
    d = tmp_path / "e"
    d.mkdir(exist_ok=True)
    f = d / src.name
    f.write_text(edit(src.read_text()))
    if txt:
        shutil.copy(src.with_name(src.name.replace(".itf.json", ".txt")),
                    d / src.name.replace(".itf.json", ".txt"))
    return f


def test_replay_checks_both_files_of_the_pair(capsys):
    code, out, _ = run(capsys, "replay", str(PB_TRACE))
    assert code == 0
    assert "return values and side effects included" in out
    assert "prepared-agrees-with-rmp.txt matches" in out


@pytest.mark.parametrize("edit, expect", [
    (lambda d: d["states"][4]["#meta"].__setitem__("ret", -22),
     "step 4: truncate_inode_pages_range(rmp_make_shared_fails=false, "
     "second_split_fails=false) returns 0, the trace says -22"),
    (lambda d: d["states"][1]["#meta"]["events"].append("host writes pfn 1"),
     "claims 'host writes pfn 1'"),
    (lambda d: d["states"][1]["#meta"]["events"].pop(),
     "the trace's side effects differ (it omits"),
])
def test_replay_refuses_edited_returns_and_events(capsys, tmp_path, edit, expect):
    doc = json.loads(PB_TRACE.read_text())
    edit(doc)
    f = tmp_path / "t.itf.json"
    f.write_text(json.dumps(doc))
    for cmd in ("replay", "show"):
        code, out, err = run(capsys, cmd, str(f))
        assert code == 1 and out == ""
        assert expect in one_line(err)


def test_replay_refuses_a_trace_moved_to_another_preset(capsys, tmp_path):
    f = _edited(tmp_path, S1, lambda t: t.replace('"preset": "rfc-thp"',
                                                  '"preset": "mainline-6.13"'))
    code, out, err = run(capsys, "replay", str(f))
    assert code == 64 and out == ""
    assert "preset 'mainline-6.13'" in one_line(err) and "model-digest" in err


def test_replay_refuses_a_broken_pair(capsys, tmp_path):
    d = tmp_path / "pb-bitmap"
    d.mkdir()
    # the .itf.json of one trace next to the .txt of another: a kill between the renames
    shutil.copy(PB_TRACE, d / "x.itf.json")
    shutil.copy(PB / "host-never-writes-guest-owned.txt", d / "x.txt")
    code, _, err = run(capsys, "replay", str(d / "x.itf.json"))
    assert code == 64 and "x.txt: is not the text of x.itf.json" in one_line(err)
    # the right digest but edited steps
    txt = PB_TRACE.with_name("prepared-agrees-with-rmp.txt").read_text()
    (d / "x.txt").write_text(txt.replace("kvm_gmem_punch_hole", "kvm_gmem_punch_holes"))
    code, _, err = run(capsys, "replay", str(d / "x.itf.json"))
    assert code == 64 and "its steps differ" in one_line(err)


def test_show_validates_values_first(capsys, tmp_path):
    doc = json.loads(PB_TRACE.read_text())
    doc["states"][2]["order"] = "bad"
    f = tmp_path / "t.itf.json"
    f.write_text(json.dumps(doc))
    for cmd in ("show", "replay"):
        code, out, err = run(capsys, cmd, str(f))
        assert code in (1, 64) and out == ""
        one_line(err)


def test_stale_temporaries_are_removed_and_modes_follow_the_umask(capsys, tmp_path):
    d = tmp_path / "pb-bitmap"
    d.mkdir()
    stale = d / ".prepared-agrees-with-rmp.txt.k2j3h4.tmp"
    stale.write_text("half")
    old = os.umask(0o027)
    try:
        code, _, _ = run(capsys, "check", "--config", "pb-bitmap", "--out", str(tmp_path),
                         "-p", "host-never-writes-guest-owned", "-p", "prepared-agrees-with-rmp")
    finally:
        os.umask(old)
    assert code == 0 and not stale.exists()
    modes = {p.name: p.stat().st_mode & 0o777 for p in d.iterdir()}
    assert len(modes) == 4 and set(modes.values()) == {0o640}


def test_a_second_run_waits_for_the_first(capsys, tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)          # a first run writing there
    res: dict[str, int] = {}
    t = threading.Thread(target=lambda: res.setdefault("code", main(
        ["check", "--config", "pb-bitmap", "--out", str(tmp_path), "-p",
         "prepared-agrees-with-rmp"])))
    t.start()
    time.sleep(1.0)
    assert t.is_alive() and not (tmp_path / "pb-bitmap").exists()
    os.close(fd)                             # the first run ends
    t.join(60)
    assert res["code"] == 0
    assert (tmp_path / "pb-bitmap" / "prepared-agrees-with-rmp.txt").exists()
    assert "waiting for another gmemcheck run writing to" in capsys.readouterr().err


# ------------------------------------------------- 5. sizes refused, caps honoured
def _digest_of(model: dict) -> str:
    keep = {k: model.get(k) for k in ("preset", "axes", "bounds")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def test_replay_refuses_a_trace_too_large_to_build(capsys, tmp_path):
    doc = json.loads(S1.read_text())
    doc["#meta"]["model"]["bounds"]["pages_per_huge"] = 262144
    doc["#meta"]["model-digest"] = _digest_of(doc["#meta"]["model"])
    f = tmp_path / "big.itf.json"
    f.write_text(json.dumps(doc))
    code, _, err = run(capsys, "replay", str(f))
    assert code == 64
    assert "262144 pages cannot be replayed" in one_line(err) and "up to 1024" in err


@pytest.mark.parametrize("argv, expect", [
    (("--set", "regions=8"), "16 pages is too large to explore exhaustively (at most 8)"),
    (("--set", "pages_per_huge=8192", "--max-seconds", "30"),
     "8192 pages is too large to explore with an explicit engine, even capped (at most 64"),
    (("--engine", "kinduction", "--no-window", "--set", "pages_per_huge=262144"),
     "built only up to 1024 pages; prove at larger sizes over representative pages"),
    (("--engine", "strongest", "--prove-at", "2048", "--no-window"),
     "--prove-at 2048 without representative pages builds 2048 pages"),
])
def test_unaffordable_sizes_are_refused_before_building(capsys, argv, expect):
    t0 = time.perf_counter()
    code, _, err = run(capsys, "check", "--config", "rfc-thp", "--no-write", *argv)
    assert code == 64 and expect in one_line(err)
    assert time.perf_counter() - t0 < 5


def test_bmc_honours_max_seconds(capsys):
    code, out, _ = run(capsys, "check", "--config", "pb-bitmap", "--engine", "bmc",
                       "--depth", "30", "--max-seconds", "0.001", "--no-write",
                       "--format", "json", "-p", "no-deadlock", "-p", "reach-rmp-2m-entry")
    res = {r["property"]: r for r in json.loads(out)["results"]}
    assert code == 2
    assert "time<=0.001s" in res["no-deadlock"]["bound"]
    assert res["no-deadlock"]["outcome"] in ("holds_bounded", "inconclusive")
    assert res["reach-rmp-2m-entry"]["outcome"] == "inconclusive"
    assert "--max-seconds 0.001" in res["reach-rmp-2m-entry"]["reason"]


def test_a_memory_cap_gives_inconclusive_naming_it(capsys, monkeypatch):
    caps: list[int] = []
    monkeypatch.setattr(cli, "_set_memory_cap", caps.append)

    def oom(*a: object, **k: object) -> None:
        raise MemoryError

    monkeypatch.setattr(cli, "compute_preset", oom)
    code, out, err = run(capsys, "check", "--config", "pb-bitmap", "--max-memory", "2G",
                         "--no-write", "-p", "no-deadlock", "--format", "json")
    assert caps == [2 << 30] and code == 2 and "Traceback" not in err
    cell = json.loads(out)["results"][0]
    assert cell["outcome"] == "inconclusive" and cell["bound"] == "memory<=2G"
    assert "--max-memory 2G reached" in cell["reason"]


# ------------------------------------------------- 6. engines that can succeed
def test_kinduction_marks_what_it_cannot_decide_na_and_can_exit_zero(capsys):
    code, out, _ = run(capsys, "check", "--config", "mainline-6.13", "--engine",
                       "kinduction", "--no-write", "--format", "json", "-p", "no-deadlock",
                       "-p", "punched-memory-eventually-freed", "-p", "reach-psmash",
                       "-p", "freed-pages-are-shared")
    res = {r["property"]: r for r in json.loads(out)["results"]}
    assert code == 0
    assert res["no-deadlock"]["outcome"] == res["freed-pages-are-shared"]["outcome"] == "holds"
    assert res["no-deadlock"]["bound"] == "proved (k=1, pages_per_huge=2, regions=1)"
    for p in ("punched-memory-eventually-freed", "reach-psmash"):
        assert res[p]["outcome"] == "n/a"
        assert res[p]["reason"].startswith("not decided by --engine kinduction")


def test_kinduction_honours_max_seconds(capsys):
    code, out, _ = run(capsys, "check", "--config", "always-huge-reject", "--engine",
                       "kinduction", "--no-write", "--format", "json", "-p", "no-deadlock",
                       "--max-seconds", "0.01")
    cell = json.loads(out)["results"][0]
    assert code == 2 and cell["outcome"] == "inconclusive"
    assert cell["bound"] == "time<=0.01s" and "--max-seconds 0.01" in cell["reason"]


def test_bfs_time_cap_covers_the_graph_analysis(capsys):
    """Once the search stops on --max-seconds, liveness and recoverability are not
    analysed past the cap: inconclusive, naming it (the search's safety verdicts
    stay bounded)."""
    code, out, _ = run(capsys, "check", "--config", "rfc-thp-zeroing", "--set",
                       "pages_per_huge=4", "--max-seconds", "1", "--no-write", "--format",
                       "json", "-p", "punched-memory-eventually-freed", "-p",
                       "huge-backing-recoverable", "-p", "no-data-loss-outside-punch")
    res = {r["property"]: r for r in json.loads(out)["results"]}
    assert code == 2
    for p in ("punched-memory-eventually-freed", "huge-backing-recoverable"):
        assert res[p]["outcome"] == "inconclusive" and res[p]["bound"] == "time<=1s"
        assert "time<=1s reached before the graph analysis" in res[p]["reason"]


def test_graph_analysis_stops_when_the_cap_passes_after_a_complete_search():
    from gmemcheck.checker.core import Result
    from gmemcheck.checker.explicit import explore
    from gmemcheck.checker.run import verdicts_from_exploration
    from gmemcheck.model import build, load_preset

    m = build(load_preset("mainline-6.13"))
    props = [p for p in properties.select(m, None) if p.needs_graph]
    exp = explore(m, props)
    assert exp.complete and props
    late = time.perf_counter() - 100.0       # the cap passed before the analysis
    for v in verdicts_from_exploration(exp, props, "bfs", 10.0, late):
        assert v.result is Result.INCONCLUSIVE and v.bound == "time<=10s"
    for v in verdicts_from_exploration(exp, props, "bfs", 10.0, time.perf_counter()):
        assert v.result is Result.HOLDS


def test_kinduction_mining_stops_at_the_time_cap():
    """The lemma mining before any query (exploring and mining the small model) is
    under the cap too: it stops with DeadlineReached, which the runner reports as
    inconclusive naming the cap."""
    from gmemcheck.model import build, load_preset
    from gmemcheck.symbolic import kind

    m = build(load_preset("rfc-thp"))
    kind.DEADLINE[0] = time.perf_counter() + 0.05
    try:
        with pytest.raises(kind.DeadlineReached):
            kind.mined_lemmas(m)
    finally:
        kind.DEADLINE[0] = None


def test_progress_lines_for_the_symbolic_engines(capsys):
    code, _, err = run(capsys, "check", "--config", "always-huge-reject", "--engine", "bmc",
                       "--depth", "2", "--no-write", "--progress", "-p", "no-deadlock")
    assert code == 2
    assert "gmemcheck: always-huge-reject: bmc started" in err
    assert "gmemcheck: always-huge-reject: bmc: depth 2 done, 1 open" in err
    assert "gmemcheck: always-huge-reject: bmc done in " in err


# ------------------------------------------------- 7. newcomers
def test_reach_rows_say_reached_or_unreachable(capsys):
    code, out, _ = run(capsys, "check", "--config", "mainline-6.13", "--no-write",
                       "-p", "reach-psmash")
    assert code == 0
    assert "reach-psmash  reachable   unreachable   unreachable" in out


def test_the_matrix_names_its_columns_and_keeps_the_coverage_report(capsys):
    code, out, _ = run(capsys, "check", "--config", "mainline-6.13", "--config",
                       "always-huge-reject", "--no-write", "-p", "reach-psmash",
                       "-p", "no-deadlock")
    assert code == 0
    assert "  columns: P1 mainline-6.13, P2 always-huge-reject" in out
    assert "  reach-psmash unrch reach" in out
    assert "mainline-6.13: actions that never fired: alloc_pages" in out


def test_list_gives_every_property_a_kind(capsys):
    code, out, _ = run(capsys, "list")
    line = next(ln for ln in out.splitlines() if "reach-eagain-refcount" in ln)
    assert code == 0 and " reachable " in line and "kvm_gmem_has_safe_refcount" in line


def test_kinduction_uses_representative_pages_from_512_pages():
    from gmemcheck.runner import SymOpts, windowed_kinduction

    assert [windowed_kinduction(SymOpts(), n) for n in (2, 256, 512, 262144)] == \
        [False, False, True, True]
    assert not windowed_kinduction(SymOpts(window=False), 512)
    assert not windowed_kinduction(SymOpts(k=2), 512)
    assert windowed_kinduction(SymOpts(window=True), 64)
