"""Core values shared by every engine and every model.

The engines in this package know nothing about kernels. A model hands them:

* states: immutable, hashable ``NamedTuple`` instances whose fields hold ints, bools,
  strings and (nested) tuples of those. Equal states hash equal; that is all the
  explicit engine needs for interning, and the field names are what ``modifies``,
  the trace files and the text rendering talk about;
* actions: a name (the kernel function modelled), a finite argument domain (all the
  nondeterminism lives there), an explicit guard, a pure ``apply`` and the set of
  fields it ``modifies``. A label ``(name, args)`` always reproduces the same
  successor, so traces replay;
* properties: a name, a kind, a doc and predicates.

Engines return :class:`Verdict` values; only the command line prints.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

State = Any  # a NamedTuple instance; see the module docstring
Args = tuple[Any, ...]


class ModelError(Exception):
    """A model or property definition breaks the engine's contract."""


class EngineBug(Exception):
    """The engine produced something that does not replay: never shown as a verdict."""


@dataclass(frozen=True)
class Outcome:
    """What a step returned to its caller, and what it did on the side.

    ``ret`` is the syscall or function return (0, ``-EINVAL``...); ``events`` are
    human-readable side effects worth showing in a trace (host writes, RMP updates).
    Engines never look at these; traces and text renderings do.
    """

    ret: int | None = None
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    """One atomic step of the system.

    ``domain`` is the finite set of argument tuples; ``guard(state, args)`` says whether
    the step is enabled; ``apply(state, args)`` returns the successor and must be pure
    and deterministic; ``modifies`` names every field ``apply`` may change.
    ``explain(state, args)`` (optional) returns the :class:`Outcome` for trace display.
    ``environment`` marks steps that are not a thread of the system under test
    (a speculative page walker, another host user); the deadlock check ignores them.
    """

    name: str
    params: tuple[str, ...]
    domain: tuple[Args, ...]
    guard: Callable[[State, Args], bool]
    apply: Callable[[State, Args], State]
    modifies: frozenset[str]
    doc: str = ""
    explain: Callable[[State, Args], Outcome] | None = None
    environment: bool = False
    # the Z3 forms a plug-in supplies (gmemcheck/symbolic/actions.py): ``symbolic`` the
    # (sym_guard, sym_body) of a new action; ``extensions`` one (sym_guard, sym_before,
    # sym_after, complete) per extend_action around it; ``choices`` the choices that
    # were added as its last arguments
    symbolic: Any = None
    extensions: tuple[Any, ...] = ()
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        for args in self.domain:
            if not isinstance(args, tuple) or len(args) != len(self.params):
                raise ModelError(
                    f"action {self.name}: argument {args!r} does not match params {self.params}"
                )

    def label(self, args: Args) -> str:
        """``name(p=v, ...)``: how a step reads in a trace."""
        inner = ", ".join(f"{p}={_fmt_arg(v)}" for p, v in zip(self.params, args, strict=True))
        return f"{self.name}({inner})"


def _fmt_arg(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Kind(enum.StrEnum):
    SAFETY = "safety"          # predicate holds in every reachable state (and step)
    REACHABLE = "reachable"    # some reachable state satisfies the predicate
    LIVENESS = "liveness"      # trigger leads-to predicate under weak fairness
    DEADLOCK = "deadlock"      # no reachable non-terminal state without an enabled step
    RECOVERABLE = "recoverable"  # AG EF predicate: from every state the predicate is reachable


@dataclass(frozen=True)
class Property:
    """A named property.

    * safety: ``predicate(state)`` must hold in every reachable state; ``step(pre, label,
      post)`` (optional) must hold on every transition.
    * reachable: some reachable state satisfies ``predicate``, or some transition
      satisfies ``step`` (a witness makes it hold); used so that an over-constrained
      model fails instead of passing vacuously.
    * liveness: ``trigger`` leads-to ``predicate`` (``trigger`` None means "eventually
      ``predicate``" from the initial states), under weak fairness of the actions in
      ``fairness``.
    * deadlock: no reachable non-terminal state in which no non-environment action is
      enabled.
    * recoverable: from every reachable state some state satisfying ``predicate`` is
      reachable (CTL AG EF) without taking any action named in ``avoid``.
    """

    name: str
    kind: Kind
    doc: str
    predicate: Callable[[State], bool] | None = None
    step: Callable[[State, tuple[str, Args], State], bool] | None = None
    trigger: Callable[[State], bool] | None = None
    fairness: tuple[str, ...] = ()
    fairness_note: str = ""
    source: str = ""
    avoid: tuple[str, ...] = ()
    # a plug-in property's Z3 form: ``symbolic(k, s)`` is the Z3 Bool of ``predicate``
    # on a symbolic state (safety and reachable properties without ``step``)
    symbolic: Any = None

    def __post_init__(self) -> None:
        if self.kind in (Kind.LIVENESS, Kind.RECOVERABLE) and self.predicate is None:
            raise ModelError(f"property {self.name}: kind {self.kind.value} needs a predicate")
        if self.kind is Kind.REACHABLE and self.predicate is None and self.step is None:
            raise ModelError(f"property {self.name}: a reachable property needs a predicate "
                             "or step")
        if self.kind is Kind.SAFETY and self.predicate is None and self.step is None:
            raise ModelError(f"property {self.name}: a safety property needs a predicate or step")

    @property
    def needs_graph(self) -> bool:
        return self.kind in (Kind.LIVENESS, Kind.RECOVERABLE)


@runtime_checkable
class Model(Protocol):
    """What an engine needs from a model."""

    name: str
    actions: Sequence[Action]

    def init_states(self) -> Iterable[State]: ...

    def terminal(self, state: State) -> bool:
        """A state in which the system has legitimately stopped (for example the host
        oopsed): no deadlock, and no liveness obligation, is reported for it."""
        ...

    def identity(self) -> Mapping[str, Any]:
        """JSON-able description sufficient to rebuild this model (written into traces)."""
        ...

    def describe(self, state: State) -> Mapping[str, str]:
        """Human-readable items of a state, for the selftest-like text rendering."""
        ...


class Step(NamedTuple):
    action: str
    args: Args
    state: State
    outcome: Outcome | None = None


@dataclass(frozen=True)
class Trace:
    """A path through the state space.

    ``steps[i].state`` is the state after step i. For a lasso, ``loop`` is the index (in
    the list ``[init] + step states``) of the state the last step returns to:
    ``states[-1] == states[loop]``; ``loop == len(steps)`` with ``stutter`` set means the
    path ends in a state with no enabled step and stays there forever. ``origin`` is
    ``"init"`` for a path from an initial state and ``"arbitrary"`` for a
    counterexample-to-induction that need not start from one.
    """

    init: State
    steps: tuple[Step, ...]
    loop: int | None = None
    origin: str = "init"
    stutter: bool = False

    @property
    def states(self) -> list[State]:
        return [self.init] + [s.state for s in self.steps]

    def __len__(self) -> int:
        return len(self.steps)


class Result(enum.StrEnum):
    HOLDS = "holds"
    HOLDS_BOUNDED = "holds_bounded"
    VIOLATED = "violated"
    INCONCLUSIVE = "inconclusive"


@dataclass
class Verdict:
    """The answer for one property.

    ``bound`` says what was checked: ``"exhaustive"`` for a complete exploration, the
    cap that was hit (``"states<=1000"``, ``"depth<=12"``, ``"time<=60s"``), or the
    symbolic depth/size. ``reason`` explains an inconclusive or bounded result.
    """

    property: str
    kind: Kind
    result: Result
    engine: str
    bound: str
    trace: Trace | None = None
    reason: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return self.result.value


def check_args(action: Action, args: Args) -> None:
    if args not in action.domain:
        raise ModelError(f"{action.name}: {args!r} is not in its argument domain")


def changed_fields(pre: State, post: State) -> set[str]:
    """Names of the NamedTuple fields that differ between two states."""
    return {f for f, a, b in zip(pre._fields, pre, post, strict=True) if a != b}


def default_describe(state: State) -> dict[str, str]:
    """Items of a NamedTuple state for text traces: scalars by field name, tuples one
    item per element (``field[i]``)."""
    out: dict[str, str] = {}
    for f, v in zip(state._fields, state, strict=True):
        if isinstance(v, tuple):
            for i, x in enumerate(v):
                out[f"{f}[{i}]"] = _fmt_arg(x)
        else:
            out[f] = _fmt_arg(v)
    return out


@dataclass
class SimpleModel:
    """A model assembled from parts: enough for toy models and tests."""

    name: str
    actions: Sequence[Action]
    inits: Sequence[State]
    is_terminal: Callable[[State], bool] | None = None
    ident: Mapping[str, Any] = field(default_factory=dict)

    def init_states(self) -> Iterable[State]:
        return list(self.inits)

    def terminal(self, state: State) -> bool:
        return bool(self.is_terminal and self.is_terminal(state))

    def identity(self) -> Mapping[str, Any]:
        return {"model": self.name, **self.ident}

    def describe(self, state: State) -> Mapping[str, str]:
        return default_describe(state)
