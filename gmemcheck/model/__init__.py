"""The guest_memfd model: kernel semantics only (DOMAIN.md §1-§2), one value per
design axis. ``build(load_preset("rfc-thp"))`` gives an explicit-state model."""

from . import axes as _axes  # noqa: F401  (registers axes and steps)
from .build import MODEL_NAME, GmemModel, build
from .config import Config, ConfigError, apply_overrides, builtin_presets, load_preset

__all__ = ["MODEL_NAME", "Config", "ConfigError", "GmemModel", "apply_overrides", "build",
           "builtin_presets", "load_preset"]
