"""Stable names for a Keras model's variables and its optimizer's, and exact loading of them.

Keras names layers with process-wide counters (``dense``, then ``dense_3`` in the next model
of the same process), so its variable paths change between two builds of one definition.
These paths do not: a layer is named after the attribute holding it (subclassed models), or
its own name when the user chose one, or else its class name numbered among its siblings
in order (``dense``, ``dense_1``, ... as Keras names them in a fresh process). A variable
is named by its own name within its layer (``kernel``, ``bias``, ``moving_mean``); a
layer's random-seed state (dropout) is ``seed_generator``. Optimizer variables are named
after the weight they belong to (``net.dense.kernel.momentum``), or their own name
(``iteration``, ``learning_rate``).
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

import numpy as np

from ptdry.core.state_loading import load_refusal

__all__ = ["check_arrays", "named_optimizer_variables", "named_variables"]


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def _is_auto_name(layer: Any) -> bool:
    base = _snake(type(layer).__name__)
    return layer.name == base or re.fullmatch(rf"{re.escape(base)}_\d+", layer.name) is not None


def _sublayer_names(layer: Any) -> list[tuple[str, Any]]:
    attrs: dict[int, str] = {}
    for key, value in vars(layer).items():
        if not key.startswith("_") and id(value) not in attrs:
            attrs[id(value)] = key
    out: list[tuple[str, Any]] = []
    counts: dict[str, int] = {}
    taken: set[str] = set()
    for sub in getattr(layer, "_layers", []):
        if type(sub).__name__ == "InputLayer":
            continue
        if id(sub) in attrs:
            name = attrs[id(sub)]
        elif not _is_auto_name(sub):
            name = sub.name
        else:
            base = _snake(type(sub).__name__)
            n = counts.get(base, 0)
            counts[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
        while name in taken:  # a chosen name equal to a numbered one: keep both, distinctly
            name += "_"
        taken.add(name)
        out.append((name.replace(".", "_"), sub))
    return out


def named_variables(layer: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, variable)`` for every variable of a Keras layer or model: weights,
    non-trainable weights (batch-norm statistics) and random-seed states, sublayers included,
    each variable once."""
    seen: set[int] = set()
    yield from _walk(layer, prefix, seen)


def _walk(layer: Any, prefix: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    own = [*getattr(layer, "_trainable_variables", []), *getattr(layer, "_non_trainable_variables", [])]
    names: set[str] = set()
    for i, v in enumerate(own):
        if id(v) in seen:
            continue
        seen.add(id(v))
        name = str(getattr(v, "name", "")).rpartition("/")[2].replace(".", "_") or f"variable_{i}"
        if name in names:
            name = f"{name}_{i}"
        names.add(name)
        yield prefix + name, v
    for i, sg in enumerate(getattr(layer, "_seed_generators", [])):
        if id(sg.state) not in seen:
            seen.add(id(sg.state))
            yield prefix + ("seed_generator" if i == 0 else f"seed_generator_{i}"), sg.state
    for name, sub in _sublayer_names(layer):
        yield from _walk(sub, f"{prefix}{name}.", seen)


def named_optimizer_variables(optimizer: Any, weights: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(path, variable)`` for an optimizer's variables: a slot of a weight is named
    ``<weight path>.<slot>`` (``net.dense.kernel.momentum``), others by their name
    (``iteration``, ``learning_rate``); ``weights`` maps weight paths to variables."""
    by_ref = {}
    for path, v in weights.items():
        ref = getattr(v, "path", None)
        if ref:
            by_ref[ref.replace("/", "_") + "_"] = path
    refs = sorted(by_ref, key=len, reverse=True)  # longest first: dense_1_... before dense_...
    out: list[tuple[str, Any]] = []
    taken: set[str] = set()
    for i, v in enumerate(optimizer.variables):
        name = str(v.name)
        ref = next((r for r in refs if name.startswith(r)), None)
        path = f"{by_ref[ref]}.{name[len(ref):]}" if ref else name.replace(".", "_")
        if path in taken:
            path = f"{path}_{i}"
        taken.add(path)
        out.append((prefix + path, v))
    return out


def check_arrays(owner: str, variables: Mapping[str, Any], state: Mapping[str, Any], strict: bool) -> None:
    """Raise :class:`StateDictError` (listing every problem) unless ``state`` (the keys of
    the variables' namespace) holds an array of the right shape and dtype for each variable
    and, when ``strict``, for every variable and nothing else."""
    missing = sorted(k for k in variables if k not in state) if strict else []
    unexpected = sorted(k for k in state if k not in variables) if strict else []
    mismatched = {}
    for key, var in variables.items():
        if key not in state:
            continue
        value = state[key]
        shape, dtype = tuple(var.shape), np.dtype(getattr(var.dtype, "name", str(var.dtype)))
        if not hasattr(value, "shape") or tuple(value.shape) != shape:
            got = tuple(value.shape) if hasattr(value, "shape") else type(value).__qualname__
            mismatched[key] = f"shape {got} where the model has {shape}"
        elif np.dtype(value.dtype) != dtype:
            mismatched[key] = f"dtype {np.dtype(value.dtype)} where the model has {dtype}"
    refusal = load_refusal(owner, missing, unexpected, mismatched, "model")
    if refusal is not None:
        raise refusal
