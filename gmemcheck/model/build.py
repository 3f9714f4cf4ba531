"""``build(config)``: the explicit-state model of one guest_memfd design."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..checker.core import Action
from . import actions as _actions  # noqa: F401  (registers the action builders)
from .config import Config
from .kernel import Kernel
from .registry import ACTION_BUILDERS, AXES
from .state import (
    CONTENT_NAMES,
    HOST_NAMES,
    NPT_NAMES,
    RMP_NAMES,
    GmemState,
    folio_heads,
    initial_state,
)

MODEL_NAME = "guest_memfd"


class GmemModel:
    """The explicit model: initial state, actions for the design, and rendering."""

    name = MODEL_NAME

    def __init__(self, cfg: Config, plugin_ids: list[dict[str, str]] | None = None) -> None:
        self.cfg = cfg
        self.k = Kernel(cfg.axes, cfg.bounds)
        self.plugin_ids = plugin_ids or []
        acts: list[Action] = []
        overrides: dict[str, Any] = {}
        for ax_name, ax in AXES.items():
            if ax.kind == "choice":
                overrides.update(ax.values[cfg.axes[ax_name]].actions)
        for name, builder in ACTION_BUILDERS.items():
            a = overrides.get(name, builder)(self.k)
            if a is not None:
                acts.append(a)
        self.actions: list[Action] = acts
        self.state_type = GmemState

    # ---------------------------------------------------------------- protocol
    def init_states(self) -> Iterable[GmemState]:
        return [initial_state(self.k.P, self.k.R, launched=False)]

    def terminal(self, s: GmemState) -> bool:
        return bool(s.fault)

    def identity(self) -> Mapping[str, Any]:
        return {
            "model": MODEL_NAME,
            "preset": self.cfg.name,
            "axes": {k: list(v) if isinstance(v, tuple) else v for k, v in self.cfg.axes.items()},
            "bounds": dict(self.cfg.bounds),
            "plugins": list(self.plugin_ids),
        }

    def describe(self, s: GmemState) -> Mapping[str, str]:
        """Items a kernel developer reads in a trace; only the changed ones are shown
        after each step."""
        k = self.k
        out: dict[str, str] = {}
        heads = dict(folio_heads(s.order))
        for h, o in heads.items():
            flags = [f for f, on in (("uptodate", s.uptodate[h]), ("dirty", s.dirty[h])) if on]
            if k.axes["preparedness"] == "folio-private":
                bits = "".join("1" if s.private[i] else "0" for i in range(h, h + (1 << o)))
                flags.append(f"private={bits}")
            extra = k.extra_refs(s, h, h + (1 << o))
            if extra:
                flags.append(f"+{extra} ref")
            span = f"{h}" if o == 0 else f"{h}..{h + (1 << o) - 1}"
            out[f"folio@{h}"] = f"index {span} order {o}" + (f" {' '.join(flags)}" if flags else "")
        for i in range(k.P):
            if s.held[i] >= 0 and (i % (1 << s.held[i]) == 0):
                out[f"freed-but-referenced@{i}"] = f"order {s.held[i]}"
        for i in range(k.P):
            out[f"pfn {i} content"] = CONTENT_NAMES[s.content[i]]
        if k.snp:
            for i in range(k.P):
                out[f"pfn {i} rmp"] = RMP_NAMES[s.rmp[i]]
            for r in range(k.R):
                out[f"directmap region {r}"] = "4K" if s.dm4k[r] else "2M"
        if k.axes["preparedness"] == "bitmap":
            out["prepared bitmap"] = "".join("1" if b else "0" for b in s.prepared)
        for g in range(k.P):
            out[f"gfn {g} attr"] = "private" if s.attr[g] else "shared"
            out[f"gfn {g} npt"] = NPT_NAMES[s.npt[g]]
        if k.axes["conversion"] == "in-place":
            for i in range(k.P):
                out[f"index {i} host"] = HOST_NAMES[s.host[i]]
        if any(s.leaked):
            out["leaked pfns"] = ",".join(str(i) for i in range(k.P) if s.leaked[i])
        out["speculative ref"] = "none" if s.spec < 0 else f"pfn {s.spec}"
        out["vcpu"] = "idle" if not s.vcpu else (
            f"in fault on gfn {s.vcpu[0]} holding a folio ref" + (" (stale)" if s.vcpu[1] else ""))
        out["vmm"] = "idle" if not s.vmm else " ".join(str(x) for x in s.vmm[:4])
        out["launched"] = "yes" if s.launched else "no"
        out["punched"] = "".join("1" if b else "0" for b in s.punched)
        out["fault"] = "none" if not s.fault else f"{s.fault[0]} at pfn {s.fault[1]}"
        return out


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
