"""Non-uniform (6.15+) truncate splits at pages_per_huge = 4, where they differ from a
uniform split: mm/huge_memory.c:__split_unmapped_folio splits a folio in buddy halves
around ``split_at`` and leaves folios of intermediate order (here order 1, between 0
and the huge order 2). At pages_per_huge = 2 the two splits are indistinguishable.

Each test is a short fixed sequence of kernel calls on ``rfc-thp`` with
``truncate = "nonuniform"`` (Roth's RFC folios on a 6.15+ truncate), with the exact
folio orders after each punch.
"""

from __future__ import annotations

from helpers import Driver, model

from gmemcheck.model.mm import buddy_pieces
from gmemcheck.model.state import DATA, RMP_4K, RMP_SHARED, STALE


def _four(*sets: str) -> Driver:
    d = Driver(model("rfc-thp", "truncate=nonuniform", "pages_per_huge=4", *sets))
    d("kvm_gmem_populate", 0)                       # one order-2 folio [0..3]
    d("kvm_gmem_populate", 3)
    assert d.s.order == (2, 2, 2, 2)
    return d


def punch(d: Driver, offset: int, length: int, second_split_fails: bool = False) -> None:
    d("kvm_gmem_punch_hole", offset, length)
    d("truncate_inode_pages_range", False, second_split_fails)
    d("kvm_gmem_mark_range_unprepared")
    d("kvm_gmem_invalidate_end")


def test_buddy_pieces_leave_intermediate_orders():
    assert buddy_pieces(0, 2, 0) == [(0, 0), (1, 0), (2, 1)]
    assert buddy_pieces(0, 2, 3) == [(0, 1), (2, 0), (3, 0)]
    assert buddy_pieces(0, 3, 5) == [(0, 2), (4, 0), (5, 0), (6, 1)]


def test_punch_of_the_last_page_leaves_an_order1_folio():
    d = _four()
    punch(d, 3, 1)                                  # split at 3: [0..1] [2] [3]
    assert d.s.order == (1, 1, 0, -1)
    assert d.s.rmp[3] == RMP_SHARED and d.s.content[3] == STALE
    assert d.s.content[0] == DATA and d.s.rmp[0] == RMP_4K
    assert d.broken() == set()


def test_second_split_splits_the_folio_after_the_hole():
    d = _four()
    punch(d, 1, 1)                                  # [0] [1] [2..3], then split at 2
    assert d.s.order == (0, -1, 0, 0)
    assert d.broken() == set()


def test_failed_second_split_keeps_an_order1_folio_that_pass3_removes_at_lend():
    """The pass-3 straddle: the second split at ``split_at2`` fails, and
    find_get_entries returns the order-1 folio [2..3] that straddles lend; it is
    removed whole, with page 3's data (docs/kernel-notes.md, truncate)."""
    d = _four("split_may_fail=true")
    d("kvm_gmem_punch_hole", 1, 2)                  # the hole is [1, 3)
    out = d("truncate_inode_pages_range", False, True)
    assert out is not None
    assert "split folio at index 0 into [0], [1], [2..3]" in out.events
    assert "pass 3 removes folio [2..3], which straddles the hole" in out.events
    assert d.s.order == (0, -1, -1, -1)
    assert d.s.content[3] == STALE                  # page 3 was outside the hole
    assert "no-data-loss-outside-punch" in d.broken()


def test_failed_second_split_outside_the_hole_keeps_the_intermediate_folio():
    d = _four("split_may_fail=true")
    punch(d, 1, 1, second_split_fails=True)         # split_at2 = 2 fails: [2..3] stays
    assert d.s.order == (0, -1, 1, 1)
    assert d.broken() == set()


def test_bounded_exploration_at_four_pages_reaches_exactly_orders_0_1_2():
    """Breadth-first from the initial state (first 5,000 distinct states, a bounded
    check): at 4 pages per huge folio the 6.15+ truncate leaves folios of order 1,
    and no order other than -1 (no folio), 0, 1 and 2 ever appears."""
    from gmemcheck.checker.explicit import Caps, explore

    m = model("rfc-thp", "truncate=nonuniform", "pages_per_huge=4")
    ex = explore(m, [], Caps(max_states=5000))
    assert not ex.complete and len(ex.states) == 5000
    orders = {o for s in ex.states for o in s.order}
    assert orders == {-1, 0, 1, 2}
    first = next(i for i, s in enumerate(ex.states) if 1 in s.order)
    assert ex.depth[first] == 3          # populate, punch, truncate


# ------------------------------------------------ the intermediate order, BFS and Z3
def _rfc4(*sets: str):
    return model("rfc-thp", "truncate=nonuniform", "pages_per_huge=4", *sets)


def test_bfs_shortest_path_to_an_intermediate_order():
    """The size witness reach-intermediate-order (pages_per_huge >= 4 only): the
    shortest path allocates the huge folio, punches its first page and truncates; the
    buddy split at page 0 leaves [0] [1] [2..3] and page 0 is removed."""
    from gmemcheck import properties
    from gmemcheck.checker.core import Result
    from gmemcheck.checker.run import check

    assert "reach-intermediate-order" not in properties.applicable(
        model("rfc-thp", "truncate=nonuniform"))                 # 2 pages: no such order
    assert "reach-intermediate-order" not in properties.applicable(
        model("rfc-thp", "pages_per_huge=4"))                    # uniform truncate
    m = _rfc4()
    v = check(m, properties.select(m, ["reach-intermediate-order"])).verdicts[0]
    assert v.result is Result.HOLDS and v.bound == "witness: 3 steps"
    assert [(s.action, s.args) for s in v.trace.steps] == [
        ("kvm_gmem_allocate", (0, 4)), ("kvm_gmem_punch_hole", (0, 1)),
        ("truncate_inode_pages_range", (False, False))]
    assert v.trace.steps[-1].state.order == (-1, 0, 1, 1)


def test_bmc_finds_a_three_step_intermediate_order_witness_and_none_in_two():
    """BMC over the intermediate-order encoding: nothing within 2 steps, a 3-step
    witness (bmc replays it through the explicit model before returning it; replayed
    here once more), and the BFS witness is a path of the Z3 transition relation."""
    from gmemcheck import properties
    from gmemcheck.checker.core import Result
    from gmemcheck.checker.replay import replay
    from gmemcheck.checker.run import check
    from gmemcheck.symbolic.bmc import bmc
    from gmemcheck.symbolic.model import SymModel

    m = _rfc4()
    p = properties.select(m, ["reach-intermediate-order"])
    two = bmc(m, p, 2)[0]
    assert two.result is Result.INCONCLUSIVE and two.bound == "depth<=2" and two.trace is None
    three = bmc(m, p, 3)[0]
    assert three.result is Result.HOLDS and three.bound == "witness: 3 steps"
    assert len(three.trace) == 3 and three.trace.origin == "init"
    replay(m, three.trace)
    assert any(0 < o < 2 for o in three.trace.steps[-1].state.order)
    sm = SymModel(m)
    bfs = check(m, p).verdicts[0].trace
    s = bfs.init
    for stp in bfs.steps:
        assert (stp.action, stp.args, stp.state) in sm.successors(s)
        s = stp.state


def _agree_on_intermediate_states(m, count: int = 15) -> None:
    from gmemcheck.checker.explicit import Caps, explore, successors
    from gmemcheck.symbolic.model import SymModel

    sm = SymModel(m, bv=True)
    states = explore(m, [], Caps(max_states=1500)).states
    mids = [s for s in states if any(0 < o < m.k.HUGE for o in s.order)]
    assert len(mids) >= count
    for s in mids[::len(mids) // count][:count]:
        exp = set() if m.terminal(s) else set(successors(m, s))
        assert sm.successors(s) == exp, s


def test_z3_successors_agree_at_four_pages_rfc_thp_nonuniform():
    _agree_on_intermediate_states(_rfc4("split_may_fail=true"))


def test_z3_successors_agree_at_four_pages_thp_folio_private():
    """folio->private is kept by the piece holding the head page only."""
    _agree_on_intermediate_states(model("thp-folio-private", "truncate=nonuniform",
                                        "pages_per_huge=4"))


def test_z3_successors_agree_at_four_pages_always_huge_with_truncate():
    _agree_on_intermediate_states(model("always-huge-reject", "partial_punch=truncate",
                                        "truncate=nonuniform", "pages_per_huge=4"))


def test_intermediate_orders_have_no_window_or_in_place_encoding():
    import pytest

    from gmemcheck.symbolic.model import NoEncoding, SymModel

    with pytest.raises(NoEncoding, match="window"):
        SymModel(_rfc4(), window=2)
    with pytest.raises(NoEncoding, match="in-place"):
        SymModel(_rfc4("conversion=in-place"))
