"""Loading plug-ins: a kernel patch series as a new design-axis value.

A plug-in file imports :mod:`gmemcheck.api` and registers values, axes and properties
at import time. Loading is checked: a file that raises, names an unknown step, action
or axis, or collides with an existing name is refused with one line naming the file,
and whatever it registered is rolled back. Before a design that uses a plug-in is
explored, :func:`check_contract` samples its state space and refuses an ``apply`` that
changes a field outside its ``modifies`` or is not deterministic.

Traces found with a plug-in record its file name and the SHA-256 of its content;
replay refuses a trace whose plug-in is missing or changed.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import sys
from collections import deque
from pathlib import Path
from typing import Any

from . import api, properties
from .checker.core import changed_fields
from .model import registry


class PluginError(Exception):
    """A plug-in cannot be used; the message names the file and the problem."""


# resolved path -> {"file": as recorded, "sha256": digest}
LOADED: dict[str, dict[str, str]] = {}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)


def load(path: str | Path, relative_to: Path | None = None) -> dict[str, str]:
    """Import a plug-in file once; return its recorded identity."""
    p = Path(path)
    if not p.is_absolute() and relative_to is not None:
        p = relative_to / p
    shown = _display(p)
    if not p.is_file():
        raise PluginError(f"plugin {shown}: no such file")
    if p.suffix != ".py":
        raise PluginError(f"plugin {shown}: not a Python file (.py)")
    key = str(p.resolve())
    h = digest(p)
    if key in LOADED:
        if LOADED[key]["sha256"] != h:
            raise PluginError(f"plugin {shown}: changed since it was loaded in this run")
        return LOADED[key]
    ident = {"file": shown, "sha256": h}
    snapshot = _snapshot()
    api._set_origin(key)
    name = f"gmemcheck_plugin_{h[:16]}"
    try:
        spec = importlib.util.spec_from_file_location(name, p)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin {shown}: cannot be imported")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    except PluginError:
        _restore(snapshot)
        raise
    except ValueError as e:
        _restore(snapshot)
        raise PluginError(f"plugin {shown}: {e}") from None
    except BaseException as e:  # noqa: BLE001 - any failure of foreign code is reported
        _restore(snapshot)
        sys.modules.pop(name, None)
        raise PluginError(f"plugin {shown}: raised {type(e).__name__} while loading: {e}"
                          ) from None
    finally:
        api._set_origin("built-in")
    LOADED[key] = ident
    return ident


# every registry a plug-in may add to: restored as a whole when a plug-in fails to load
def _tables() -> dict[str, dict[Any, Any]]:
    from .model import state

    return {"fields": state.DECLARED, "steps": registry.BASE_STEPS,
            "step_docs": registry.STEP_DOCS, "step_origin": registry.STEP_ORIGIN,
            "actions": registry.ACTION_BUILDERS, "action_origin": registry.ACTION_ORIGIN,
            "threads": registry.THREADS, "locks": registry.LOCKS,
            "choices": registry.CHOICES}


def _snapshot() -> dict[str, Any]:
    return {
        "axes": {n: (a, dict(a.values)) for n, a in registry.AXES.items()},
        "props": dict(properties.REGISTRY),
        "origin": dict(properties.ORIGIN),
        "goals": list(properties.GOALS),
        "tables": {n: dict(t) for n, t in _tables().items()},
        "wrappers": {n: list(w) for n, w in registry.ACTION_WRAPPERS.items()},
    }


def _restore(snap: dict[str, Any]) -> None:
    registry.AXES.clear()
    for n, (a, values) in snap["axes"].items():
        a.values.clear()
        a.values.update(values)
        registry.AXES[n] = a
    for n, t in _tables().items():
        t.clear()
        t.update(snap["tables"][n])
    registry.ACTION_WRAPPERS.clear()
    registry.ACTION_WRAPPERS.update(snap["wrappers"])
    properties.REGISTRY.clear()
    properties.REGISTRY.update(snap["props"])
    properties.ORIGIN.clear()
    properties.ORIGIN.update(snap["origin"])
    properties.GOALS[:] = snap["goals"]


def identity_of(origin: str) -> dict[str, str] | None:
    return LOADED.get(origin)


def used_by(axes: dict[str, Any]) -> list[dict[str, str]]:
    """The plug-ins a design depends on: those providing its selected axis values (or
    the axes themselves), and those that registered properties."""
    origins: list[str] = []
    for name, a in registry.AXES.items():
        if a.origin != "built-in" and a.origin not in origins:
            origins.append(a.origin)
        if a.kind == "choice":
            v = a.values.get(axes.get(name))
            if v is not None and v.origin != "built-in" and v.origin not in origins:
                origins.append(v.origin)
    for o in properties.ORIGIN.values():
        if o not in origins:
            origins.append(o)
    from .model import state

    # new state, steps, actions, threads, locks and choices are part of every design
    more = [f.origin for f in state.DECLARED.values()]
    more += list(registry.STEP_ORIGIN.values()) + list(registry.ACTION_ORIGIN.values())
    more += [t.origin for t in registry.THREADS.values()]
    more += [t.origin for t in registry.LOCKS.values()]
    more += [c.origin for c in registry.CHOICES.values()]
    more += [o for ws in registry.ACTION_WRAPPERS.values() for _, o in ws]
    for o in more:
        if o != "built-in" and o not in origins:
            origins.append(o)
    return [LOADED[o] for o in origins if o in LOADED]


def verify_recorded_plugins(ids: list[dict[str, str]], trace_path: str) -> None:
    """Load the plug-ins a trace was found with, refusing missing or changed ones."""
    for ident in ids:
        f = ident.get("file") if isinstance(ident, dict) else None
        h = ident.get("sha256") if isinstance(ident, dict) else None
        if not isinstance(f, str) or not isinstance(h, str):
            raise PluginError(f"{trace_path}: malformed plug-in record {ident!r}")
        p = Path(f)
        if not p.is_file():
            raise PluginError(f"{trace_path}: the trace was found with plug-in {f}, "
                              "which is missing")
        if digest(p) != h:
            raise PluginError(f"{trace_path}: plug-in {f} has changed since the trace was "
                              f"written (sha256 {h[:12]}... recorded, {digest(p)[:12]}... now)")
        load(p)


def check_contract(model: Any, max_states: int = 4000) -> None:
    """Sample the design's state space breadth-first and check every enabled step:
    applying it twice gives the same successor, and only fields in ``modifies`` change."""
    names = [ident["file"] for ident in used_by(model.cfg.axes)]
    who = ", ".join(names) or "a plug-in"
    seen = set()
    dq = deque(model.init_states())
    seen.update(dq)
    check_domains = getattr(model, "check_domains", None)
    while dq and len(seen) < max_states:
        s = dq.popleft()
        if model.terminal(s):
            continue
        for a in model.actions:
            for args in a.domain:
                try:
                    if not a.guard(s, args):
                        continue
                    t1 = a.apply(copy.copy(s), args)
                    t2 = a.apply(s, args)
                except Exception as e:  # noqa: BLE001 - foreign code: one line, not a traceback
                    raise PluginError(f"plugin {who}: {a.label(args)} raised "
                                      f"{type(e).__name__}: {e}") from None
                if type(t1) is not type(s):
                    raise PluginError(f"plugin {who}: {a.label(args)} returns a "
                                      f"{type(t1).__name__}, not this design's state")
                if t1 != t2:
                    raise PluginError(f"plugin {who}: {a.label(args)} is not deterministic: "
                                      "two applications from the same state differ")
                extra = changed_fields(s, t1) - a.modifies
                if extra:
                    raise PluginError(f"plugin {who}: {a.label(args)} changes "
                                      f"{', '.join(sorted(extra))}, not in its modifies "
                                      f"({', '.join(sorted(a.modifies))})")
                if check_domains is not None:
                    bad = check_domains(t1)
                    if bad:
                        raise PluginError(f"plugin {who}: {a.label(args)} leaves {bad}")
                if t1 not in seen:
                    seen.add(t1)
                    dq.append(t1)
