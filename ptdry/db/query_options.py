"""Check the sort and projection of a query as strictly as its filter.

A filter is checked by :func:`~ptdry.db.matcher.validate_filter`; a sort or a projection
reaches the server too, and MongoDB evaluates expressions in projections (``$function`` runs
JavaScript). ptdry sends only plain field paths: a sort is ``[(path, 1 | -1), …]``, a
projection ``{path: 0 | 1, …}`` or a list of paths to include.

Example:
    >>> validate_sort([("summary.val.accuracy.best", -1)])
    [('summary.val.accuracy.best', -1)]
    >>> validate_projection({"config": 1, "_id": 0})
    {'config': 1, '_id': 0}
"""

from __future__ import annotations

from typing import Any, Mapping

from ptdry.core.serialize import short_repr as _short
from ptdry.db.matcher import refuse_javascript
from ptdry.errors import SelectorError

__all__ = ["validate_projection", "validate_sort"]


def validate_sort(sort: Any) -> list[tuple[str, int]] | None:
    """``sort`` as a list of ``(field path, 1 or -1)`` pairs, or None for no sort.

    Raises:
        SelectorError: not such a list, a field path with ``$`` or an empty segment, or a
            direction other than 1 / -1.
    """
    if sort is None:
        return None
    refuse_javascript(sort, "sort")
    if isinstance(sort, (str, bytes, Mapping)) or not isinstance(sort, (list, tuple)):
        raise SelectorError(
            f"sort must be a list of (field, 1 or -1) pairs like [('created_at', -1)]; received {_short(sort)}"
        )
    out = []
    for i, pair in enumerate(sort):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise SelectorError(f"sort[{i}] must be a (field, 1 or -1) pair; received {_short(pair)}")
        field, direction = pair
        _check_path(field, f"sort[{i}]")
        if isinstance(direction, bool) or direction not in (1, -1):
            raise SelectorError(f"sort[{i}] direction for {field!r} must be 1 or -1; received {_short(direction)}")
        out.append((field, int(direction)))
    return out


def validate_projection(projection: Any) -> Any:
    """``projection`` unchanged if it is None, a list of field paths, or ``{path: 0 or 1}``.

    Raises:
        SelectorError: anything else — operators and expressions (``$function``, ``$where``,
            ``$slice``, …) included.
    """
    if projection is None:
        return None
    refuse_javascript(projection, "projection")
    if isinstance(projection, Mapping):
        for field, flag in projection.items():
            _check_path(field, "projection")
            if flag not in (0, 1):  # True/False are 1/0
                raise SelectorError(
                    f"projection value for {field!r} must be 0 or 1 (exclude or include); received {_short(flag)}"
                )
        return projection
    if isinstance(projection, (list, tuple)):
        for i, field in enumerate(projection):
            _check_path(field, f"projection[{i}]")
        return projection
    raise SelectorError(
        f"projection must be a dict {{'field': 0 or 1}} or a list of fields; received {_short(projection)}"
    )


def _check_path(field: Any, where: str) -> None:
    if not isinstance(field, str) or not field:
        raise SelectorError(f"{where} needs a field path like 'config.lr'; received {_short(field)}")
    if "$" in field or "\x00" in field or "" in field.split("."):
        raise SelectorError(
            f"{where}: {field!r} is not a field path; use names joined by dots, without '$' "
            "(like 'summary.val.accuracy.best')"
        )
