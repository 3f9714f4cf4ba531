"""Design presets: TOML files naming one value per axis, the bounds, and the expected
results (configs/*.toml). Every problem is a :class:`ConfigError` whose message names
the file and the key."""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .axes import BOUNDS
from .registry import AXES

OUTCOMES = ("holds", "violated")
TOP_KEYS = {"name", "description", "axes", "bounds", "expect", "plugins", "notes"}


class ConfigError(Exception):
    """A preset or an override is wrong; the message says where and what."""


@dataclass
class Config:
    name: str
    description: str
    axes: dict[str, Any]
    bounds: dict[str, int]
    expect_states: int | None = None
    expect_verdicts: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return self.path or f"preset {self.name}"


def configs_dir() -> Path:
    """The built-in presets: ``configs/`` next to the package (an editable install, as
    the README sets up)."""
    return Path(__file__).resolve().parents[2] / "configs"


def builtin_presets() -> list[str]:
    d = configs_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def load_preset(name_or_path: str) -> Config:
    """A built-in preset by name, or a TOML file by path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or "/" in name_or_path:
        return load_file(p)
    cand = configs_dir() / f"{name_or_path}.toml"
    if not cand.exists():
        known = ", ".join(builtin_presets()) or "none found"
        raise ConfigError(f"unknown preset {name_or_path!r} (built-in presets: {known})")
    return load_file(cand)


def load_file(path: Path) -> Config:
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML: {e}") from None
    plugins = data.get("plugins", [])
    if isinstance(plugins, list) and all(isinstance(p, str) for p in plugins):
        # A preset's plug-ins add the axis values it names: load them first,
        # relative to the preset file.
        from ..plugins import PluginError, load

        for i, p in enumerate(plugins):
            try:
                ident = load(p, relative_to=path.parent)
            except PluginError as e:
                raise ConfigError(f"{where}: plugins[{i}]: {e}") from None
            plugins[i] = ident["file"]
    return from_dict(data, where, default_name=path.stem)


def from_dict(data: dict[str, Any], where: str, default_name: str = "custom") -> Config:
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))} "
                          f"(allowed: {', '.join(sorted(TOP_KEYS))})")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"{where}: name: must be a non-empty string without '/'")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ConfigError(f"{where}: description: must be a string")
    axes_raw = _table(data, "axes", where)
    axes: dict[str, Any] = {}
    for key, v in axes_raw.items():
        if key not in AXES:
            raise ConfigError(f"{where}: [axes] {key}: unknown axis "
                              f"(known: {', '.join(AXES)})")
        axes[key] = parse_axis_value(key, v, f"{where}: [axes] {key}")
    missing = [a for a in AXES if a not in axes and AXES[a].origin == "built-in"]
    if missing:
        raise ConfigError(f"{where}: [axes] missing {', '.join(missing)}: a preset names one "
                          "value per axis")
    for a, ax in AXES.items():
        if a not in axes:
            axes[a] = next(iter(ax.values))  # a plug-in axis defaults to its first value
    bounds_raw = _table(data, "bounds", where)
    bounds: dict[str, int] = {}
    for key, v in bounds_raw.items():
        if key not in BOUNDS:
            raise ConfigError(f"{where}: [bounds] {key}: unknown bound "
                              f"(known: {', '.join(BOUNDS)})")
        bounds[key] = parse_bound(key, v, f"{where}: [bounds] {key}")
    missing = [b for b in BOUNDS if b not in bounds]
    if missing:
        raise ConfigError(f"{where}: [bounds] missing {', '.join(missing)}")
    expect = _table(data, "expect", where, required=False)
    unknown = set(expect) - {"states", "verdicts"}
    if unknown:
        raise ConfigError(f"{where}: [expect] unknown key(s) {', '.join(sorted(unknown))}")
    states = expect.get("states")
    if states is not None and (not isinstance(states, int) or isinstance(states, bool)
                               or states <= 0):
        raise ConfigError(f"{where}: [expect] states: must be a positive integer")
    verdicts_raw = expect.get("verdicts", {})
    if not isinstance(verdicts_raw, dict):
        raise ConfigError(f"{where}: [expect.verdicts]: must be a table")
    verdicts: dict[str, str] = {}
    from .. import properties  # here: properties import the model package

    for prop, out in verdicts_raw.items():
        if prop not in properties.REGISTRY:
            raise ConfigError(f"{where}: [expect.verdicts] {prop}: unknown property (a typo "
                              "would lose this pin; see gmemcheck list)")
        if out not in OUTCOMES:
            raise ConfigError(f"{where}: [expect.verdicts] {prop}: must be one of "
                              f"{', '.join(OUTCOMES)}, got {out!r}")
        verdicts[prop] = out
    notes = data.get("notes", {})
    if not isinstance(notes, dict) or not all(isinstance(v, str) for v in notes.values()):
        raise ConfigError(f"{where}: [notes]: must be a table of strings")
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"{where}: plugins: must be a list of file names")
    return Config(name, desc, axes, bounds, states, verdicts, dict(notes), list(plugins),
                  None if where.startswith("preset ") else where)


def _table(data: dict[str, Any], key: str, where: str, required: bool = True) -> dict[str, Any]:
    v = data.get(key)
    if v is None:
        if required:
            raise ConfigError(f"{where}: missing table [{key}]")
        return {}
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: {key}: must be a table")
    return v


def parse_axis_value(name: str, v: Any, where: str, text: bool = False) -> Any:
    """A value of axis ``name``: TOML types as they are (``"true"`` is not a bool);
    ``text``: a ``--set`` string, parsed."""
    ax = AXES[name]
    if ax.kind == "bool":
        if text and isinstance(v, str) and v.lower() in ("true", "false"):
            v = v.lower() == "true"
        if not isinstance(v, bool):
            raise ConfigError(f"{where}: must be true or false, got {v!r}")
        return v
    if ax.kind == "set":
        if text and isinstance(v, str):
            # ``--set unexpected_refs=`` (empty) is the empty set; ``[]``, ``none`` and
            # an empty name inside a list are refused (unknown value / empty name)
            v = [x.strip() for x in v.split(",")] if v.strip() else []
            if "" in v:
                raise ConfigError(f"{where}: empty name in the list (write "
                                  f"{name}= for none)")
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{where}: must be a list of names")
        bad = [x for x in v if x not in ax.options]
        if bad:
            raise ConfigError(f"{where}: unknown value(s) {', '.join(bad)} "
                              f"(expected any of: {', '.join(ax.options)})")
        return tuple(sorted(set(v)))
    if not isinstance(v, str) or v not in ax.values:
        raise ConfigError(f"{where}: unknown value {v!r} (expected {ax.describe_values()})")
    return v


def parse_bound(name: str, v: Any, where: str, text: bool = False) -> int:
    """A value of bound ``name``: a TOML integer (not ``"2"``); ``text``: a ``--set``
    string, parsed."""
    if text and isinstance(v, str):
        try:
            v = int(v)
        except ValueError:
            raise ConfigError(f"{where}: must be an integer, got {v!r}") from None
    if not isinstance(v, int) or isinstance(v, bool):
        raise ConfigError(f"{where}: must be an integer, got {v!r}")
    if v not in BOUNDS[name]:
        b = BOUNDS[name]
        allowed = (f"powers of two from {b[0]} to {b[-1]}" if name == "pages_per_huge"
                   else f"{b[0]} to {b[-1]}")
        raise ConfigError(f"{where}: {v!r} is not supported (allowed: {allowed})")
    return v


def apply_overrides(cfg: Config, sets: list[str]) -> Config:
    """``--set KEY=VALUE`` (repeatable), validated like the file. A changed bound makes
    the pinned state count inapplicable; a changed axis makes the pinned verdicts
    inapplicable too."""
    if not sets:
        return cfg
    out = copy.deepcopy(cfg)
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, val = (x.strip() for x in item.split("=", 1))
        key = key.removeprefix("axes.").removeprefix("bounds.")
        where = f"--set {key}"
        if key in AXES:
            out.axes[key] = parse_axis_value(key, val, where, text=True)
        elif key in BOUNDS:
            out.bounds[key] = parse_bound(key, val, where, text=True)
        else:
            raise ConfigError(f"{where}: unknown key (axes: {', '.join(AXES)}; bounds: "
                              f"{', '.join(BOUNDS)})")
        out.overrides[key] = val
    if set(out.overrides) & set(BOUNDS) or set(out.overrides) & set(AXES):
        out.expect_states = None
    if set(out.overrides) & set(AXES):
        out.expect_verdicts = {}
    return out
