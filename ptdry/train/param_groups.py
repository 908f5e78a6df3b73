"""Parameter groups by name: which parameters of a network each optimizer group takes.

``Optimizer(..., groups=[{"params": "backbone", "lr": 1e-4}, {"params": "head"}])`` names
parameters, never holds them, so the definition stays plain JSON (and queryable). Each
``"params"`` entry — a string or a list of strings — is, in this order of precedence:

- a submodule path of the net (``"backbone"``, ``"layers.0"``): all parameters under it;
- a parameter name (``"head.bias"``);
- ``"re:<regex>"``: parameter names the regular expression matches entirely;
- a glob with ``*``, ``?`` or ``[`` (``"*.bias"``, ``"encoder.*.weight"``).

Every parameter of the net must land in exactly one group, and every entry must match
something; otherwise :class:`~ptdry.errors.ConfigError` names the parameters concerned.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Mapping, Sequence

from ptdry.errors import ConfigError

__all__ = ["check_groups", "resolve_groups"]

_SHOWN = 8


def check_groups(groups: Sequence[Any]) -> list[dict[str, Any]]:
    """Validate the shape of ``groups`` (dicts with a ``"params"`` string or list of strings);
    returns them as a list of dicts."""
    if isinstance(groups, (str, bytes, Mapping)) or not isinstance(groups, Sequence) or not groups:
        raise ConfigError(
            "groups must be a non-empty list of dicts like [{'params': 'backbone', 'lr': 1e-4}, "
            f"{{'params': 'head'}}]; received {groups!r}"
        )
    out = []
    for i, group in enumerate(groups):
        if not isinstance(group, Mapping) or "params" not in group:
            raise ConfigError(f"groups[{i}] must be a dict with a 'params' key (a submodule path or a pattern); received {group!r}")
        patterns = _patterns(group["params"], i)
        for key in group:
            if not isinstance(key, str):
                raise ConfigError(f"groups[{i}] keys must be strings (optimizer argument names); received {key!r}")
        out.append({**group, "params": patterns if isinstance(group["params"], list) else patterns[0]})
    return out


def _patterns(value: Any, i: int) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(p, str) and p for p in items):
        raise ConfigError(
            f"groups[{i}]['params'] must be a non-empty string or list of strings (submodule paths, "
            f"parameter names, globs or 're:' regexes); received {value!r}"
        )
    for p in items:
        if p.startswith("re:"):
            try:
                re.compile(p[3:])
            except re.error as exc:
                raise ConfigError(f"groups[{i}]['params']: invalid regular expression {p[3:]!r} ({exc})") from None
    return list(items)


def _matches(pattern: str, names: list[str], modules: set[str]) -> list[str]:
    if pattern in modules:
        return [n for n in names if n.startswith(pattern + ".")]
    if pattern in names:
        return [pattern]
    if pattern.startswith("re:"):
        regex = re.compile(pattern[3:])
        return [n for n in names if regex.fullmatch(n)]
    if any(c in pattern for c in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return []


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


def resolve_groups(net: Any, groups: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """The torch parameter groups of ``net`` (``[{"params": [tensors], **options}]``) and the
    parameter names of each group.

    Raises:
        ConfigError: an entry matches nothing, a parameter is in two groups, or a parameter
            is in none.
    """
    named = dict(net.named_parameters())
    names = list(named)
    modules = {n for n, _ in net.named_modules() if n}
    owner: dict[str, int] = {}
    chosen: list[list[str]] = []
    for i, group in enumerate(check_groups(groups)):
        picked: dict[str, None] = {}
        for pattern in _patterns(group["params"], i):
            found = _matches(pattern, names, modules)
            if not found:
                raise ConfigError(
                    f"groups[{i}]['params'] entry {pattern!r} matches no submodule or parameter of the net; "
                    f"submodules: {_listed(sorted(modules)) or 'none'}; parameters: {_listed(names)}"
                )
            picked.update(dict.fromkeys(found))
        twice = [n for n in picked if n in owner]
        if twice:
            raise ConfigError(
                f"parameters in more than one group (groups[{owner[twice[0]]}] and groups[{i}]): {_listed(twice)}; "
                "each parameter must be in exactly one group"
            )
        owner.update(dict.fromkeys(picked, i))
        chosen.append(list(picked))
    left = [n for n in names if n not in owner]
    if left:
        raise ConfigError(
            f"parameters in no group: {_listed(left)}; each parameter must be in exactly one group "
            "(name their submodule in a group, e.g. {'params': 'head'}, or a pattern such as '*.bias')"
        )
    torch_groups = [
        {**{k: v for k, v in group.items() if k != "params"}, "params": [named[n] for n in picked]}
        for group, picked in zip(groups, chosen)
    ]
    return torch_groups, chosen
