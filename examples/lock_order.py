"""Example plug-in (c): a new lock and a new thread whose lock order can deadlock
against a hole punch.

The shape is the classic ABBA inversion, written the way a series would add it: a new
per-file mutex ``conv_lock`` and a kernel worker thread (``gmem_worker``, for example a
workqueue item that restructures folios after a conversion) that takes ``conv_lock`` and
then ``filemap_invalidate_lock_shared`` (include/linux/fs.h), while the punch path
(guest_memfd.c:kvm_gmem_punch_hole) already holds ``filemap_invalidate_lock`` exclusive
when its truncation takes ``conv_lock``. Illustrative: the lock and the worker are not
taken from a posted series; the pattern is what ``no-deadlock`` is for.

The axis ``conv_lock_order`` selects:

* ``none``: no worker, no lock taken (the design of the preset the example starts from);
* ``abba``: the worker takes conv_lock, then invalidate_lock: a punch that has begun
  (invalidate_lock held exclusive) waits for conv_lock in truncate, the worker waits for
  invalidate_lock: ``no-deadlock`` is violated;
* ``fixed``: the worker takes invalidate_lock (shared) first, then conv_lock, the same
  order as the punch: ``no-deadlock`` holds.

What the plug-in uses: ``add_thread`` (the worker's program counter), ``add_lock``,
``add_action`` for the worker's steps, ``add_action(..., wraps=True)`` with
``extend_action`` to add a guard to the built-in punch, truncate and populate, and
``add_property`` for a reachability witness.

Each part also has its Z3 form (``make(..., symbolic=(sym_guard, sym_body))``,
``extend_action(..., sym_guard=..., sym_before=SYM_NOTHING)``, ``Property(...,
symbolic=...)``), so the design gets bmc, k-induction and the proofs at 512 and 262,144
pages; the package checks each form against its Python body before any symbolic verdict.
"""

from gmemcheck.api import (
    SYM_NOTHING,
    Kind,
    Property,
    add_action,
    add_axis,
    add_lock,
    add_property,
    add_thread,
    extend_action,
    lock_free,
    make,
    sym_eq,
    sym_in,
    sym_invalidate_lock_exclusive,
    sym_lock_free,
    z3,
)

IDLE = "idle"
WAITS_INV = "holds conv_lock, waits for invalidate_lock"
WAITS_CONV = "holds invalidate_lock (shared), waits for conv_lock"
HOLDS_BOTH = "holds conv_lock and invalidate_lock (shared)"

add_axis("conv_lock_order", "example plug-in (c): the lock order of a worker that takes "
         "conv_lock and invalidate_lock", {
             "none": ("no worker thread, conv_lock never taken", {}, {}),
             "abba": ("worker: conv_lock then invalidate_lock (inverted)", {}, {}),
             "fixed": ("worker: invalidate_lock then conv_lock (the punch's order)", {}, {}),
         })
add_thread("gmem_worker", "a kernel worker restructuring folios under conv_lock",
           pcs=(IDLE, WAITS_INV, WAITS_CONV, HOLDS_BOTH), pc="worker")
add_lock("conv_lock", "a per-file mutex the series adds (illustrative)")


def order(k):
    return k.axes["conv_lock_order"]


def holds_invalidate_shared(s):
    return s.worker in (WAITS_CONV, HOLDS_BOTH)


def sym_holds_invalidate_shared(s):
    return sym_in(s, "worker", (WAITS_CONV, HOLDS_BOTH))


# ---------------------------------------------------------------- the worker's steps
def _first(k):
    if order(k) == "none":
        return None
    abba = order(k) == "abba"

    def guard(s, a):
        if s.worker != IDLE:
            return False
        return lock_free(s, "conv_lock") if abba else not k.invalidate_lock_exclusive(s)

    def body(k, w):
        if abba:
            w.acquire("conv_lock", "gmem_worker")
            w.put("worker", WAITS_INV)
        else:
            w.event("filemap_invalidate_lock_shared")
            w.put("worker", WAITS_CONV)

    def sym_guard(k, s):
        first = sym_lock_free(s, "conv_lock") if abba else \
            z3.Not(sym_invalidate_lock_exclusive(s))
        return z3.And(sym_eq(s, "worker", IDLE), first)

    def sym_body(k, w):
        if abba:
            w.acquire("conv_lock", "gmem_worker")
        w.put("worker", WAITS_INV if abba else WAITS_CONV)

    return make(k, "gmem_worker_lock_first", (), [()], guard, body,
                frozenset({"worker", "lock_conv_lock"}),
                "the worker takes its first lock: conv_lock (abba) or invalidate_lock "
                "shared (fixed)", symbolic=(sym_guard, sym_body))


def _second(k):
    if order(k) == "none":
        return None
    abba = order(k) == "abba"

    def guard(s, a):
        if abba:
            return s.worker == WAITS_INV and not k.invalidate_lock_exclusive(s)
        return s.worker == WAITS_CONV and lock_free(s, "conv_lock")

    def body(k, w):
        if abba:
            w.event("filemap_invalidate_lock_shared")
        else:
            w.acquire("conv_lock", "gmem_worker")
        w.put("worker", HOLDS_BOTH)

    def sym_guard(k, s):
        if abba:
            return z3.And(sym_eq(s, "worker", WAITS_INV),
                          z3.Not(sym_invalidate_lock_exclusive(s)))
        return z3.And(sym_eq(s, "worker", WAITS_CONV), sym_lock_free(s, "conv_lock"))

    def sym_body(k, w):
        if not abba:
            w.acquire("conv_lock", "gmem_worker")
        w.put("worker", HOLDS_BOTH)

    return make(k, "gmem_worker_lock_second", (), [()], guard, body,
                frozenset({"worker", "lock_conv_lock"}),
                "the worker takes its second lock", symbolic=(sym_guard, sym_body))


def _unlock(k):
    if order(k) == "none":
        return None

    def body(k, w):
        w.release("conv_lock", "gmem_worker")
        w.event("filemap_invalidate_unlock_shared")
        w.put("worker", IDLE)

    def sym_body(k, w):
        w.release("conv_lock", "gmem_worker")
        w.put("worker", IDLE)

    return make(k, "gmem_worker_unlock", (), [()], lambda s, a: s.worker == HOLDS_BOTH,
                body, frozenset({"worker", "lock_conv_lock"}),
                "the worker has done its work and drops both locks",
                symbolic=(lambda k, s: sym_eq(s, "worker", HOLDS_BOTH), sym_body))


add_action("gmem_worker_lock_first", _first, thread="gmem_worker")
add_action("gmem_worker_lock_second", _second, thread="gmem_worker")
add_action("gmem_worker_unlock", _unlock, thread="gmem_worker")


# ---------------------------------------------------------------- the VMM's side
def _exclusive_waits_for_worker(k, prev):
    """Punch and populate take invalidate_lock exclusive: not while the worker holds it
    shared."""
    if prev is None or order(k) == "none":
        return prev
    return extend_action(k, prev, guard=lambda s, a: not holds_invalidate_shared(s),
                         sym_guard=lambda k, s, *a: z3.Not(sym_holds_invalidate_shared(s)))


def _truncate_takes_conv_lock(k, prev):
    """The series' truncation runs under conv_lock, taken with invalidate_lock held."""
    if prev is None or order(k) == "none":
        return prev
    return extend_action(
        k, prev, guard=lambda s, a: lock_free(s, "conv_lock"),
        before=lambda k, w, *a: w.event("mutex_lock(conv_lock)"),
        after=lambda k, w, *a: w.event("mutex_unlock(conv_lock)"),
        sym_guard=lambda k, s, *a: sym_lock_free(s, "conv_lock"),
        sym_before=SYM_NOTHING, sym_after=SYM_NOTHING)


add_action("kvm_gmem_punch_hole", _exclusive_waits_for_worker, wraps=True)
add_action("kvm_gmem_populate", _exclusive_waits_for_worker, wraps=True)
add_action("truncate_inode_pages_range", _truncate_takes_conv_lock, wraps=True)


def _witness(m):
    if m.k.axes["conv_lock_order"] == "none":
        return None
    return Property("reach-worker-holds-both", Kind.REACHABLE,
                    "The worker gets both locks (the example is not vacuous).",
                    predicate=lambda s: s.worker == HOLDS_BOTH,
                    symbolic=lambda k, s: sym_eq(s, "worker", HOLDS_BOTH),
                    source="examples/lock_order.py")


add_property("reach-worker-holds-both", _witness)
