"""Sorts and projections are checked like filters before any query reaches a server."""

from __future__ import annotations

import pytest

from ptdry import Module
from ptdry.db.query_options import validate_projection, validate_sort
from ptdry.db.repo import Repo
from ptdry.errors import SelectorError


class Point(Module):
    def __init__(self, x=0):
        self.x = x


def test_plain_sorts_and_projections_pass_unchanged():
    assert validate_sort(None) is None and validate_projection(None) is None
    assert validate_sort([("config.x", 1), ("created_at", -1)]) == [("config.x", 1), ("created_at", -1)]
    assert validate_projection({"config": 1, "_id": False}) == {"config": 1, "_id": False}
    assert validate_projection(["name", "config.x"]) == ["name", "config.x"]


@pytest.mark.parametrize(
    "sort, message",
    [
        ([("$where", 1)], r"sort\[0\]: '\$where' is not a field path; use names joined by dots, without '\$'"),
        ([("score", {"$meta": "textScore"})], r"sort\[0\] direction for 'score' must be 1 or -1; received \{'\$meta'"),
        ([("x", True)], r"sort\[0\] direction for 'x' must be 1 or -1; received True"),
        ("created_at", r"sort must be a list of \(field, 1 or -1\) pairs like \[\('created_at', -1\)\]; received 'created_at'"),
        ([("config..x", 1)], r"'config\.\.x' is not a field path"),
        ([("x", 1, 2)], r"sort\[0\] must be a \(field, 1 or -1\) pair; received \('x', 1, 2\)"),
    ],
)
def test_bad_sorts_are_refused_naming_what_was_received(sort, message):
    with pytest.raises(SelectorError, match=message):
        validate_sort(sort)


@pytest.mark.parametrize(
    "projection, message",
    [
        ({"x": {"$function": {"body": "return 1", "args": [], "lang": "js"}}}, r"\$function in projection.x: server-side JavaScript is not allowed"),
        ({"$where": 1}, r"\$where in projection: server-side JavaScript is not allowed"),
        ({"config": {"$slice": 2}}, r"projection value for 'config' must be 0 or 1 \(exclude or include\); received \{'\$slice': 2\}"),
        ({"config.$": 1}, r"projection: 'config\.\$' is not a field path"),
        ("config", r"projection must be a dict \{'field': 0 or 1\} or a list of fields; received 'config'"),
    ],
)
def test_bad_projections_are_refused_naming_what_was_received(projection, message):
    with pytest.raises(SelectorError, match=message):
        validate_projection(projection)


def test_repo_find_and_db_access_check_sort_and_projection_before_querying(any_db):
    repo = Repo(any_db)
    repo.add_object(Point(1), name="p")
    repo.add_object(Point(2), name="p")
    assert [r.version for r in repo.find({"name": "p"}, sort=[("config.x", -1)], projection={"version": 1})] == [2, 1]
    with pytest.raises(SelectorError, match=r"sort\[0\]: '-\$where' is not a field path"):
        repo.find({"name": "p"}, sort=[("-$where", 1)])
    with pytest.raises(SelectorError, match=r"\$function in projection"):
        any_db.access({"name": "p"}, projection={"v": {"$function": {"body": "sleep(10)", "args": [], "lang": "js"}}})
    with pytest.raises(SelectorError, match=r"sort must be a list"):
        any_db.access({"name": "p"}, sort={"$natural": 1})
