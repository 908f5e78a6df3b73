"""Version numbers: one atomic counter document per ``(project, name)``, gap-free under races.

``find_one_and_update({"$inc"}, upsert=True)`` is not enough on every server: SecantusDB
answers ``None`` to the losers of concurrent *first* upserts of one key, yet increments the
counter for them, so a retry would skip a number. The counter is therefore seeded apart
(insert-if-absent with ``$setOnInsert``, which never changes an existing counter) and then
incremented *without* upsert: ``None`` from the increment only ever means "not seeded yet".
"""

from __future__ import annotations

from typing import Any

from ptdry.errors import DBError

__all__ = ["ATTEMPTS", "next_value"]

#: Increments tried before giving up (each failed one seeds the counter first).
ATTEMPTS = 5


def next_value(counters: Any, key: str, label: str) -> int:
    """Atomically take the next number (1, 2, 3, …) of counter ``key`` in ``counters``.

    Args:
        counters: the ``counters`` collection.
        key: the counter's ``_id``.
        label: what the number is for, named in the error (e.g. ``"'digits-mlp'"``).

    Raises:
        DBError: the counter could not be incremented after :data:`ATTEMPTS` tries.
    """
    from pymongo import ReturnDocument

    for _ in range(ATTEMPTS):
        doc = counters.find_one_and_update({"_id": key}, {"$inc": {"seq": 1}}, return_document=ReturnDocument.AFTER)
        if doc is not None:
            return int(doc["seq"])
        _seed(counters, key)
    raise DBError(
        f"could not take the next version of {label} after {ATTEMPTS} attempts (counter {key!r} "
        "in collection 'counters' stays missing); check that the database accepts writes"
    )


def _seed(counters: Any, key: str) -> None:
    """Create counter ``key`` at 0 unless it exists (concurrent seeds are harmless)."""
    from pymongo.errors import DuplicateKeyError

    try:
        counters.update_one({"_id": key}, {"$setOnInsert": {"seq": 0}}, upsert=True)
    except DuplicateKeyError:  # another writer created it between our look and our insert
        pass
