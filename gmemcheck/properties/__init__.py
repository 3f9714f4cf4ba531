"""What must hold: the invariants, liveness properties and reachability witnesses the
December 2024 discussion turns on (DOMAIN.md §4), one module per concern.

``for_model(model)`` returns every property that applies to the model's design, in
a fixed order; ``select(model, names)`` picks some by name (an unknown name is an
error naming the known ones). A property that does not apply to a design (an RMP
property on TDX) is absent for it, and shown as n/a in the matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..checker.core import Property
from . import corners, data, liveness, mapping, ownership, preparedness

Factory = Callable[[Any], Property | None]

# name -> factory(model) -> Property | None (None: not applicable to this design)
REGISTRY: dict[str, Factory] = {}
# name -> the plug-in file that registered it (built-in properties are absent)
ORIGIN: dict[str, str] = {}
for _mod in (ownership, mapping, preparedness, data, liveness, corners):
    for _name, _fac in _mod.PROPERTIES.items():
        if _name in REGISTRY:
            raise ValueError(f"duplicate property {_name}")
        REGISTRY[_name] = _fac

GOALS = [n for m in (ownership, mapping, preparedness, data, liveness) for n in m.PROPERTIES]
CORNERS = list(corners.PROPERTIES)
# corners that exist only at some sizes (pages_per_huge >= 4), not at the presets' own:
# the matrix cannot reach them; tests/test_nonuniform.py does
SIZE_WITNESSES = set(corners.SIZE_WITNESSES)


class UnknownProperty(Exception):
    pass


def register(name: str, factory: Factory, origin: str) -> None:
    """Add a property (plug-ins); a name clash is an error."""
    if name in REGISTRY:
        raise ValueError(f"property {name!r} already exists")
    REGISTRY[name] = factory
    ORIGIN[name] = origin
    GOALS.append(name)


def for_model(model: Any) -> list[Property]:
    out = []
    for _name, fac in REGISTRY.items():
        p = fac(model)
        if p is not None:
            out.append(p)
    return out


def select(model: Any, names: Iterable[str] | None) -> list[Property]:
    allp = {p.name: p for p in for_model(model)}
    if not names:
        return list(allp.values())
    out = []
    for n in names:
        if n not in REGISTRY:
            raise UnknownProperty(f"unknown property {n!r} (known: {', '.join(REGISTRY)})")
        if n in allp:
            out.append(allp[n])
    return out


def applicable(model: Any) -> set[str]:
    return {p.name for p in for_model(model)}
