"""``build(config)``: the explicit-state model of one guest_memfd design."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..checker.core import Action
from . import actions as _actions  # noqa: F401  (registers the action builders)
from . import work as _work
from .config import Config
from .kernel import Kernel
from .registry import (
    ACTION_BUILDERS,
    ACTION_ORIGIN,
    ACTION_WRAPPERS,
    AXES,
    CHOICES,
    Choice,
    ConflictError,
    origin_name,
)
from .state import (
    _NONE,
    BUILTIN_FIELDS,
    BUILTIN_SHOW_ORDER,
    DECLARED,
    Field,
    initial_state,
    state_type,
)

MODEL_NAME = "guest_memfd"


def _who(v: Any) -> str:
    where = origin_name(v.origin)
    return f"{v.label} ({'built-in' if where == 'built-in' else 'plug-in ' + where})"


def _sym_extended(prev: Action | None, a: Action | None) -> bool:
    """``a`` is ``prev`` extended (extend_action) only by parts that all have a Z3 form."""
    if prev is None or a is None or a.name != prev.name:
        return False
    n = len(prev.extensions)
    return len(a.extensions) > n and a.extensions[:n] == prev.extensions and all(
        e[3] for e in a.extensions[n:])


def _sym_values(values: tuple[Any, ...]) -> bool:
    """A choice over these values is a Z3 argument: all bools, or all ints."""
    return all(isinstance(v, bool) for v in values) or all(
        isinstance(v, int) and not isinstance(v, bool) for v in values)


def with_choice(a: Action, c: Choice) -> Action:
    """``a`` with one more argument, the outcome of choice ``c``; a step of the action
    reads it with ``w.choose(c.name)``."""
    n = len(a.params)
    if c.name in a.params:
        raise ConflictError(f"choice {c.name} ({origin_name(c.origin)}): action {a.name} "
                            "already has an argument of that name")
    inner_guard, inner_apply, inner_explain = a.guard, a.apply, a.explain
    chosen = _work.CHOSEN
    name = c.name

    def guard(s: Any, args: tuple[Any, ...]) -> bool:
        return inner_guard(s, args[:n])

    def apply(s: Any, args: tuple[Any, ...]) -> Any:
        chosen[name] = args[n]
        try:
            return inner_apply(s, args[:n])
        finally:
            del chosen[name]

    def explain(s: Any, args: tuple[Any, ...]) -> Any:
        chosen[name] = args[n]
        try:
            return inner_explain(s, args[:n]) if inner_explain else None
        finally:
            del chosen[name]

    dom = tuple(args + (v,) for args in a.domain for v in c.values)
    return Action(a.name, a.params + (name,), dom, guard, apply, a.modifies,
                  a.doc + f" Choice {name}: {c.doc}", explain=explain if inner_explain else None,
                  symbolic=a.symbolic, extensions=a.extensions, choices=a.choices + (c,),
                  environment=a.environment)


# The guard memo (GmemModel.enabled_labels) gives up once, after GUARD_TRIAL lookups,
# more than GUARD_MISS_PCT percent of them missed.
GUARD_TRIAL = 20_000
GUARD_MISS_PCT = 30


class GmemModel:
    """The explicit model: initial state, actions for the design, and rendering."""

    name = MODEL_NAME

    def __init__(self, cfg: Config, plugin_ids: list[dict[str, str]] | None = None) -> None:
        self.cfg = cfg
        self.k = Kernel(cfg.axes, cfg.bounds)
        self.plugin_ids = plugin_ids or []
        k = self.k
        # the state: the built-in fields, then every field a loaded plug-in declared
        self.fields: tuple[Field, ...] = tuple(DECLARED.values())
        self.extra_fields = tuple(f for f in self.fields if f.name not in BUILTIN_FIELDS)
        self.state_type = state_type(tuple(f.name for f in self.fields))
        acts: list[tuple[str, Action]] = []
        touched: dict[str, str] = {}
        # anything a plug-in changed in the actions (field, wrapper, choice, replaced or
        # new action), with or without a Z3 form: the guard memo cannot see what
        # foreign guards read
        foreign = bool(self.extra_fields)
        overrides: dict[str, tuple[Any, Any]] = {}
        for ax_name, ax in AXES.items():
            if ax.kind != "choice":
                continue
            v = ax.values[cfg.axes[ax_name]]
            for act, builder in v.actions.items():
                if act in overrides and act not in v.wraps:
                    raise ConflictError(
                        f"action {act} is replaced by both {_who(overrides[act][0])} and "
                        f"{_who(v)}; one of them must declare wraps=True")
                overrides[act] = (v, builder) if act not in v.wraps else (
                    v, _chain(overrides.get(act, (None, None))[1], builder))
        for name, builder in ACTION_BUILDERS.items():
            over = overrides.get(name)
            if over is None:
                a = _built(name, ACTION_ORIGIN.get(name, "built-in"), builder, k)
            else:
                v, ob = over
                a = _built(name, v.origin, ob, k, builder)
                if a is not None:
                    base = builder(k)
                    allowed = {name} | ({base.name} if base is not None else set())
                    if a.name not in allowed:
                        raise ConflictError(
                            f"{_who(v)} builds an action named {a.name} in the slot of "
                            f"action {name}: add a new action with add_action instead")
            for wrapper, origin in ACTION_WRAPPERS.get(name, ()):
                before = a.name if a is not None else name
                prev = a
                a = _built(name, origin, wrapper, k, a, wrap=True)
                foreign = foreign or a is not prev
                if a is not prev and not _sym_extended(prev, a):
                    touched[name] = f"action {name} is extended by plug-in " \
                        f"{origin_name(origin)} without a symbolic form"
                if a is not None and a.name != before:
                    raise ConflictError(f"plug-in {origin_name(origin)}: its wrapper of "
                                        f"action {name} renamed it {a.name}")
            if a is not None:
                acts.append((name, a))
        for c in CHOICES.values():
            if c.when is not None and not c.when(k):
                continue
            foreign = foreign or c.origin != "built-in"
            if c.origin != "built-in" and not _sym_values(c.values):
                touched[f"choice {c.name}"] = f"choice {c.name} comes from plug-in " \
                    f"{origin_name(c.origin)} and takes values other than bools or ints"
            acts = [(slot, with_choice(a, c) if slot in c.actions or a.name in c.actions
                     else a) for slot, a in acts]
        self.actions: list[Action] = [a for _, a in acts]
        self.action_origin = {a.name: ACTION_ORIGIN.get(slot, "built-in") for slot, a in acts}
        for a in self.actions:
            o = self.action_origin[a.name]
            if o != "built-in" and a.symbolic is None:
                touched[a.name] = f"action {a.name} comes from plug-in {origin_name(o)} " \
                    "without a symbolic form"
        # plug-in fields always have a Z3 form (symbolic/extra.py: from the domain)
        # what a plug-in added that the Z3 encoding has no form for (empty: none)
        self.symbolic_gaps: list[str] = list(touched.values())
        # The guards are memoized together (enabled_labels) only in a design with no
        # plug-in action, wrapper, choice or field, whether or not it has a Z3 form: the
        # memo sees the reads of built-in guards only (work.memoized), and a plug-in's
        # guard conjunct may read what the proxy cannot record.
        foreign = foreign or any(v.origin != "built-in" for v, _ in overrides.values()) \
            or any(o != "built-in" for o in self.action_origin.values())
        self._guard_memo = k.memo.on and not foreign
        # the C search loop (checker/accel.py) memoizes guards, steps and predicates on
        # the fields they read: only where no foreign code takes part, as above
        self.accel_ok = k.memo.on and not foreign
        self._guards = [(a.guard, args) for a in self.actions for args in a.domain]
        self._enabled = _work.ReadTables()
        self._guard_calls = self._guard_misses = 0
        order = [DECLARED[n] for n in BUILTIN_SHOW_ORDER] + list(self.extra_fields)
        self._show = [f for f in order if f.render is not None or not f.shown_with]

    # ---------------------------------------------------------------- protocol
    def init_states(self) -> Iterable[Any]:
        base = initial_state(self.k.P, self.k.R, launched=False)
        if not self.extra_fields:
            return [base]
        extra = [f.initial_value(self.k.P, self.k.R) for f in self.extra_fields]
        return [self.state_type(*base, *extra)]

    def enabled_labels(self, s: Any) -> tuple[int, ...] | None:
        """The ids of the labels enabled in ``s`` (in the order of
        ``checker.explicit.label_table``), memoized on the fields the guards read, as
        the steps are (work.memoized); None where guards are not memoized (the search
        then calls each guard). The guards together read a handful of fields in most
        states, so one lookup stands for some thirty guard calls."""
        if not (self._guard_memo and self.k.memo.on):
            return None
        self._guard_calls += 1
        r = self._enabled.get(s)
        if r is not None:
            return r
        # A miss costs every guard through the recording proxy: where the guards' reads
        # rarely repeat (four pages per huge folio: two lookups in five miss) the
        # memo costs more than it saves, and gives up (the answers are the same).
        self._guard_misses += 1
        if self._guard_calls >= GUARD_TRIAL and \
                self._guard_misses * 100 > GUARD_MISS_PCT * self._guard_calls:
            self._guard_memo = False
        fields = _work.fields_of(type(s))
        if fields is None:
            self._guard_memo = False
            return None
        got = _work.recorded(lambda proxy: tuple(
            lid for lid, (guard, args) in enumerate(self._guards) if guard(proxy, args)),
            fields, s)
        if got is None:
            self._guard_memo = False
            return None
        (read,), r = got
        self._enabled.put(s, read, r, self.k.memo)
        return r

    def terminal(self, s: Any) -> bool:
        return bool(s.fault)

    def identity(self) -> Mapping[str, Any]:
        return {
            "model": MODEL_NAME,
            "preset": self.cfg.name,
            "axes": {k: list(v) if isinstance(v, tuple) else v for k, v in self.cfg.axes.items()},
            "bounds": dict(self.cfg.bounds),
            "plugins": list(self.plugin_ids),
        }

    def describe(self, s: Any) -> Mapping[str, str]:
        """Items a kernel developer reads in a trace, field by field as each field's
        declaration renders it; only the changed ones are shown after each step."""
        k = self.k
        out: dict[str, str] = {}
        for f in self._show:
            out.update(f.render(k, s) if f.render is not None else f.default_items(s))
        return out

    def check_domains(self, s: Any) -> str | None:
        """The first plug-in field of ``s`` holding a value outside its declared domain
        (the built-in fields are bound by the well-formedness lemmas instead)."""
        for f in self.extra_fields:
            bad = f.outside(self.k, getattr(s, f.name))
            if bad is not _NONE:
                return f"{f.name} = {bad!r} is outside its domain"
        return None


def _built(name: str, origin: str, builder: Any, k: Any, arg: Any = None,
           wrap: bool = False) -> Any:
    """Call an action builder; a plug-in's builder that raises is reported in one line."""
    try:
        if wrap:
            return builder(k, arg)
        if getattr(builder, "_wraps_base", False):
            return builder(k, arg)
        return builder(k)
    except ConflictError:
        raise
    except Exception as e:
        if origin == "built-in":
            raise
        raise ConflictError(f"plug-in {origin_name(origin)}: building action {name} raised "
                            f"{type(e).__name__}: {e}") from None


def _chain(prev_builder: Any, wrapper: Any) -> Any:
    """An override builder that wraps: ``wrapper(k, prev)`` gets the action built by
    ``prev_builder`` (an earlier override) or by the base builder."""
    def build(k: Any, base: Any = None) -> Any:
        if prev_builder is not None:
            prev = prev_builder(k, base) if getattr(prev_builder, "_wraps_base", False) \
                else prev_builder(k)
        else:
            prev = base(k) if base is not None else None
        return wrapper(k, prev)
    build._wraps_base = True  # type: ignore[attr-defined]
    return build


def build(cfg: Config, plugin_ids: list[dict[str, str]] | None = None) -> GmemModel:
    return GmemModel(cfg, plugin_ids)


def resized(model: GmemModel, **bounds: int) -> GmemModel:
    """The same design and plug-ins with some bounds changed (``model`` itself when
    none changes): the symbolic engines mine, prove and replay at other sizes."""
    new = dict(model.cfg.bounds, **bounds)
    if new == model.cfg.bounds:
        return model
    import copy

    cfg = copy.deepcopy(model.cfg)
    cfg.bounds = new
    return GmemModel(cfg, model.plugin_ids)
