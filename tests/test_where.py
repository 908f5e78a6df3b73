"""``ptdry runs --where``: the expression language and the JSON form (ptdry.db.where)."""

from __future__ import annotations

import datetime as dt

import pytest

from ptdry.db.runs_table import WHERE_ALIASES
from ptdry.db.where import parse_where
from ptdry.db.matcher import matches
from ptdry.errors import SelectorError


def where(text: str) -> dict:
    return parse_where(text, aliases=WHERE_ALIASES, prefix_unknown="config.")


def test_the_issue_example_becomes_an_and_of_config_and_status_conditions():
    assert where("trainer.optimizer.lr < 1e-3 and status = completed") == {
        "$and": [{"config.trainer.optimizer.lr": {"$lt": 0.001}}, {"status.state": "completed"}]
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr = 0.1", {"config.lr": 0.1}),
        ("lr == 0.1", {"config.lr": 0.1}),
        ("lr != 0.1", {"config.lr": {"$ne": 0.1}}),
        ("lr < 1", {"config.lr": {"$lt": 1}}),
        ("lr <= -2", {"config.lr": {"$lte": -2}}),
        ("lr > .5", {"config.lr": {"$gt": 0.5}}),
        ("lr >= 1E3", {"config.lr": {"$gte": 1000.0}}),
        ("lr>=1e-3", {"config.lr": {"$gte": 0.001}}),
        ("act = relu", {"config.act": "relu"}),
        ("cls = my.models:Net", {"cls": "my.models:Net"}),
        ("act = 'leaky relu'", {"config.act": "leaky relu"}),
        ('act = "say \\"hi\\""', {"config.act": 'say "hi"'}),
        ("act = \"and\"", {"config.act": "and"}),
        ("flag = true", {"config.flag": True}),
        ("flag = False", {"config.flag": False}),
        ("note = null", {"config.note": None}),
        ("shape = [20, 20]", {"config.shape": [20, 20]}),
        ("shape = []", {"config.shape": []}),
        ("created > 2024-05-01", {"created_at": {"$gt": dt.datetime(2024, 5, 1)}}),
        ("created < 2024-05-01T12:30", {"created_at": {"$lt": dt.datetime(2024, 5, 1, 12, 30)}}),
        ("layers.0 = 64", {"config.layers.0": 64}),
    ],
)
def test_each_operator_and_kind_of_value(text, expected):
    assert where(text) == expected


def test_and_binds_tighter_than_or():
    assert where("a = 1 or b = 2 and c = 3") == {
        "$or": [{"config.a": 1}, {"$and": [{"config.b": 2}, {"config.c": 3}]}]
    }
    assert where("a = 1 and b = 2 or c = 3") == {
        "$or": [{"$and": [{"config.a": 1}, {"config.b": 2}]}, {"config.c": 3}]
    }


def test_parentheses_group_and_chains_flatten():
    assert where("(a = 1 or b = 2) and c = 3") == {
        "$and": [{"$or": [{"config.a": 1}, {"config.b": 2}]}, {"config.c": 3}]
    }
    assert where("a = 1 and b = 2 and (c = 3 and d = 4)") == {
        "$and": [{"config.a": 1}, {"config.b": 2}, {"config.c": 3}, {"config.d": 4}]
    }
    assert where("((a = 1))") == {"config.a": 1}


def test_not_negates_what_follows_it():
    assert where("not a = 1") == {"$nor": [{"config.a": 1}]}
    assert where("not (a = 1 or b = 2) and c = 3") == {
        "$and": [{"$nor": [{"$or": [{"config.a": 1}, {"config.b": 2}]}]}, {"config.c": 3}]
    }
    assert where("NOT not a = 1") == {"$nor": [{"$nor": [{"config.a": 1}]}]}


def test_not_of_a_condition_also_selects_runs_without_the_field():
    filt = where("not lr < 0.1")
    assert matches({"config": {"lr": 1.0}}, filt)
    assert matches({"config": {}}, filt)
    assert not matches({"config": {"lr": 0.01}}, filt)


def test_in_and_not_in_take_lists():
    assert where("act in [relu, 'tanh', 3, null]") == {"config.act": {"$in": ["relu", "tanh", 3, None]}}
    assert where("seed not in [1, 2]") == {"config.seed": {"$nin": [1, 2]}}
    assert where("shape in [[20, 20], [5]]") == {"config.shape": {"$in": [[20, 20], [5]]}}


def test_tilde_and_matches_make_regex_conditions():
    assert where("name ~ '^res'") == {"name": {"$regex": "^res"}}
    assert where("trainer.optimizer.kind matches adam") == {"config.trainer.optimizer.kind": {"$regex": "adam"}}


def test_aliases_known_fields_and_the_prefix_place_every_path():
    assert where("status = running") == {"status.state": "running"}
    assert where("status.error != null") == {"status.error": {"$ne": None}}
    assert where("id = abc") == {"_id": "abc"}
    assert where("created >= 2024-01-01") == {"created_at": {"$gte": dt.datetime(2024, 1, 1)}}
    assert where("version >= 2") == {"version": {"$gte": 2}}
    assert where("summary.val_loss.best < 0.2") == {"summary.val_loss.best": {"$lt": 0.2}}
    assert where("config.lr = 1") == {"config.lr": 1}
    assert where("category = abc") == {"category": "abc"}
    assert where("tags = demo") == {"tags": "demo"}
    assert where("width = 8") == {"config.width": 8}


def test_without_aliases_or_prefix_paths_are_used_as_written():
    assert parse_where("a.b = 1 and status = done") == {"$and": [{"a.b": 1}, {"status": "done"}]}
    assert parse_where("x = 1", aliases={"x": "y.z"}) == {"y.z": 1}
    assert parse_where("x.w = 1", aliases={"x": "y"}, prefix_unknown="p.") == {"y.w": 1}


def test_json_filters_are_parsed_and_validated():
    assert where('{"config.lr": {"$lt": 0.01}, "status.state": "completed"}') == {
        "config.lr": {"$lt": 0.01},
        "status.state": "completed",
    }
    assert where('  {"name": "x"}') == {"name": "x"}


def test_json_errors_give_the_column():
    with pytest.raises(SelectorError, match=r"invalid JSON filter at column 9 \(line 1\): Expecting ',' delimiter"):
        where('{"a": 1 "b": 2}')


def test_json_javascript_and_unknown_operators_are_refused():
    with pytest.raises(SelectorError, match=r"\$where in filter: server-side JavaScript is not allowed"):
        where('{"$where": "this.a > 1"}')
    with pytest.raises(SelectorError, match=r"operator \$foo in filter\['a'\]\.\$foo is unknown"):
        where('{"a": {"$foo": 1}}')


def test_blank_text_selects_everything():
    assert where("") == {} and where("   ") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr 5", r"expected an operator \(=, ==, !=, <, <=, >, >=, in, not in, ~, matches\) after 'lr', found '5' at column 4"),
        ("lr", r"expected an operator .* after 'lr', found the end of the expression at column 3"),
        ("lr <", r"expected a value after '<', found the end of the expression at column 5"),
        ("lr < and", r"expected a value after '<', found 'and' \(quote it to mean the word\) at column 6"),
        ("lr < 1 and", r"expected a field name \(like lr or trainer\.optimizer\.lr\), found the end of the expression at column 11"),
        ("= 1", r"expected a field name .*, found '=' at column 1"),
        ("2x = 1", r"expected a field name .*, found '2x' at column 1"),
        ("(a = 1", r"expected '\)' to close the '\(' at column 1, found the end of the expression at column 7"),
        ("a = 1)", r"unexpected '\)'; expected 'and', 'or' or the end at column 6"),
        ("a = 1 b = 2", r"unexpected 'b'; expected 'and', 'or' or the end at column 7"),
        ("a in 5", r"expected a list like \[1, 2\] after 'in', found '5' at column 6"),
        ("a in [1 2]", r"expected ',' or '\]' in the list opened at column 6, found '2' at column 9"),
        ("a in [1,", r"expected a value after ',', found the end of the expression at column 9"),
        ("a not = 1", r"expected 'in' after 'not' \(after 'a'\), found '=' at column 7"),
        ("a ~ 5", r"'~' needs a pattern \(a string\); received 5 at column 3"),
        ("a ~ '('", r"invalid regular expression '\(' .* at column 5"),
        ('a = "abc', r"unterminated string starting at column 5"),
        ("a = 1 ! b", r"unexpected character '!' at column 7"),
    ],
)
def test_errors_say_what_was_expected_and_where(text, message):
    with pytest.raises(SelectorError, match=message):
        where(text)


def test_error_messages_quote_the_expression():
    with pytest.raises(SelectorError, match=r"in --where 'lr 5'$"):
        where("lr 5")


def test_parsed_expressions_judge_documents_like_the_server_would():
    doc = {"_id": "r1", "status": {"state": "completed"}, "config": {"trainer": {"optimizer": {"lr": 1e-4}}, "act": "relu"}}
    assert matches(doc, where("trainer.optimizer.lr < 1e-3 and status = completed"))
    assert matches(doc, where("act in [relu, tanh] and not status = failed"))
    assert not matches(doc, where("trainer.optimizer.lr >= 1e-3 or status = running"))
