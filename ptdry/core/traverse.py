"""One memoized walk over definition trees; ``definition()``, build, copy, hash and iteration
are all written with it.

A tree is made of *nodes* (``ObjectDef``\\ s, or Modules when a definition is taken) whose
arguments hold plain values, containers (lists, tuples, dicts) and more nodes. A node reached
twice (the same object) is handled once and its result shared, which is how a shared
definition node builds one shared object (as in Fiddle). Paths name where a value sits
(``Session.trainer.model.args[0]``), for error messages.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["Walk", "arg_path", "key_path"]

NodeFn = Callable[["Walk", Any, str], Any]
LeafFn = Callable[[Any, str], Any]


def arg_path(path: str, i: int) -> str:
    """The path of positional argument ``i`` of the node at ``path``."""
    return f"{path}.args[{i}]"


def key_path(path: str, key: Any) -> str:
    """The path of entry ``key`` of the dict (or keyword argument) at ``path``."""
    return f"{path}.{key}" if isinstance(key, str) else f"{path}[{key!r}]"


class Walk:
    """Map a tree to a new one: ``walk(value, path)``.

    Args:
        node_types: what counts as a node.
        node: ``node(walk, value, path)`` makes the result for a node, walking its arguments
            with :meth:`args` / :meth:`kwargs` (or ``walk(...)``); called once per node.
        leaf: ``leaf(value, path)`` for everything else that is not a list, tuple or dict;
            default: the value itself.
        again: ``again(value, path)`` each time an already handled node is reached again.
        sort_dicts: rebuild dicts with their items sorted by ``sort_key(key)``.
        sort_key: how dict keys sort when ``sort_dicts``.
    """

    def __init__(
        self,
        node_types: tuple[type, ...],
        node: NodeFn,
        leaf: LeafFn | None = None,
        *,
        again: LeafFn | None = None,
        sort_dicts: bool = False,
        sort_key: Callable[[Any], Any] = repr,
    ) -> None:
        self.node_types = node_types
        self.node = node
        self.leaf = leaf
        self.again = again
        self.sort_dicts = sort_dicts
        self.sort_key = sort_key
        self.memo: dict[int, Any] = {}
        self._alive: list[Any] = []  # inputs stay alive while walked, so ids stay unique

    def __call__(self, value: Any, path: str) -> Any:
        if isinstance(value, self.node_types):
            key = id(value)
            if key in self.memo:
                if self.again is not None:
                    self.again(value, path)
                return self.memo[key]
            self._alive.append(value)
            out = self.node(self, value, path)
            self.memo[key] = out
            return out
        if isinstance(value, (list, tuple)):
            items = [self(v, f"{path}[{i}]") for i, v in enumerate(value)]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, dict):
            pairs = list(value.items())
            if self.sort_dicts:
                pairs.sort(key=lambda kv: self.sort_key(kv[0]))
            leaf = self.leaf
            return {
                (k if leaf is None else leaf(k, f"{path}<key {k!r}>")): self(v, key_path(path, k)) for k, v in pairs
            }
        return value if self.leaf is None else self.leaf(value, path)

    def remember(self, value: Any, result: Any) -> None:
        """Record ``result`` for node ``value`` before its arguments are walked (a node
        handler that creates its result first calls this, so references inside resolve)."""
        self._alive.append(value)
        self.memo[id(value)] = result

    def args(self, args: Any, path: str) -> tuple:
        """Walk positional arguments."""
        return tuple(self(a, arg_path(path, i)) for i, a in enumerate(args))

    def kwargs(self, kwargs: dict[str, Any], path: str, *, sort: bool = False) -> dict[str, Any]:
        """Walk keyword arguments (in key order when ``sort``)."""
        keys = sorted(kwargs) if sort else kwargs
        return {k: self(kwargs[k], key_path(path, k)) for k in keys}
