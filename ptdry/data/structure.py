"""Elements: arrays and tensors, alone or nested in tuples, lists and dicts — one set of tools.

A dataset's element is a *leaf* (a NumPy array or scalar, a torch tensor, a TensorFlow tensor,
a Python number) or a tuple / list / dict of elements. A *batch* is an element whose leaves
share a leading dimension. These functions walk that structure the same way for every
framework, importing torch or TensorFlow only when such a value is in hand (never to check a
type: :func:`framework` looks at ``sys.modules``).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

import numpy as np

from ptdry.errors import DataError

__all__ = [
    "BACKENDS",
    "batch_length",
    "convert",
    "framework",
    "map_leaves",
    "nbytes",
    "row",
    "slice_rows",
    "stack",
    "take_rows",
]

#: The frameworks a Dataset's elements can be converted to.
BACKENDS = ("numpy", "torch", "tf")


def framework(leaf: Any) -> str | None:
    """``"numpy"``, ``"torch"``, ``"tf"`` or None (a Python value, or not a leaf at all)."""
    if isinstance(leaf, (np.ndarray, np.generic)):
        return "numpy"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(leaf, torch.Tensor):
        return "torch"
    tf = sys.modules.get("tensorflow")
    if tf is not None and type(leaf).__module__.startswith("tensorflow") and tf.is_tensor(leaf):
        return "tf"
    return None


def _is_container(value: Any) -> bool:
    return isinstance(value, (tuple, list, dict))


def _rebuild(like: Any, items: Any) -> Any:
    """A container of ``like``'s type (named tuples included) holding ``items``."""
    if isinstance(like, dict):
        return type(like)(items) if type(like) is not dict else dict(items)
    if isinstance(like, tuple) and hasattr(like, "_fields"):
        return type(like)(*items)
    return type(like)(items)


def map_leaves(fn: Callable[[Any], Any], element: Any) -> Any:
    """``element`` with ``fn`` applied to every leaf; containers keep their type."""
    if isinstance(element, dict):
        return _rebuild(element, [(k, map_leaves(fn, v)) for k, v in element.items()])
    if isinstance(element, (tuple, list)):
        return _rebuild(element, [map_leaves(fn, v) for v in element])
    return fn(element)


def leaves(element: Any) -> list[Any]:
    """The leaves of ``element`` in order."""
    if isinstance(element, dict):
        return [x for v in element.values() for x in leaves(v)]
    if isinstance(element, (tuple, list)):
        return [x for v in element for x in leaves(v)]
    return [element]


def _leaf_length(leaf: Any) -> int:
    shape = getattr(leaf, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] is not None:
        return int(shape[0])
    if isinstance(leaf, (str, bytes)) or not hasattr(leaf, "__len__"):
        raise DataError(f"a batch needs arrays with a leading dimension; found {type(leaf).__qualname__} {leaf!r:.60}")
    return len(leaf)


def batch_length(batch: Any, what: str = "batch") -> int:
    """Rows in ``batch`` (the leading dimension its leaves share).

    Raises:
        DataError: the leaves disagree or one has no leading dimension.
    """
    lengths = {_leaf_length(leaf) for leaf in leaves(batch)}
    if len(lengths) != 1:
        raise DataError(
            f"the arrays of a {what} have different lengths {sorted(lengths)}; expected one row per sample in each"
        )
    return lengths.pop()


def row(batch: Any, i: int) -> Any:
    """Row ``i`` of ``batch`` (a view for arrays and tensors)."""
    return map_leaves(lambda leaf: leaf[i], batch)


def slice_rows(batch: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of ``batch`` (views, no copy)."""
    return map_leaves(lambda leaf: leaf[start:stop], batch)


def take_rows(batch: Any, indices: np.ndarray) -> Any:
    """The rows ``indices`` of ``batch``, in that order (one gather per leaf)."""

    def take(leaf: Any) -> Any:
        kind = framework(leaf)
        if kind == "torch":
            import torch

            return leaf[torch.from_numpy(np.ascontiguousarray(indices, dtype=np.int64))]
        if kind == "tf":
            import tensorflow as tf

            return tf.gather(leaf, indices)
        if isinstance(leaf, (list, tuple)):
            return [leaf[int(i)] for i in indices]
        return leaf[indices]

    return map_leaves(take, batch)


def stack(elements: Sequence[Any], backend: str | None = None) -> Any:
    """One batch from equal-structured ``elements``: each leaf stacked along a new first axis.

    Leaves are stacked with their own framework; Python numbers and strings become a NumPy
    array, or a tensor of ``backend`` when one is given (a torch dataset's labels).

    Raises:
        DataError: no elements, or elements of different structure or shape.
    """
    if not elements:
        raise DataError("cannot make a batch of no elements")
    first = elements[0]
    if isinstance(first, dict):
        try:
            return _rebuild(first, [(k, stack([e[k] for e in elements], backend)) for k in first])
        except (KeyError, TypeError):
            raise DataError(f"elements of one batch have different keys: {sorted(first)} and others") from None
    if isinstance(first, (tuple, list)):
        if any(not isinstance(e, (tuple, list)) or len(e) != len(first) for e in elements):
            raise DataError(f"elements of one batch have different structures (the first has {len(first)} parts)")
        return _rebuild(first, [stack([e[i] for e in elements], backend) for i in range(len(first))])
    kind = framework(first) or backend
    try:
        if kind == "torch":
            import torch

            if framework(first) == "torch":
                return torch.stack(list(elements))
            return torch.as_tensor(np.asarray(elements))
        if kind == "tf":
            import tensorflow as tf

            return tf.stack(list(elements))
        return np.stack([np.asarray(e) for e in elements])
    except (ValueError, RuntimeError, TypeError) as exc:
        shapes = sorted({str(tuple(getattr(e, "shape", ()))) for e in elements})
        raise DataError(f"cannot stack elements into a batch (shapes {', '.join(shapes)}): {exc}") from None


def concat(batches: Sequence[Any]) -> Any:
    """Batches joined along their first axis."""
    first = batches[0]
    if isinstance(first, dict):
        return _rebuild(first, [(k, concat([b[k] for b in batches])) for k in first])
    if isinstance(first, (tuple, list)):
        return _rebuild(first, [concat([b[i] for b in batches]) for i in range(len(first))])
    kind = framework(first)
    if kind == "torch":
        import torch

        return torch.cat(list(batches))
    if kind == "tf":
        import tensorflow as tf

        return tf.concat(list(batches), 0)
    return np.concatenate([np.asarray(b) for b in batches])


def nbytes(element: Any) -> int:
    """Bytes held by the leaves of ``element`` (Python values count as 8)."""
    total = 0
    for leaf in leaves(element):
        size = getattr(leaf, "nbytes", None)
        kind = framework(leaf)
        if kind == "torch":
            size = leaf.numel() * leaf.element_size()
        elif kind == "tf":
            size = leaf.shape.num_elements() * leaf.dtype.size
        total += int(size) if isinstance(size, (int, np.integer)) else 8
    return total


def _to_numpy(leaf: Any) -> Any:
    kind = framework(leaf)
    if kind == "numpy":
        return leaf
    if kind == "torch":
        return leaf.detach().cpu().numpy()  # shares memory for a CPU tensor
    if kind == "tf":
        return leaf.numpy()
    return np.asarray(leaf)


def _to_torch(leaf: Any) -> Any:
    import torch

    kind = framework(leaf)
    if kind == "torch":
        return leaf
    if kind == "tf":
        leaf = leaf.numpy()
    array = np.asarray(leaf)
    if array.dtype.kind in "USO":
        raise DataError(f"a {array.dtype} value cannot become a torch tensor; map it to numbers first")
    if not array.flags.writeable:  # torch refuses to share read-only memory
        array = array.copy()
    return torch.from_numpy(array) if array.ndim else torch.as_tensor(array)


def _to_tf(leaf: Any) -> Any:
    import tensorflow as tf

    kind = framework(leaf)
    if kind == "tf":
        return leaf
    if kind == "torch":
        leaf = leaf.detach().cpu().numpy()
    return tf.convert_to_tensor(leaf)


_CONVERTERS = {"numpy": _to_numpy, "torch": _to_torch, "tf": _to_tf}


def convert(element: Any, backend: str) -> Any:
    """``element`` with every leaf a ``backend`` value (``"numpy"``, ``"torch"`` or ``"tf"``).

    NumPy ↔ torch share memory where they can (CPU tensors, writable arrays); TensorFlow
    copies.
    """
    return map_leaves(_CONVERTERS[backend], element)
