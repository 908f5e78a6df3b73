"""Stored comparisons (``ptdry.compare``): one document per comparison in the
``comparisons`` collection — the models and their runs, the data's fingerprint, the metrics
and every value — read back by id, without importing any framework."""

from __future__ import annotations

import re
from typing import Any

from ptdry.db.interface import DBInterface
from ptdry.errors import MultipleFoundError, NotFoundError

__all__ = ["COLLECTION", "find_comparisons", "load_comparison", "store_comparison"]

#: Where comparisons are stored.
COLLECTION = "comparisons"


def store_comparison(db: DBInterface, doc: dict[str, Any]) -> str:
    """Insert ``doc`` (with its ``_id``); returns the id."""
    db.collection(COLLECTION).insert_one(doc)
    return doc["_id"]


def find_comparisons(db: DBInterface, limit: int = 0) -> list[dict[str, Any]]:
    """Stored comparisons, newest first (``limit`` 0: all), without their rows' details."""
    cursor = db.collection(COLLECTION).find({}, {"rows.model": 1, "name": 1, "created_at": 1, "metrics": 1})
    return list(cursor.sort("created_at", -1).limit(max(limit, 0)))


def load_comparison(comparison_id: str, db: DBInterface) -> dict[str, Any]:
    """The stored comparison whose id is or starts with ``comparison_id``.

    Raises:
        NotFoundError: no comparison matches.
        MultipleFoundError: several do (give more of the id).
    """
    coll = db.collection(COLLECTION)
    found = list(coll.find({"_id": {"$regex": f"^{re.escape(comparison_id)}"}}).limit(2))
    if not found:
        raise NotFoundError(f"no comparison with id {comparison_id!r} in {db!r}; see `ptdry comparisons`")
    if len(found) > 1:
        raise MultipleFoundError(f"more than one comparison id starts with {comparison_id!r}; give more of the id")
    return found[0]
