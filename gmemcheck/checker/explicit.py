"""Explicit-state breadth-first exploration.

States are interned in a dict (state -> id); ids are handed out in BFS order, so the
list of states doubles as the queue, and a parent pointer plus the label of the step
that discovered each state give a shortest path to it (compact ``array('i')`` columns,
12 bytes a state). A NamedTuple state is stored packed (:class:`Packer`: one small code
per field value, the bytes of the codes as the dict key), exactly: equal states and
only they have equal codes. Other states are stored as they are, with equal field
values shared. Safety and reachable properties are checked on the fly, the first
violation found for a property is a shortest one; the predicates of liveness and
recoverable properties are evaluated once per new state into byte columns
(``marks``). The transition relation is kept only when asked, as a CSR graph
(per-state offsets, destination and label arrays: ids are expanded in order).

Two options trade exactness or a process for memory or wall time, never silently:

* ``hash_compaction``: the seen set holds 64-bit fingerprints (as TLC does) instead of
  states, and only the BFS frontier keeps states. Two states with the same fingerprint
  would be taken for one, so every verdict names the mode and the probability of a
  missed state, and no "holds" is stronger than bounded (see
  :func:`.run.verdicts_from_exploration`). Trace states are recomputed by re-applying
  the recorded labels from the initial state.
* ``workers``: successors and every predicate are computed by forked worker processes
  on consecutive chunks of the queue while this process interns them in queue order,
  so ids, parents, counts and counterexamples are exactly those of one worker. States
  cross the process boundary pickled, both ways: that is the price of the option.
"""

from __future__ import annotations

import marshal
import pickle
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import accel
from .core import Action, Args, Kind, ModelError, Outcome, Property, State, Step, Trace

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Caps:
    """Limits on an exploration; hitting one makes every open verdict bounded."""

    max_states: int | None = None
    max_depth: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_states", "max_depth", "max_seconds"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be positive, got {v}")


@dataclass
class Hit:
    """Where a property was resolved during the search."""

    state: int                       # id of the violating / witnessing state
    via: tuple[int, int] | None = None  # (source id, label id) for a step violation


@dataclass
class Compaction:
    """What a hash-compacted search can promise: TLC's optimistic estimate of the
    probability that two distinct states shared a fingerprint (so one was missed),
    ``distinct * (generated - distinct) / 2**bits``."""

    bits: int
    distinct: int
    generated: int

    @property
    def probability(self) -> float:
        return self.distinct * max(self.generated - self.distinct, 0) / 2.0 ** self.bits

    def describe(self) -> str:
        return (f"hash compaction ({self.bits}-bit fingerprints): probability of a missed "
                f"state {self.probability:.1e} (TLC's optimistic estimate)")


@dataclass
class Exploration:
    """Everything an exploration learned; engines above it turn this into verdicts."""

    model: Any
    labels: list[tuple[int, Args]]
    states: Sequence[State]
    parent: array
    via: array
    depth: array
    expanded: int
    complete: bool
    cap: str | None
    hits: dict[str, Hit]
    fired: list[int]
    seconds: float
    transitions: int
    csr: tuple[array, array, array] | None = None
    initial: list[int] = field(default_factory=list)
    terminal: set[int] = field(default_factory=set)
    marks: dict[tuple[str, str], bytearray] = field(default_factory=dict)
    compaction: Compaction | None = None
    workers: int = 1
    loop: str = "python"             # the search loop: "python" or "c" (accel.py)
    memo_entries: int = 0            # the C loop's memo entries at the end

    # ----------------------------------------------------------------- traces
    def label_of(self, lid: int) -> tuple[Action, Args]:
        ai, args = self.labels[lid]
        return self.model.actions[ai], args

    def path(self, sid: int) -> list[int]:
        """State ids from an initial state to ``sid`` along parent pointers."""
        out = []
        while sid != -1:
            out.append(sid)
            sid = self.parent[sid]
        out.reverse()
        return out

    def make_step(self, src: int, lid: int, dst: int) -> Step:
        action, args = self.label_of(lid)
        pre = self.states[src]
        outcome = action.explain(pre, args) if action.explain else None
        return Step(action.name, args, self.states[dst], outcome)

    def trace_to(self, sid: int, extra: Sequence[tuple[int, int, int]] = ()) -> Trace:
        """Shortest trace to ``sid`` followed by explicit (src, label, dst) steps."""
        ids = self.path(sid)
        steps = [self.make_step(a, self.via[b], b) for a, b in zip(ids, ids[1:], strict=False)]
        steps += [self.make_step(s, lid, d) for s, lid, d in extra]
        return Trace(self.states[ids[0]], tuple(steps))

    # ----------------------------------------------------------------- coverage
    def coverage(self) -> dict[str, int]:
        """How often each action fired (successors generated), in model order."""
        counts = {a.name: 0 for a in self.model.actions}
        for lid, n in enumerate(self.fired):
            counts[self.model.actions[self.labels[lid][0]].name] += n
        return counts

    # ----------------------------------------------------------------- marks
    def mark(self, prop: str, role: str, pred: Callable[[State], bool]) -> bytearray:
        """``pred`` on every state id, as a byte column: the one computed during the
        search for property ``prop`` if there is one, else computed now."""
        col = self.marks.get((prop, role))
        if col is None or len(col) != len(self.states):
            col = bytearray(map(bool, map(pred, self.states)))
        return col

    # ----------------------------------------------------------------- graph
    @property
    def edges(self) -> tuple[array, array, array] | None:
        """The transition relation as three parallel arrays (source, destination,
        label id), or None when the graph was not kept."""
        if self.csr is None:
            return None
        off, dst, lab = self.csr
        src = array("i")
        for u in range(len(off) - 1):
            src.extend([u] * (off[u + 1] - off[u]))
        return src, dst, lab

    def graph(self) -> Any:
        """The explored graph as a networkx DiGraph: int node ids, each edge carrying
        ``labels`` (every ``(action, args)`` between the two states) and ``label``
        (the first of them)."""
        import networkx as nx

        if self.csr is None:
            raise ModelError("the exploration was run without keeping the graph")
        g = nx.DiGraph()
        init = set(self.initial)
        for sid in range(len(self.states)):
            g.add_node(sid, init=sid in init, expanded=sid < self.expanded)
        off, dst, lab = self.csr
        names = [a.name for a in self.model.actions]
        for s in range(len(off) - 1):
            for e in range(off[s], off[s + 1]):
                d = dst[e]
                ai, args = self.labels[lab[e]]
                lbl = (names[ai], args)
                if g.has_edge(s, d):
                    g.edges[s, d]["labels"].append(lbl)
                else:
                    g.add_edge(s, d, label=lbl, labels=[lbl])
        return g

    def successors(self) -> list[list[tuple[int, int]]]:
        """Adjacency lists ``sid -> [(dst, label id)]`` of the recorded edges."""
        if self.csr is None:
            raise ModelError("the exploration was run without keeping the graph")
        off, dst, lab = self.csr
        return [list(zip(dst[off[u]:off[u + 1]], lab[off[u]:off[u + 1]], strict=True))
                for u in range(len(off) - 1)]


class Replayed(Sequence[State]):
    """The states of a hash-compacted search, which keeps none: state ``i`` is
    recomputed by applying the recorded labels along its parent chain from its
    initial state (each apply is deterministic, so this is the state the search saw,
    up to a fingerprint collision, which trace replay then reports as an engine bug)."""

    def __init__(self, model: Any, labels: list[tuple[int, Args]], inits: list[State],
                 parent: array, via: array) -> None:
        self._model, self._labels, self._parent, self._via = model, labels, parent, via
        self._cache: dict[int, State] = dict(enumerate(inits))

    def __len__(self) -> int:
        return len(self._parent)

    def __getitem__(self, sid: Any) -> Any:
        if isinstance(sid, slice):
            return [self[i] for i in range(*sid.indices(len(self)))]
        if sid < 0:
            sid += len(self)
        if not 0 <= sid < len(self):
            raise IndexError(sid)
        chain = []
        while sid not in self._cache:
            chain.append(sid)
            sid = self._parent[sid]
        s = self._cache[sid]
        actions = self._model.actions
        for i in reversed(chain):
            ai, args = self._labels[self._via[i]]
            s = actions[ai].apply(s, args)
            if len(self._cache) < 100_000:
                self._cache[i] = s
        return s


class Packer:
    """Exact state packing: every field value gets a small code (one table per field,
    in order of first appearance) and a state is stored as the bytes of its codes,
    one byte a field while every field has at most 256 distinct values, then two, then
    four (:meth:`widen` rewrites what is stored). A stored rfc-thp state is a 52-byte
    ``bytes`` (whose hash CPython caches) instead of a 192-byte tuple, and equal field
    values are one object. Equal values share a code, exactly as equal states share a
    dict slot; a state unpacks to its class with each field's first-seen instance."""

    WIDTHS = ("B", "H", "I")

    def __init__(self, cls: type, nfields: int,
                 on_widen: Callable[[Callable[[bytes], bytes]], None]) -> None:
        self.cls, self.make = cls, cls._make  # type: ignore[attr-defined]
        self.codes: list[dict[Any, int]] = [{} for _ in range(nfields)]
        self.values: list[list[Any]] = [[] for _ in range(nfields)]
        self.width = 0
        self.on_widen = on_widen

    def pack(self, t: State) -> bytes:
        if type(t) is not self.cls:
            raise ModelError(f"state {t!r} is not a {self.cls.__name__}: the states of one "
                             "model are instances of one NamedTuple class")
        try:
            codes = map(dict.__getitem__, self.codes, t)
            if self.width == 0:
                return bytes(codes)
            return array(self.WIDTHS[self.width], codes).tobytes()
        except KeyError:
            return self._pack_new(t)

    def _pack_new(self, t: State) -> bytes:
        for codes, values, v in zip(self.codes, self.values, t, strict=True):
            if v not in codes:
                codes[v] = len(values)
                values.append(v)
                while len(values) > (256, 65536, 2 ** 32)[self.width]:
                    self.widen()
        return self.pack(t)

    def widen(self) -> None:
        old = self.WIDTHS[self.width]
        self.width += 1
        new = self.WIDTHS[self.width]
        self.on_widen(lambda b: array(new, array(old, b)).tobytes())

    def unpack(self, b: bytes) -> State:
        if self.width == 0:
            return self.make(map(list.__getitem__, self.values, b))
        return self.make(map(list.__getitem__, self.values, array(self.WIDTHS[self.width], b)))


class PackedStates(Sequence[State]):
    """The stored states of an exact search, unpacked on access."""

    def __init__(self, packed: list[bytes], packer: Packer) -> None:
        self._packed, self._packer = packed, packer

    def __len__(self) -> int:
        return len(self._packed)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._packer.unpack(b) for b in self._packed[i]]
        return self._packer.unpack(self._packed[i])

    def __iter__(self) -> Any:
        return map(self._packer.unpack, self._packed)


def fingerprint(s: State) -> int:
    """A 64-bit fingerprint of a state: SipHash of its marshalled fields (marshal
    format 2 has no back-references, so equal states give equal bytes). ``hash(s)``
    itself will not do: CPython hashes -1 and -2 alike, so ``(-1,)`` and ``(-2,)``
    always collide."""
    try:
        return hash(marshal.dumps(tuple(s), 2))
    except ValueError:  # a field value marshal cannot write (a nested NamedTuple...)
        return hash(pickle.dumps(s, 4))


SAFE, REACH, MARK = 0, 1, 2  # kinds of state predicate in a Checks table


@dataclass
class Checks:
    """What a search evaluates, in the order every loop evaluates it (the Python loop,
    its workers, the C loop of accel.py). ``state``: the state predicates, as (property,
    kind, predicate, unless): safety ones (SAFE, a hit where false), then reachable ones
    (REACH, a hit where true), then the columns of the graph properties (MARK, kept per
    state; ``unless`` is the index of the column whose true answer makes this one 0,
    else -1). ``marks``: each column's key and index in ``state``. ``edges``: the step
    predicates as (property, predicate, the answer that is a hit). ``deadlock``: the
    names of the deadlock properties."""

    state: list[tuple[Property, int, Callable[[State], Any], int]]
    marks: list[tuple[tuple[str, str], int]]
    edges: list[tuple[Property, Callable[..., Any], bool]]
    deadlock: list[str]


def checks_of(props: Sequence[Property]) -> Checks:
    state: list[tuple[Property, int, Callable[[State], Any], int]] = [
        (p, SAFE, p.predicate, -1) for p in props if p.kind is Kind.SAFETY and p.predicate]
    state += [(p, REACH, p.predicate, -1) for p in props
              if p.kind is Kind.REACHABLE and p.predicate]
    marks: list[tuple[tuple[str, str], int]] = []
    for p in props:
        if p.kind is Kind.LIVENESS:
            assert p.predicate is not None
            q = len(state)
            marks.append(((p.name, "q"), q))
            state.append((p, MARK, p.predicate, -1))
            if p.trigger is not None:
                # The trigger only matters where q fails (a "p and not q" source).
                marks.append(((p.name, "trigger"), len(state)))
                state.append((p, MARK, p.trigger, q))
        elif p.kind is Kind.RECOVERABLE:
            assert p.predicate is not None
            marks.append(((p.name, "goal"), len(state)))
            state.append((p, MARK, p.predicate, -1))
    edges = [(p, p.step, False) for p in props if p.kind is Kind.SAFETY and p.step]
    edges += [(p, p.step, True) for p in props if p.kind is Kind.REACHABLE and p.step]
    return Checks(state, marks, edges, [p.name for p in props if p.kind is Kind.DEADLOCK])


def label_table(model: Any) -> list[tuple[int, Args]]:
    return [(ai, args) for ai, a in enumerate(model.actions) for args in a.domain]


# ------------------------------------------------------------------ parallel workers
_WORKER: dict[str, Any] = {}


def _expand_chunk(blob: bytes) -> bytes:
    """Worker side: the successors of a chunk of states, with the model's predicates
    evaluated here rather than in the interning process. Returns ``(out, succ, vals)``:
    per state, None if it is terminal, else ``(enabled_progress, moves)`` with one
    ``(lid, k, step_hits)`` per enabled step, ``k`` indexing the chunk's distinct
    successors ``succ`` (sent once each), ``step_hits`` the step predicates it
    resolves (None mostly); ``vals[k]`` the state predicates of ``succ[k]``."""
    table, is_terminal = _WORKER["table"], _WORKER["terminal"]
    edge, names, labels = _WORKER["edge"], _WORKER["names"], _WORKER["labels"]
    spreds, decode = _WORKER["spreds"], _WORKER["decode"]
    out: list[Any] = []
    uniq: dict[State, int] = {}
    succ: list[State] = []
    for s in map(decode, pickle.loads(blob)):
        if is_terminal(s):
            out.append(None)
            continue
        prog = False
        moves = []
        for lid, guard, apply, args, env in table:
            if guard(s, args):
                if not env:
                    prog = True
                t = apply(s, args)
                k = uniq.setdefault(t, len(succ))
                if k == len(succ):
                    succ.append(t)
                step_hits = None
                if edge:
                    lbl = (names[labels[lid][0]], args)
                    step_hits = tuple(i for i, (_, pred, want) in enumerate(edge)
                                      if pred(s, lbl, t) == want) or None
                moves.append((lid, k, step_hits))
        out.append((prog, moves))
    vals = [_state_values(spreds, t) for t in succ]
    return pickle.dumps((out, list(map(_WORKER["encode"], succ)), vals), pickle.HIGHEST_PROTOCOL)


def _codec(cls: type) -> tuple[Callable[[State], Any], Callable[[Any], State]]:
    """How states cross a process boundary: as plain tuples of the model's state class
    (which need not be importable by name, as pickle would require), rebuilt on the
    other side; a state of another class travels as itself."""
    make = getattr(cls, "_make", None)
    if make is None or cls is tuple:
        return (lambda s: s), (lambda x: x)

    def encode(s: State) -> Any:
        return tuple(s) if type(s) is cls else s

    def decode(x: Any) -> State:
        return make(x) if type(x) is tuple else x

    return encode, decode


def _state_values(spreds: list[tuple[Callable[[State], bool], int]], t: State) -> bytes:
    """The state predicates of ``t``, one byte each; an entry with ``unless >= 0`` is
    only evaluated where entry ``unless`` is false."""
    v = bytearray()
    for pred, unless in spreds:
        v.append(0 if unless >= 0 and v[unless] else 1 if pred(t) else 0)
    return bytes(v)


def explore(
    model: Any,
    properties: Iterable[Property] = (),
    caps: Caps | None = None,
    keep_graph: bool = False,
    progress: ProgressFn | None = None,
    progress_every: float = 2.0,
    stop_when_resolved: bool = True,
    *,
    hash_compaction: bool = False,
    workers: int = 1,
    chunk: int = 512,
    pack: bool = True,
) -> Exploration:
    """Breadth-first search of ``model`` checking ``properties`` on the fly.

    Safety predicates and step predicates, reachable predicates and the deadlock check
    are evaluated here; liveness and recoverable properties need ``keep_graph`` and are
    judged afterwards (see :mod:`.liveness`). With ``stop_when_resolved`` the search
    stops as soon as every property given is resolved and no graph is wanted.
    ``hash_compaction`` and ``workers`` are described in the module docstring;
    ``pack=False`` stores exact states as tuples (faster on a model whose steps cost
    less than packing one state, larger: see bench/engine.py).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    caps = caps or Caps()
    props = list(properties)
    if accel.usable(model, hash_compaction, workers, pack, props):
        return accel.explore(model, props, caps, keep_graph, progress, progress_every,
                             stop_when_resolved)
    actions: Sequence[Action] = model.actions
    labels = label_table(model)
    table = []
    for lid, (ai, args) in enumerate(labels):
        a = actions[ai]
        table.append((lid, a.guard, a.apply, args, a.environment))
    names = [a.name for a in actions]

    checks = checks_of(props)
    state_preds = [(p.name, q) for p, k, q, _ in checks.state if k == SAFE]
    reach_preds = [(p.name, q) for p, k, q, _ in checks.state if k == REACH]
    want_deadlock = checks.deadlock
    hits: dict[str, Hit] = {}
    open_count = len(state_preds) + len(reach_preds) + len(checks.edges) + len(want_deadlock)
    edge_preds = [(p.name, pred, want) for p, pred, want in checks.edges]
    keep_graph = keep_graph or any(p.needs_graph for p in props)
    # Predicates of graph properties, one byte column each, filled as states are found.
    column = {q: bytearray() for _, q in checks.marks}
    marks: dict[tuple[str, str], bytearray] = {key: column[q] for key, q in checks.marks}
    mark_preds: list[tuple[bytearray, Callable[[State], bool], bytearray | None]] = [
        (column[q], pred, column.get(unless)) for q, (_, k, pred, unless)
        in enumerate(checks.state) if k == MARK]

    compact = hash_compaction
    index: dict[Any, int] = {}
    packer: Packer | None = None
    states: list[State] = []
    queue: deque[State] = deque()
    inits: list[State] = []
    parent = array("i")
    via = array("i")
    depth = array("i")
    fired = [0] * len(labels)
    terminal_ids: set[int] = set()
    off, edst, elab = array("i"), array("i"), array("i")
    is_terminal = model.terminal
    # Hash-consing: one dict per field maps a value to its first equal instance.
    shared: list[dict[Any, Any]] = []

    def check_state(sid: int, s: State) -> None:
        nonlocal open_count, state_preds, reach_preds
        hit = False
        for name, pred in state_preds:
            if not pred(s):
                hits[name] = Hit(sid)
                open_count -= 1
                hit = True
        for name, pred in reach_preds:
            if pred(s):
                hits[name] = Hit(sid)
                open_count -= 1
                hit = True
        if hit:
            state_preds = [(n, q) for n, q in state_preds if n not in hits]
            reach_preds = [(n, q) for n, q in reach_preds if n not in hits]
        for col, pred, unless in mark_preds:
            col.append(0 if unless is not None and unless[-1] else 1 if pred(s) else 0)

    def check_edge(s: State, sid: int, lid: int, t: State, tid: int) -> None:
        nonlocal open_count, edge_preds
        ai, args = labels[lid]
        hit = False
        for name, pred, want in edge_preds:
            if pred(s, (names[ai], args), t) == want:
                hits[name] = Hit(tid, (sid, lid))
                open_count -= 1
                hit = True
        if hit:
            edge_preds = [e for e in edge_preds if e[0] not in hits]

    # In worker mode the workers evaluate every predicate; these tables read back
    # their answers (state predicates in the order safety, reachable, marks).
    all_edge = list(edge_preds)
    n_safe, n_reach = len(state_preds), len(reach_preds)
    safe_names = [name for name, _ in state_preds]
    reach_names = [name for name, _ in reach_preds]
    spreds = [(q, unless) for _, _, q, unless in checks.state]
    cols = [col for col, _, _ in mark_preds]

    def check_values(sid: int, vals: bytes) -> None:
        nonlocal open_count
        for j in range(n_safe):
            if not vals[j] and safe_names[j] not in hits:
                hits[safe_names[j]] = Hit(sid)
                open_count -= 1
        for j in range(n_reach):
            if vals[n_safe + j] and reach_names[j] not in hits:
                hits[reach_names[j]] = Hit(sid)
                open_count -= 1
        for j, col in enumerate(cols):
            col.append(vals[n_safe + n_reach + j])

    def share(t: State) -> State:
        if not shared:
            if not hasattr(t, "_make"):
                return t
            shared.extend({} for _ in t)
        return t._make(map(dict.setdefault, shared, t, t))

    init_list = list(model.init_states())
    if not init_list:
        raise ModelError(f"model {model.name} has no initial state")
    cls = type(init_list[0])
    if not compact and pack and hasattr(cls, "_make") and hasattr(cls, "_fields"):
        def widen(convert: Callable[[bytes], bytes]) -> None:
            # Rewrite the stored keys in place: the search loop holds these objects.
            nonlocal narrow
            narrow = False
            states[:] = map(convert, states)
            ids = list(index.values())
            index.clear()
            index.update(zip(states, ids, strict=True))

        packer = Packer(cls, len(cls._fields), widen)
    narrow = packer is not None  # one byte a field: packed inline in the search loop
    pcodes = packer.codes if packer is not None else []
    code_of = dict.__getitem__
    step_label = [(names[ai], args) for ai, args in labels]
    keyof: Callable[[State], Any] | None = (
        fingerprint if compact else packer.pack if packer is not None else None)
    initial = []
    for s in init_list:
        key = keyof(s) if keyof else s
        if key in index:
            continue
        sid = len(parent)
        if keyof is None:
            key = s = share(s)
        elif packer is not None:
            key = packer.pack(s)  # (packing may have widened the codes)
            s = packer.unpack(key)
        index[key] = sid
        if compact:
            queue.append(s)
        else:
            states.append(key)
        inits.append(s)
        parent.append(-1)
        via.append(-1)
        depth.append(0)
        initial.append(sid)
        check_state(sid, s)

    t0 = time.perf_counter()
    last_report = t0
    cap: str | None = None
    head = 0
    max_states = caps.max_states
    max_depth = caps.max_depth
    deadline = t0 + caps.max_seconds if caps.max_seconds else None
    stopped_early = False
    limit = max_states if max_states is not None else sys.maxsize
    check_new = bool(state_preds or reach_preds or mark_preds)
    get = index.get
    parent_append, via_append, depth_append = parent.append, via.append, depth.append
    store = queue.append if compact else states.append
    unpack = packer.unpack if packer is not None else None
    plain = keyof is None
    make = None
    pool = None
    pending: deque[Any] = deque()
    if workers > 1:
        import multiprocessing as mp

        encode, decode = _codec(type(inits[0]))
        _WORKER.update(table=table, terminal=is_terminal, edge=all_edge, names=names,
                       labels=labels, spreds=spreds, encode=encode, decode=decode)
        pool = mp.get_context("fork").Pool(workers)
        sent = 0  # states handed to the pool so far (ids [0, sent))

        def next_result() -> tuple[list[Any], list[State], list[bytes]]:
            nonlocal sent
            # Keep about two chunks per worker in flight, in queue order.
            while len(pending) < 2 * workers and sent < len(parent):
                hi = min(sent + chunk, len(parent))
                blob = pickle.dumps([encode(_state_at(i)) for i in range(sent, hi)],
                                    pickle.HIGHEST_PROTOCOL)
                pending.append(pool.apply_async(_expand_chunk, (blob,)))
                sent = hi
            out, succ, vals = pickle.loads(pending.popleft().get())
            return out, list(map(decode, succ)), vals

        def _state_at(i: int) -> State:
            if compact:
                return queue[i - head]
            return unpack(states[i]) if unpack else states[i]

        make = next_result
    fast = make is None
    enabled = getattr(model, "enabled_labels", None)
    table_at = table.__getitem__
    edst_append, elab_append = edst.append, elab.append
    batch: list[Any] = []
    bsucc: list[State] = []
    bvals: list[bytes] = []
    bpos = 0
    n = len(parent)
    try:
        while head < n:
            if stop_when_resolved and props and open_count == 0 and not keep_graph:
                stopped_early = True
                break
            if (head & 1023) == 0:
                now = time.perf_counter()
                if deadline is not None and now > deadline:
                    cap = f"time<={caps.max_seconds:g}s"
                    break
                if progress is not None and now - last_report >= progress_every:
                    last_report = now
                    progress({
                        "states": n, "queue": n - head,
                        "rate": head / max(now - t0, 1e-9), "depth": depth[head],
                        "seconds": now - t0,
                    })
            sid = head
            s = queue[0] if compact else unpack(states[sid]) if unpack else states[sid]
            d = depth[sid]
            if make is not None:
                if bpos == len(batch):
                    batch, bsucc, bvals = make()
                    bpos = 0
                res = batch[bpos]
            else:
                res = False
            if keep_graph:
                off.append(len(edst))
            if res is None or (make is None and is_terminal(s)):
                terminal_ids.add(sid)
                head += 1
                bpos += 1
                if compact:
                    queue.popleft()
                continue
            if max_depth is not None and d >= max_depth:
                # A non-terminal state at the depth cap is left unexpanded.
                cap = f"depth<={max_depth}"
                break
            enabled_progress = False
            if fast:
                # One process: successors are interned as they are computed. A model
                # may say which labels are enabled at once (a memo over its guards).
                on = enabled(s) if enabled is not None else None
                for lid, guard, apply, args, env in (table if on is None
                                                     else map(table_at, on)):
                    if on is not None or guard(s, args):
                        if not env:
                            enabled_progress = True
                        t = apply(s, args)
                        fired[lid] += 1
                        if narrow:
                            # the one-byte packing, inlined (Packer.pack otherwise)
                            try:
                                key = bytes(map(code_of, pcodes, t))
                            except KeyError:
                                key = keyof(t)
                        else:
                            key = keyof(t) if keyof else t
                        tid = get(key)
                        if tid is None:
                            if n >= limit:
                                cap = f"states<={max_states}"
                                break
                            if narrow and type(t) is not cls:
                                keyof(t)  # refuses a state of another class
                            if plain:
                                key = t = share(t)
                            tid = index[key] = n
                            n += 1
                            store(t if compact else key)
                            parent_append(sid)
                            via_append(lid)
                            depth_append(d + 1)
                            if check_new:
                                check_state(tid, t)
                        if edge_preds:
                            lbl = step_label[lid]
                            for name, pred, want in edge_preds:
                                if name not in hits and pred(s, lbl, t) == want:
                                    hits[name] = Hit(tid, (sid, lid))
                                    open_count -= 1
                                    edge_preds = [e for e in edge_preds if e[0] not in hits]
                        if keep_graph:
                            edst_append(tid)
                            elab_append(lid)
            else:
                enabled_progress, kmoves = res
                for lid, k, step_hits in kmoves:
                    t = bsucc[k]
                    fired[lid] += 1
                    key = keyof(t) if keyof else t
                    tid = get(key)
                    if tid is None:
                        if n >= limit:
                            cap = f"states<={max_states}"
                            break
                        if plain:
                            key = t = share(t)
                        tid = index[key] = n
                        n += 1
                        store(t if compact else key)
                        parent_append(sid)
                        via_append(lid)
                        depth_append(d + 1)
                        if check_new:
                            check_values(tid, bvals[k])
                    if step_hits is not None:
                        for i in step_hits:
                            name = all_edge[i][0]
                            if name not in hits:
                                hits[name] = Hit(tid, (sid, lid))
                                open_count -= 1
                    if keep_graph:
                        edst_append(tid)
                        elab_append(lid)
            if cap is not None:
                break
            if not enabled_progress:
                for name in want_deadlock:
                    if name not in hits:
                        hits[name] = Hit(sid)
                        open_count -= 1
            head += 1
            bpos += 1
            if compact:
                queue.popleft()
    finally:
        if pool is not None:
            pool.terminate()
            _WORKER.clear()

    seconds = time.perf_counter() - t0
    complete = cap is None and not stopped_early and head == n
    csr = None
    if keep_graph:
        while len(off) <= n:
            off.append(len(edst))
        csr = (off, edst, elab)
    comp = None
    store_seq: Sequence[State] = states if packer is None else PackedStates(states, packer)
    if compact:
        comp = Compaction(64, n, sum(fired))
        store_seq = Replayed(model, labels, inits, parent, via)
    return Exploration(
        model=model, labels=labels, states=store_seq, parent=parent, via=via, depth=depth,
        expanded=head, complete=complete, cap=cap, hits=hits, fired=fired, seconds=seconds,
        transitions=sum(fired), csr=csr, initial=initial, terminal=terminal_ids, marks=marks,
        compaction=comp, workers=workers,
    )


def successors(model: Any, state: State) -> list[tuple[str, Args, State]]:
    """Every enabled step from ``state``: ``(action name, args, successor)``."""
    out = []
    for a in model.actions:
        for args in a.domain:
            if a.guard(state, args):
                out.append((a.name, args, a.apply(state, args)))
    return out


def outcome_of(action: Action, state: State, args: Args) -> Outcome | None:
    return action.explain(state, args) if action.explain else None
