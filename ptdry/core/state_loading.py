"""How a Module loads a state: check every key first, then load — all or nothing.

:meth:`Module.load_state_dict <ptdry.core.module.Module.load_state_dict>` calls
:func:`state_problems` (missing and unexpected keys of what the base class owns, tensors of
the wrong shape, optimizer states that do not fit) and raises before anything changes; then
:func:`apply_state` gives each child its part: the child's own ``load_state_dict`` when its
class overrides it (the user's code decides what its keys mean), the base's loading
otherwise, and ``load_extra_state`` the module's own keys.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from ptdry.core.torch_kinds import is_torch_module
from ptdry.errors import StateDictError

__all__ = ["apply_state", "is_base_load", "state_problems"]


def _is_module(obj: Any) -> bool:
    return getattr(type(obj), "_dry_module", False) is True


def is_base_load(fn: Any) -> bool:
    """True for ``Module.load_state_dict`` itself (marked ``_dry_base``), not an override."""
    return getattr(fn, "_dry_base", False) is True


def state_problems(
    module: Any, expected: Mapping[str, Any], state: Mapping[str, Any], strict: bool
) -> StateDictError | None:
    """The error ``load_state_dict`` must raise for ``state``, or None if it fits.

    ``expected`` is what the base ``state_dict`` returns (the keys the base class owns).
    """
    if not isinstance(state, Mapping):
        return StateDictError(
            f"cannot load state into {type(module).__name__}: expected a mapping of key paths "
            f"(what state_dict() returns); received {type(state).__qualname__}"
        )
    missing = sorted(set(expected) - set(state)) if strict else []
    unexpected = sorted(set(state) - set(expected)) if strict else []
    mismatched = dict(_mismatches(module, state, ""))
    return load_refusal(type(module).__name__, missing, unexpected, mismatched, "tree")


def load_refusal(
    owner: str, missing: list[str], unexpected: list[str], mismatched: Mapping[str, str], built: str = "tree"
) -> StateDictError | None:
    """The all-or-nothing refusal listing every problem of a state (None if there is none):
    keys missing, unexpected, and mismatched (``{key: problem}``) for ``owner``."""
    if not (missing or unexpected or mismatched):
        return None
    lines = [f"cannot load state into {owner}: nothing was loaded"]
    if missing:
        lines.append(f"  missing keys ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    if mismatched:
        listed = "; ".join(f"{k}: {p}" for k, p in mismatched.items())
        lines.append(f"  mismatched keys ({len(mismatched)}): {listed}")
        lines.append(f"  the state comes from a {built} built differently (other constructor arguments?)")
    if missing or unexpected:
        lines.append("  pass strict=False to load the keys that match")
    return StateDictError("\n".join(lines), missing, unexpected, list(mismatched))


def _mismatches(module: Any, state: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    """``(key, problem)`` for values torch would reject: a parameter or buffer of another
    shape, an optimizer state for other parameter groups."""
    if not is_torch_module(module):
        yield from _child_mismatches(module, state, prefix, skip_torch=False)
        return
    for path, m in module.named_modules(prefix=prefix[:-1]):
        base = f"{path}." if path else ""
        persistent = {n: b for n, b in m._buffers.items() if n not in m._non_persistent_buffers_set}
        for name, tensor in [*m._parameters.items(), *persistent.items()]:
            given = state.get(base + name)
            if tensor is not None and hasattr(given, "shape") and tuple(given.shape) != tuple(tensor.shape):
                yield base + name, f"shape {tuple(given.shape)} where the model has {tuple(tensor.shape)}"
        if _is_module(m):  # a ptdry Module in a torch tree: what torch does not know
            yield from _child_mismatches(m, state, base, skip_torch=True)


def _child_mismatches(module: Any, state: Mapping[str, Any], prefix: str, skip_torch: bool) -> Iterator[tuple[str, str]]:
    for name, child in module.named_children():
        path = prefix + name
        if is_torch_module(child):
            if not skip_torch:
                yield from _mismatches(child, state, path + ".")
        elif _is_module(child):
            yield from _mismatches(child, state, path + ".")
        elif path in state and hasattr(child, "param_groups"):
            problem = _optimizer_mismatch(child, state[path])
            if problem:
                yield path, problem


def _optimizer_mismatch(optimizer: Any, given: Any) -> str | None:
    groups = given.get("param_groups") if isinstance(given, Mapping) else None
    if not isinstance(groups, list) or not all(isinstance(g, Mapping) for g in groups):
        return "not an optimizer state (no list of param_groups)"
    have = [len(g["params"]) for g in optimizer.param_groups]
    got = [len(g.get("params", ())) for g in groups]
    if have != got:
        return f"optimizer state for parameter groups of sizes {got} where the optimizer has {have}"
    return None


def apply_state(module: Any, state: Mapping[str, Any], strict: bool) -> None:
    """Load ``state`` (already checked by :func:`state_problems`) into ``module``'s tree."""
    if is_torch_module(module):
        _apply_torch(module, state, strict)
        return
    _apply_children(module, state, strict, skip_torch=False)


def _apply_children(module: Any, state: Mapping[str, Any], strict: bool, skip_torch: bool) -> None:
    own_keys = set(module.extra_state())
    parts: dict[str, dict[str, Any]] = {}
    extra: dict[str, Any] = {}
    for key, value in state.items():
        if key in own_keys:
            extra[key] = value
        else:
            head, _, rest = key.partition(".")
            parts.setdefault(head, {})[rest] = value
    for name, child in module.named_children():
        part = parts.get(name)
        if part is None or skip_torch and is_torch_module(child):
            continue
        if _is_module(child):
            if is_base_load(type(child).load_state_dict):
                apply_state(child, part, strict)
            else:  # the user's override decides what its keys mean
                child.load_state_dict(part, strict=strict)
        elif is_torch_module(child):
            child.load_state_dict(part, strict=False)  # checked already
        elif "" in part:  # an optimizer or scheduler, stored under its own name
            child.load_state_dict(part[""])
    if extra:
        module.load_extra_state(extra)


def _apply_torch(module: Any, state: Mapping[str, Any], strict: bool) -> None:
    """A Module that is also a ``torch.nn.Module``: torch restores parameters and buffers of
    the whole torch subtree; every ptdry Module in it then restores what torch does not know
    (optimizers, plain Modules, extra state) — the same split that ``state_dict`` makes."""
    import torch

    torch.nn.Module.load_state_dict(module, dict(state), strict=False)
    for path, m in torch.nn.Module.named_modules(module):
        if _is_module(m):
            prefix = f"{path}." if path else ""
            part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            _apply_children(m, part, strict, skip_torch=True)
