"""The explicit search with its loop in C (``gmemcheck/checker/_core.c``, issue 14).

The C loop stores every state whole, as one 32-bit code per field (the tables from
codes to values live here), interns states in an open-addressing table, and keeps the
parent, label and depth of each state in flat arrays. It asks Python nothing it has
been told before: each label's guard and body, each state predicate, each step
predicate and the model's ``terminal`` run here once, on a proxy recording the fields
they read (:class:`gmemcheck.model.work._Reads`), and the C side keeps the answer
under the values of those fields (a read-set memo, as :func:`gmemcheck.model.work.memoized`
does for the steps). Anything the proxy cannot follow is asked again of Python on
every state, with the plain state. The search order (breadth first, labels in
label-table order, predicates in the order given) is the Python loop's, so state ids,
parents, shortest traces, hits and graph columns are the same; tests/test_accel.py
compares the two on every preset.

Used by :func:`gmemcheck.checker.explicit.explore` for a built-in design (no plug-in
action, wrapper, choice or field: ``GmemModel.accel_ok``) in exact mode with one
worker, when the extension was built (``pip install`` compiles it; without a C
compiler the install still succeeds and the search stays in Python). ``ENABLED =
False`` here, or ``GMEMCHECK_ACCEL=0`` in the environment, keeps it in Python.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from ..model.work import Work, recorded
from .core import Property

try:
    from . import _core
except ImportError:  # built without a C compiler: the Python loop does the work
    _core = None

ENABLED = os.environ.get("GMEMCHECK_ACCEL", "1") != "0"
# Memo entries the C side may keep (labels, predicates and step predicates together):
# beyond this, answers are asked of Python again. An entry costs 8 to 100 bytes.
MEMO_CAP = 20_000_000
# Codes are stored in two bytes until one reaches this (then every state takes four):
# 65536; a test lowers it to run the widening on a small model.
WIDE_AT = 65_536


def available() -> bool:
    """True when the C loop is built and switched on."""
    return ENABLED and _core is not None


def usable(model: Any, hash_compaction: bool, workers: int, pack: bool,
           props: Sequence[Property] = ()) -> bool:
    """The C loop serves a built-in design (no plug-in action, wrapper, choice or
    field), in exact mode with one worker. A property with both a state and a step
    predicate stays in Python: the Python loop resolves the two under one name in an
    order of its own."""
    return (available() and workers == 1 and not hash_compaction and pack
            and bool(getattr(model, "accel_ok", False))
            and not any(p.predicate is not None and p.step is not None for p in props))


def _trusted(p: Property) -> bool:
    """A property of the built-in registry: its predicates read the state only, so
    their answers may be kept under the fields they read. Any other predicate (a
    plug-in's, or one passed in by a caller) may read what the proxy cannot see, and is
    asked of Python on every state."""
    from .. import properties

    return p.name in properties.REGISTRY and p.name not in properties.ORIGIN


class CodeStates(Sequence[Any]):
    """The stored states of a C search: ``F`` codes a state in one buffer (two bytes a
    code, or four once a field has more than 65,536 values), decoded on access with the
    field tables."""

    def __init__(self, buf: Any, nfields: int, values: list[list[Any]], make: Any,
                 wide: bool) -> None:
        self._buf = buf  # keeps the memory alive
        self._codes = memoryview(buf).cast("I" if wide else "H")
        self._f, self._values, self._make = nfields, values, make

    def __len__(self) -> int:
        return len(self._codes) // self._f

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("state id out of range")
        f = self._f
        return self._make(map(list.__getitem__, self._values, self._codes[i * f:(i + 1) * f]))

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))


def _column(buf: Any, fmt: str = "i") -> Sequence[int]:
    """A column the C loop filled (parents, labels, depths, the graph), read in place:
    a read-only memoryview, indexed like the Python loop's ``array('i')``."""
    return memoryview(buf).cast(fmt)


def explore(model: Any, props: list[Property], caps: Any, keep_graph: bool,
            progress: Callable[[dict[str, Any]], None] | None, progress_every: float,
            stop_when_resolved: bool) -> Any:
    """:func:`gmemcheck.checker.explicit.explore` for a model :func:`usable` accepts."""
    from .explicit import MARK, Exploration, Hit, ModelError, checks_of, label_table

    assert _core is not None
    cls = model.state_type
    fields = cls._fields
    nf = len(fields)
    pos = {f: i for i, f in enumerate(fields)}
    fset = frozenset(fields)
    make = cls._make
    codes: list[dict[Any, int]] = [{} for _ in range(nf)]
    values: list[list[Any]] = [[] for _ in range(nf)]

    def enc(i: int, v: Any) -> int:
        c = codes[i].get(v)
        if c is None:
            c = codes[i][v] = len(values[i])
            values[i].append(v)
        return c

    def encode(s: Any) -> bytes:
        if type(s) is not cls:
            raise ModelError(f"state {s!r} is not a {cls.__name__}: the states of one "
                             "model are instances of one NamedTuple class")
        return array("I", [enc(i, v) for i, v in enumerate(s)]).tobytes()

    def decode(b: bytes) -> Any:
        return make(map(list.__getitem__, values, memoryview(b).cast("I")))

    labels = label_table(model)
    actions = model.actions
    names = [a.name for a in actions]
    lab = []
    for ai, args in labels:
        a = actions[ai]
        body = getattr(a.apply, "body", None)
        lab.append((a.guard, a.apply, args, body, getattr(a.apply, "kernel", None)))

    keep_graph = keep_graph or any(p.needs_graph for p in props)
    # the predicates in the order of every loop (explicit.py:checks_of)
    checks = checks_of(props)
    preds = checks.state
    trusted = [_trusted(p) for p, _, _, _ in preds]
    edges = [(p.name, pred, want, _trusted(p)) for p, pred, want in checks.edges]
    want_deadlock = checks.deadlock
    open_count = sum(1 for _, k, _, _ in preds if k != MARK) + len(edges) + len(want_deadlock)
    terminal = model.terminal
    nl = len(labels)
    step_label = [(names[ai], args) for ai, args in labels]

    def probe(fn: Callable[..., Any], *states: Any) -> tuple[Any, Any]:
        """``fn(*states)`` on recording proxies, and the positions read (those of the
        second state after the first's); (None, fn(*states)) where a proxy could not
        follow."""
        got = recorded(fn, fset, *states)
        if got is None:
            return None, fn(*states)
        reads, r = got
        return tuple(j * nf + pos[f] for j, read in enumerate(reads) for f in read), r

    def miss(kind: int, idx: int, sb: bytes, tb: bytes | None) -> tuple[Any, Any]:
        s = decode(sb)
        if kind == 1:
            if idx < 0:
                reads, r = probe(terminal, s)
            elif trusted[idx]:
                reads, r = probe(preds[idx][2], s)
            else:
                return None, bool(preds[idx][2](s))
            return reads, bool(r)
        if kind == 2:
            e, lid = divmod(idx, nl)
            _, pred, want, trust = edges[e]
            t = decode(tb)  # type: ignore[arg-type]
            lbl = step_label[lid]

            def step(a: Any, b: Any) -> bool:
                return pred(a, lbl, b) == want

            if not trust:
                return None, step(s, t)
            reads, r = probe(step, s, t)
            return reads, bool(r)
        guard, apply, args, body, k = lab[idx]
        if body is not None:
            def run(proxy: Any) -> Work | None:
                if not guard(proxy, args):
                    return None
                w = Work(proxy)
                body(k, w, *args)
                return w

            got = recorded(run, fset, s)
            if got is not None:
                ((read,), w) = got
                return tuple(pos[f] for f in read), None if w is None else tuple(
                    x for i, v in w.writes(pos) for x in (i, enc(i, v)))
        if not guard(s, args):
            return None, None
        t = apply(s, args)
        if type(t) is not cls:
            encode(t)  # refuses a state of another class
        return None, tuple(x for i, (a, b) in enumerate(zip(s, t, strict=True))
                           if a is not b for x in (i, enc(i, b)))

    t0 = time.perf_counter()
    last = [t0]
    deadline = t0 + caps.max_seconds if caps.max_seconds else None

    def tick(head: int, n: int, d: int) -> bool:
        now = time.perf_counter()
        if deadline is not None and now > deadline:
            return True
        if progress is not None and now - last[0] >= progress_every:
            last[0] = now
            progress({"states": n, "queue": n - head, "rate": head / max(now - t0, 1e-9),
                      "depth": d, "seconds": now - t0})
        return False

    inits = list(model.init_states())
    if not inits:
        raise ModelError(f"model {model.name} has no initial state")
    r = _core.search(
        nf, nl, bytes(1 if actions[ai].environment else 0 for ai, _ in labels),
        [encode(s) for s in inits], bytes(k for _, k, _, _ in preds),
        tuple(unless for _, _, _, unless in preds),
        bytes(1 if want else 0 for _, _, want, _ in edges), miss, tick,
        -1 if caps.max_states is None else caps.max_states,
        -1 if caps.max_depth is None else caps.max_depth,
        stop_when_resolved and bool(props) and not keep_graph, keep_graph,
        len(want_deadlock), MEMO_CAP, open_count, WIDE_AT)
    seconds = time.perf_counter() - t0
    cap = {0: None, 1: f"states<={caps.max_states}", 2: f"depth<={caps.max_depth}",
           3: f"time<={caps.max_seconds:g}s" if caps.max_seconds else None}[r["cap"]]
    hits: dict[str, Hit] = {}
    found = sorted(r["hits"])
    dl_sid, dl_seq = r["deadlock"]
    if dl_sid >= 0:
        found.append((dl_seq, -1, dl_sid, -1, -1))
        found.sort()
    for _seq, p, sid, src, lid in found:
        if p < 0:
            for name in want_deadlock:
                hits[name] = Hit(sid)
        elif p < len(preds):
            hits[preds[p][0].name] = Hit(sid)
        else:
            hits[edges[p - len(preds)][0]] = Hit(sid, (src, lid))
    n, head = r["n"], r["head"]
    csr = None
    if keep_graph:
        csr = (_column(r["off"]), _column(r["edst"]), _column(r["elab"], r["elab_format"]))
    marks = {key: r["cols"][q] for key, q in checks.marks}
    fired = r["fired"]
    return Exploration(
        model=model, labels=labels,
        states=CodeStates(r["codes"], nf, values, make, bool(r["wide"])),
        parent=_column(r["parent"]), via=_column(r["via"]), depth=_column(r["depth"]),
        expanded=head, complete=cap is None and not r["stopped"] and head == n, cap=cap,
        hits=hits, fired=fired, seconds=seconds, transitions=sum(fired), csr=csr,
        initial=list(r["initial"]), terminal=set(memoryview(r["terminal"]).cast("i")),
        marks=marks, compaction=None, workers=1, loop="c", memo_entries=r["memo_entries"])


def describe() -> str:
    """One line on the search loop in use, for --version style output."""
    if _core is None:
        return "Python (the C loop is not built)"
    return "C (gmemcheck/checker/_core.c)" if ENABLED else "Python (GMEMCHECK_ACCEL=0)"

