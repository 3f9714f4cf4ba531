"""Trace files: ITF JSON for machines, a selftest-like text for people.

ITF is the Informal Trace Format of Apalache and Quint
(https://apalache-mc.org/docs/adr/015adr-trace.html): a top-level ``#meta`` object,
``vars``, ``states`` (each with its own ``#meta``) and an optional ``loop`` index.
Here each state's ``#meta`` also carries the step that produced it (``action``,
``args`` by parameter name, ``ret`` and ``events``), and the top-level ``#meta``
carries what is needed to rebuild the model and re-check the property. For a lasso,
the step from the last state back to ``states[loop]`` is ``#meta.loop-action``;
``#meta.stutter`` marks a path that ends in a state with no enabled step.

Writes are atomic: the text goes to a temporary file in the same folder, which is
then renamed over the target, so an interrupted run never leaves half a trace.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .core import Args, Outcome, State, Step, Trace

ITF_DESCRIPTION = "https://apalache-mc.org/docs/adr/015adr-trace.html"
FORMAT_VERSION = 1
_SAFE_INT = 2**53


class TraceFileError(Exception):
    """A trace file cannot be read: the message names the file and what is wrong."""


# ---------------------------------------------------------------------- values
def to_itf(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if -_SAFE_INT < v < _SAFE_INT else {"#bigint": str(v)}
    if isinstance(v, tuple):
        return {"#tup": [to_itf(x) for x in v]}
    if isinstance(v, Mapping):
        return {str(k): to_itf(x) for k, x in v.items()}
    raise TypeError(f"value {v!r} of type {type(v).__name__} has no ITF form")


def from_itf(v: Any, where: str) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str | int):
        return v
    if isinstance(v, list):
        return tuple(from_itf(x, where) for x in v)
    if isinstance(v, dict):
        if set(v) == {"#tup"} and isinstance(v["#tup"], list):
            return tuple(from_itf(x, where) for x in v["#tup"])
        if set(v) == {"#bigint"} and isinstance(v["#bigint"], str):
            try:
                return int(v["#bigint"])
            except ValueError:
                raise TraceFileError(f"{where}: bad #bigint {v['#bigint']!r}") from None
        raise TraceFileError(f"{where}: unsupported ITF value with keys {sorted(v)}")
    raise TraceFileError(f"{where}: unsupported ITF value {v!r}")


def state_to_itf(state: State) -> dict[str, Any]:
    return {f: to_itf(getattr(state, f)) for f in state._fields}


# ---------------------------------------------------------------------- writing
def trace_to_itf(trace: Trace, actions: Mapping[str, Any], meta: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """The ITF document for ``trace``; ``actions`` maps action names to Action objects
    (for parameter names), ``meta`` is merged into the top-level ``#meta``."""
    steps = list(trace.steps)
    loop_step: Step | None = None
    if trace.loop is not None and not trace.stutter:
        loop_step = steps.pop()  # its state is states[loop]
    out_states = []
    first = state_to_itf(trace.init)
    first["#meta"] = {"index": 0}
    out_states.append(first)
    for i, st in enumerate(steps, start=1):
        d = state_to_itf(st.state)
        d["#meta"] = {"index": i, **_step_meta(st, actions)}
        out_states.append(d)
    doc: dict[str, Any] = {
        "#meta": {
            "format": "ITF",
            "format-description": ITF_DESCRIPTION,
            "source": "gmemcheck",
            "gmemcheck-format": FORMAT_VERSION,
            **meta,
            "origin": trace.origin,
            "stutter": trace.stutter,
            "loop-action": _step_meta(loop_step, actions) if loop_step else None,
        },
        "vars": list(trace.init._fields),
        "states": out_states,
    }
    if trace.loop is not None:
        doc["loop"] = trace.loop
    return doc


def _step_meta(st: Step, actions: Mapping[str, Any]) -> dict[str, Any]:
    params = actions[st.action].params if st.action in actions else ()
    m: dict[str, Any] = {
        "action": st.action,
        "args": {p: to_itf(v) for p, v in zip(params, st.args, strict=True)},
    }
    if st.outcome is not None:
        if st.outcome.ret is not None:
            m["ret"] = st.outcome.ret
        if st.outcome.events:
            m["events"] = list(st.outcome.events)
    return m


def _umask_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _write_temp(path: Path, text: str) -> str:
    """``text`` in a fresh ``.NAME.XXXX.tmp`` next to ``path``, synced, with the mode an
    ordinary file gets under the umask (mkstemp's would be 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _umask_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _unlink(p: str | Path) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one."""
    write_pair([(path, text)])


def write_pair(files: list[tuple[Path, str]]) -> None:
    """Write several files (a trace's ITF and text forms) together: every temporary is
    written and synced first, then each is renamed over its target, so a failure while
    writing leaves every old file in place and no temporary behind."""
    tmps: list[str] = []
    try:
        for path, text in files:
            tmps.append(_write_temp(path, text))
        for (path, _), tmp in zip(files, tmps, strict=True):
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps:
            _unlink(tmp)
        raise


def dump_itf(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"


# ---------------------------------------------------------------------- reading
class LoadedTrace:
    """A trace read back from ITF, before it is bound to a model."""

    def __init__(self, meta: dict[str, Any], vars_: list[str], states: list[dict[str, Any]],
                 loop: int | None, path: str):
        self.meta = meta
        self.vars = vars_
        self.raw_states = states
        self.loop = loop
        self.path = path

    def bind(self, state_type: Any, actions: Mapping[str, Any]) -> Trace:
        """Decode the states into ``state_type`` and the step labels into args tuples."""
        where = self.path
        fields = list(state_type._fields)
        if self.vars != fields:
            raise TraceFileError(
                f"{where}: vars {self.vars} do not match this model's state fields {fields}")
        states = []
        labels: list[tuple[str, Args, Outcome | None]] = []
        for i, raw in enumerate(self.raw_states):
            loc = f"{where}: states[{i}]"
            missing = [f for f in fields if f not in raw]
            if missing:
                raise TraceFileError(f"{loc}: missing variable(s) {', '.join(missing)}")
            states.append(state_type(**{f: from_itf(raw[f], f"{loc}.{f}") for f in fields}))
            if i > 0:
                m = raw.get("#meta")
                if not isinstance(m, dict):
                    raise TraceFileError(f"{loc}: no #meta with the step that produced it")
                labels.append(_decode_step(m, actions, loc))
        steps = [Step(a, args, s, o) for (a, args, o), s in zip(labels, states[1:], strict=True)]
        stutter = bool(self.meta.get("stutter", False))
        loop = self.loop
        la = self.meta.get("loop-action")
        if loop is not None:
            if not isinstance(loop, int) or isinstance(loop, bool) or not 0 <= loop < len(states):
                raise TraceFileError(f"{where}: loop index {loop!r} is out of range")
            if not stutter:
                if not isinstance(la, dict):
                    raise TraceFileError(f"{where}: a lasso needs #meta.loop-action")
                a, args, o = _decode_step(la, actions, f"{where}: #meta.loop-action")
                steps.append(Step(a, args, states[loop], o))
        origin = self.meta.get("origin", "init")
        if origin not in ("init", "arbitrary"):
            raise TraceFileError(f"{where}: #meta.origin must be 'init' or 'arbitrary'")
        return Trace(states[0], tuple(steps), loop=loop, origin=origin, stutter=stutter)


def _decode_step(m: Mapping[str, Any], actions: Mapping[str, Any], loc: str
                 ) -> tuple[str, Args, Outcome | None]:
    name = m.get("action")
    if not isinstance(name, str):
        raise TraceFileError(f"{loc}: #meta.action is missing")
    if name not in actions:
        raise TraceFileError(f"{loc}: unknown action {name!r} for this model")
    params = actions[name].params
    raw_args = m.get("args", {})
    if not isinstance(raw_args, dict) or set(raw_args) != set(params):
        raise TraceFileError(
            f"{loc}: args of {name} must be exactly {list(params)}, got {raw_args!r}")
    args = tuple(from_itf(raw_args[p], f"{loc}.args.{p}") for p in params)
    ret = m.get("ret")
    events = m.get("events", [])
    if ret is not None and (not isinstance(ret, int) or isinstance(ret, bool)):
        raise TraceFileError(f"{loc}: ret must be an integer, got {ret!r}")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise TraceFileError(f"{loc}: events must be a list of strings")
    # what the file says the step returned and did: replay compares it with the model
    return name, args, Outcome(ret, tuple(events))


def load_itf(path: str | Path) -> LoadedTrace:
    """Parse and structurally validate an ITF file (one clear error on any problem)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceFileError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TraceFileError(f"{p}: cannot read: {e}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceFileError(f"{p}: line {e.lineno}: not valid JSON ({e.msg}); "
                             "the file may be truncated") from None
    except RecursionError:
        raise TraceFileError(f"{p}: JSON nested too deeply to be a gmemcheck trace") from None
    if not isinstance(doc, dict):
        raise TraceFileError(f"{p}: top level must be a JSON object")
    meta = doc.get("#meta")
    if not isinstance(meta, dict) or meta.get("format") != "ITF":
        raise TraceFileError(f"{p}: not an ITF trace (#meta.format is not 'ITF')")
    if meta.get("source") != "gmemcheck":
        raise TraceFileError(f"{p}: not written by gmemcheck (#meta.source)")
    if meta.get("gmemcheck-format") != FORMAT_VERSION:
        raise TraceFileError(f"{p}: unsupported gmemcheck-format {meta.get('gmemcheck-format')!r}")
    vars_ = doc.get("vars")
    states = doc.get("states")
    if not isinstance(vars_, list) or not all(isinstance(v, str) for v in vars_):
        raise TraceFileError(f"{p}: 'vars' must be a list of names")
    if not isinstance(states, list) or not states or not all(isinstance(s, dict) for s in states):
        raise TraceFileError(f"{p}: 'states' must be a non-empty list of objects")
    return LoadedTrace(meta, vars_, states, doc.get("loop"), str(p))


# ---------------------------------------------------------------------- text
def render_text(trace: Trace, model: Any, header: list[str]) -> str:
    """A counterexample that reads like a selftest: one call per line, then only the
    items of the state that the call changed."""
    out = [f"# {h}" if h else "#" for h in header]
    actions = {a.name: a for a in model.actions}
    prev = dict(model.describe(trace.init))
    out.append("# initial state:")
    for k, v in prev.items():
        out.append(f"#   {k} = {v}")
    width = len(str(len(trace.steps)))
    for i, st in enumerate(trace.steps, start=1):
        if trace.loop is not None and not trace.stutter and i - 1 == trace.loop:
            out.append(f"--- loop: the steps below repeat forever (from state {trace.loop}) ---")
        a = actions.get(st.action)
        call = a.label(st.args) if a else f"{st.action}{st.args}"
        ret = ""
        if st.outcome is not None and st.outcome.ret is not None:
            ret = f" = {_errno_name(st.outcome.ret)}"
        out.append(f"{i:>{width}}. {call}{ret}")
        pad = " " * (width + 2)
        if st.outcome is not None:
            for ev in st.outcome.events:
                out.append(f"{pad}  ! {ev}")
        cur = dict(model.describe(st.state))
        for k in _ordered_keys(prev, cur):
            a_, b_ = prev.get(k, "-"), cur.get(k, "-")
            if a_ != b_:
                out.append(f"{pad}  {k}: {a_} -> {b_}")
        prev = cur
    if trace.loop is not None:
        if trace.stutter:
            out.append("--- stuck: no step is enabled here, the system stays in this state ---")
        else:
            out.append(f"--- back to state {trace.loop}: the loop repeats ---")
    return "\n".join(out) + "\n"


def _ordered_keys(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    keys = list(a.keys())
    keys += [k for k in b.keys() if k not in a]
    return keys


_ERRNO = {-1: "-EPERM", -4: "-EINTR", -5: "-EIO", -11: "-EAGAIN", -12: "-ENOMEM", -14: "-EFAULT",
          -16: "-EBUSY", -17: "-EEXIST", -22: "-EINVAL", -95: "-EOPNOTSUPP"}


def _errno_name(ret: int) -> str:
    return _ERRNO.get(ret, str(ret))
