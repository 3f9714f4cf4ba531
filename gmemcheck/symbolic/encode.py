"""Between explicit states and symbolic ones: constrain a symbolic state to equal a
concrete :class:`GmemState`, and decode a solver model back into one (canonically: the
scalars of an idle vCPU, VMM or absent fault are pinned to zero)."""

from __future__ import annotations

from typing import Any

import z3

from ..model.state import GmemState
from .space import PAGE_FIELDS, REGION_FIELDS, SCALARS, SymState, value_of
from .work import FAULT_CODES, FAULT_NAMES, PC_CODES, PC_NAMES, VM_IDLE, VM_POPULATE, VM_PUNCH


def scalars_of(s: GmemState) -> dict[str, Any]:
    vc = s.vcpu
    vm = s.vmm
    out: dict[str, Any] = {
        "spec": s.spec, "launched": s.launched,
        "vc_on": bool(vc), "vc_gfn": vc[0] if vc else 0, "vc_stale": bool(vc and vc[1]),
        "vm_op": VM_IDLE, "vm_lo": 0, "vm_hi": 0, "vm_pc": 0, "vm_ret": 0,
        "f_kind": FAULT_CODES[s.fault[0]] if s.fault else 0,
        "f_pfn": s.fault[1] if s.fault else 0,
    }
    if vm and vm[0] == "punch":
        out.update(vm_op=VM_PUNCH, vm_lo=vm[1], vm_hi=vm[2], vm_pc=PC_CODES[vm[3]],
                   vm_ret=vm[4])
    elif vm:
        out.update(vm_op=VM_POPULATE, vm_lo=vm[1])
    return out


def equals(sym: SymState, s: GmemState) -> Any:
    """The constraint ``sym == s``."""
    parts = []
    for name in PAGE_FIELDS:
        arr = sym.f[name]
        for i, v in enumerate(getattr(s, name)):
            parts.append(arr[i] == v)
    for name in REGION_FIELDS:
        arr = sym.f[name]
        for i, v in enumerate(getattr(s, name)):
            parts.append(arr[i] == v)
    for name, v in scalars_of(s).items():
        parts.append(sym.f[name] == v)
    for c in sym.space.extra:
        v = getattr(s, c.name)
        if c.scope in ("page", "region"):
            arr = sym.f[c.name]
            parts += [arr[i] == c.enc(x) for i, x in enumerate(v)]
        else:
            parts.append(sym.f[c.name] == c.enc(v))
    return z3.And(parts)


def canonical(sym: SymState) -> Any:
    """Constraints making the symbolic encoding of a state unique."""
    f = sym.f
    return z3.And(
        z3.Implies(z3.Not(f["vc_on"]), z3.And(f["vc_gfn"] == 0, z3.Not(f["vc_stale"]))),
        z3.Implies(f["vm_op"] == VM_IDLE, z3.And(f["vm_lo"] == 0, f["vm_hi"] == 0,
                                                 f["vm_pc"] == 0, f["vm_ret"] == 0)),
        z3.Implies(f["vm_op"] == VM_POPULATE, z3.And(f["vm_hi"] == 0, f["vm_pc"] == 0,
                                                     f["vm_ret"] == 0)),
        z3.Implies(f["f_kind"] == 0, f["f_pfn"] == 0),
        *extra_in_domain(sym),
    )


def extra_in_domain(sym: SymState) -> list[Any]:
    """Every plug-in field of ``sym`` within its declared domain."""
    parts = []
    for c in sym.space.extra:
        if c.sort == "bool":
            continue
        x = sym.f[c.name]
        if c.scope in ("page", "region") and hasattr(x, "items"):
            parts += [c.in_domain(e) for e in x.items]
        elif c.scope not in ("page", "region"):
            parts.append(c.in_domain(x))
    return parts


def _val(m: z3.ModelRef, e: Any) -> Any:
    return value_of(m.eval(e, model_completion=True))


def decode(m: z3.ModelRef, sym: SymState, pages: int, regions: int,
           state_type: Any = None) -> GmemState:
    f = sym.f
    vals: dict[str, Any] = {}
    for name in PAGE_FIELDS:
        vals[name] = [_val(m, f[name][i]) for i in range(pages)]
    for name in REGION_FIELDS:
        vals[name] = [_val(m, f[name][i]) for i in range(regions)]
    for name in SCALARS:
        vals[name] = _val(m, f[name])
    for c in sym.space.extra:
        n = pages if c.scope == "page" else regions
        vals[c.name] = ([_val(m, f[c.name][i]) for i in range(n)]
                        if c.scope in ("page", "region") else _val(m, f[c.name]))
    return state_of(vals, sym.space.extra, state_type)


def state_of(vals: dict[str, Any], extra: tuple[Any, ...] = (), state_type: Any = None
             ) -> GmemState:
    """The explicit state whose per-page, per-region and scalar encoding is ``vals``
    (the inverse of :func:`scalars_of` and the field arrays); ``extra``: the plug-in
    fields' codecs, ``state_type`` the design's state type that has them."""
    base = _builtin_state(vals)
    if not extra:
        return base
    more = []
    for c in extra:
        v = vals[c.name]
        more.append(tuple(c.dec(x) for x in v) if c.scope in ("page", "region")
                    else c.dec(v))
    return state_type(*base, *more)


def _builtin_state(vals: dict[str, Any]) -> GmemState:
    f: dict[str, Any] = {}
    for name, sort in PAGE_FIELDS.items():
        f[name] = tuple(bool(x) for x in vals[name]) if sort == "bool" else tuple(vals[name])
    for name in REGION_FIELDS:
        f[name] = tuple(bool(x) for x in vals[name])
    vcpu = (vals["vc_gfn"], 1 if vals["vc_stale"] else 0) if vals["vc_on"] else ()
    if vals["vm_op"] == VM_PUNCH:
        vmm: tuple[Any, ...] = ("punch", vals["vm_lo"], vals["vm_hi"],
                                PC_NAMES[vals["vm_pc"]], vals["vm_ret"])
    elif vals["vm_op"] == VM_POPULATE:
        vmm = ("populate", vals["vm_lo"])
    else:
        vmm = ()
    fault = (FAULT_NAMES[vals["f_kind"]], vals["f_pfn"]) if vals["f_kind"] else ()
    return GmemState(spec=vals["spec"], vcpu=vcpu, vmm=vmm, launched=bool(vals["launched"]),
                     fault=fault, **f)
