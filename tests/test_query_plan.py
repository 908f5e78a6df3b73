"""plan_filter: flattened, indexed-first filters select exactly what the original selects."""

from __future__ import annotations

import random

from ptdry.db.matcher import matches
from ptdry.db.query_plan import plan_filter


def test_top_level_and_is_flattened_with_indexed_equalities_first():
    planned = plan_filter({"$and": [{"project": "p"}, {"config.lr": {"$lt": 1}}, {"mro": "m:C"}]})
    assert list(planned) == ["mro", "project", "config.lr"]


def test_a_field_given_twice_stays_a_separate_clause():
    planned = plan_filter({"$and": [{"a": {"$gt": 1}}, {"a": {"$lt": 5}}, {"mro": "x"}]})
    assert planned == {"mro": "x", "a": {"$gt": 1}, "$and": [{"a": {"$lt": 5}}]}


def test_planned_filters_select_the_same_documents():
    rng = random.Random(3)
    docs = [
        {"_id": i, "mro": rng.choice(["a", "b"]), "project": rng.choice(["p", "q", None]), "x": rng.randint(0, 9),
         "parent": rng.choice([None, 1])}
        for i in range(200)
    ]  # fmt: skip
    clauses = [{"mro": "a"}, {"project": "p"}, {"x": {"$gt": 4}}, {"x": {"$lt": 7}}, {"parent": None}, {"x": {"$in": [1, 2, 3]}}]
    for _ in range(300):
        picked = rng.sample(clauses, rng.randint(1, 4))
        filt = {"$and": picked} if rng.random() < 0.7 else {k: v for c in picked for k, v in c.items()}
        expected = {d["_id"] for d in docs if matches(d, filt)}
        assert {d["_id"] for d in docs if matches(d, plan_filter(filt))} == expected, filt
