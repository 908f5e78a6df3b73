"""In-memory judgement of Mongo filters (ptdry.db.matcher), operator by operator.

The expected answers are MongoDB's; tests/test_selector.py checks the same module against a
real server on randomized documents.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from ptdry.db.matcher import compile_filter, matches, validate_filter
from ptdry.errors import SelectorError

DOCS = {
    "missing": {"_id": "missing"},
    "null": {"_id": "null", "a": None},
    "empty": {"_id": "empty", "a": []},
    "ints": {"_id": "ints", "a": [1, 2]},
    "subdocs": {"_id": "subdocs", "a": [{"b": 1}, {}]},
    "one_subdoc": {"_id": "one_subdoc", "a": [{"b": 1}]},
    "nested_b_null": {"_id": "nested_b_null", "a": {"b": None}},
    "five": {"_id": "five", "a": 5},
    "deep": {"_id": "deep", "a": [[{"b": 1}]]},
    "null_in_array": {"_id": "null_in_array", "a": [None]},
    "key_zero": {"_id": "key_zero", "a": {"0": 7}},
    "mixed": {"_id": "mixed", "a": [{"0": 7}, 9]},
    "arrays": {"_id": "arrays", "a": [[1, 2], [3]]},
    "true": {"_id": "true", "a": True},
    "one": {"_id": "one", "a": 1},
    "one_float": {"_id": "one_float", "a": 1.0},
    "string": {"_id": "string", "a": "x"},
    "b_list": {"_id": "b_list", "a": {"b": [1, 2]}},
    "b_lists": {"_id": "b_lists", "a": [{"b": [1, 2]}, {"b": 3}]},
}


def selected(filt) -> set[str]:
    return {name for name, doc in DOCS.items() if matches(doc, filt)}


# -- equality and paths ------------------------------------------------------------------------
def test_implicit_equality_matches_the_value_or_an_array_element():
    assert selected({"a": 1}) == {"ints", "one", "one_float"}
    assert selected({"a": [1, 2]}) == {"ints", "arrays"}
    assert selected({"a": [3]}) == {"arrays"}
    assert selected({"a": 3}) == set()  # an element of an element is not reached
    assert selected({"a": []}) == {"empty"}


def test_true_is_not_one_and_one_is_not_true():
    assert selected({"a": True}) == {"true"}
    assert "true" not in selected({"a": 1})
    assert "true" not in selected({"a": {"$gt": 0}})


def test_null_matches_missing_fields_and_nulls_but_not_empty_arrays():
    assert selected({"a": None}) == {"missing", "null", "null_in_array"}
    assert selected({"a": {"$eq": None}}) == selected({"a": None})
    assert selected({"a": {"$in": [None]}}) == selected({"a": None})


def test_dotted_paths_reach_into_arrays_of_subdocuments():
    assert selected({"a.b": 1}) == {"subdocs", "one_subdoc", "b_list", "b_lists"}
    assert "deep" not in selected({"a.b": 1})  # arrays inside arrays are not traversed


def test_dotted_null_counts_subdocuments_that_lack_the_field():
    got = selected({"a.b": None})
    assert {"missing", "null", "subdocs", "nested_b_null", "five", "string", "mixed"} <= got
    assert not got & {"empty", "ints", "null_in_array", "one_subdoc", "arrays"}


def test_numeric_path_segments_are_positions_and_field_names():
    assert selected({"a.0": 7}) == {"key_zero", "mixed"}
    assert selected({"a.0": 1}) == {"ints"}
    assert selected({"a.0": [1, 2]}) == {"arrays"}
    assert selected({"a.0": 2}) == set()  # a position's array is not opened further
    assert selected({"a.0.0": 1}) == {"arrays"}
    assert selected({"a.0.b": 1}) == {"subdocs", "one_subdoc", "deep", "b_lists"}
    assert "ints" in selected({"a.5": None})  # past the end is missing


def test_embedded_documents_compare_field_by_field_in_order():
    doc = {"a": {"x": 1, "y": 2}}
    assert matches(doc, {"a": {"x": 1, "y": 2}})
    assert matches(doc, {"a": {"x": 1.0, "y": 2}})
    assert not matches(doc, {"a": {"y": 2, "x": 1}})
    assert not matches(doc, {"a": {"x": 1}})


def test_tuples_in_documents_and_filters_count_as_lists():
    assert matches({"s": (20, 20)}, {"s": [20, 20]})
    assert matches({"s": [20, 20]}, {"s": (20, 20)})
    assert matches({"s": (1, 2)}, {"s": 2})


def test_numpy_scalars_compare_as_numbers():
    assert matches({"a": np.float32(0.5)}, {"a": 0.5})
    assert matches({"a": np.int64(3)}, {"a": {"$gt": 2}})
    assert not matches({"a": np.bool_(True)}, {"a": 1})


# -- comparison --------------------------------------------------------------------------------
def test_comparisons_stay_within_one_type_bracket():
    assert selected({"a": {"$gt": 0}}) == {"ints", "mixed", "five", "one", "one_float"}
    assert selected({"a": {"$gt": "a"}}) == {"string"}
    assert selected({"a": {"$lt": "a"}}) == set()
    assert selected({"a": {"$gt": {}}}) == {
        "subdocs", "one_subdoc", "nested_b_null", "key_zero", "mixed", "b_list", "b_lists",
    }  # fmt: skip


def test_gte_and_lte_null_match_missing_fields_and_gt_lt_null_match_nothing():
    assert selected({"a": {"$gte": None}}) == {"missing", "null", "null_in_array"}
    assert selected({"a": {"$lte": None}}) == {"missing", "null", "null_in_array"}
    assert selected({"a": {"$gt": None}}) == set()
    assert selected({"a": {"$lt": None}}) == set()


def test_arrays_compare_as_wholes_and_element_by_element():
    assert selected({"a": {"$gt": []}}) == {
        "ints", "subdocs", "one_subdoc", "deep", "null_in_array", "mixed", "arrays", "b_lists",
    }  # fmt: skip
    assert matches({"a": [1, 3]}, {"a": {"$gt": [1, 2]}})
    assert not matches({"a": [1, 1]}, {"a": {"$gt": [1, 2]}})


def test_range_conditions_may_be_met_by_different_elements():
    assert matches({"a": [0, 10]}, {"a": {"$gt": 1, "$lt": 5}})
    assert not matches({"a": [0, 10]}, {"a": {"$elemMatch": {"$gt": 1, "$lt": 5}}})


def test_dates_compare_with_dates_at_millisecond_precision():
    t = dt.datetime(2024, 5, 1, 12, 0, 0, 123456)
    assert matches({"t": t}, {"t": {"$gt": dt.datetime(2024, 1, 1)}})
    assert matches({"t": t}, {"t": dt.datetime(2024, 5, 1, 12, 0, 0, 123000)})
    assert not matches({"t": t}, {"t": {"$gt": 5}})
    aware = dt.datetime(2024, 5, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert matches({"t": dt.datetime(2024, 5, 1, 12)}, {"t": aware})


def test_nan_equals_nan_and_is_not_ordered_against_numbers():
    nan = float("nan")
    assert matches({"a": nan}, {"a": nan})
    assert not matches({"a": nan}, {"a": {"$lt": 0}})
    assert not matches({"a": nan}, {"a": {"$gt": nan}})
    assert matches({"a": nan}, {"a": {"$gte": nan}})


# -- negation, membership, existence ------------------------------------------------------------
def test_ne_nin_and_not_are_the_negation_of_the_whole_field():
    assert selected({"a": {"$ne": None}}) == set(DOCS) - {"missing", "null", "null_in_array"}
    assert selected({"a": {"$ne": 2}}) == set(DOCS) - {"ints"}
    assert selected({"a": {"$nin": [1, 5]}}) == set(DOCS) - {"ints", "five", "one", "one_float"}
    assert selected({"a": {"$not": {"$gt": 1}}}) == set(DOCS) - {"ints", "five", "mixed"}


def test_in_accepts_values_and_patterns():
    assert selected({"a": {"$in": [5, "x"]}}) == {"five", "string"}
    assert selected({"a": {"$in": [re.compile("^X", re.I)]}}) == {"string"}


def test_exists_means_some_value_is_reached():
    assert selected({"a": {"$exists": False}}) == {"missing"}
    assert selected({"a.b": {"$exists": True}}) == {"subdocs", "one_subdoc", "nested_b_null", "b_list", "b_lists"}
    assert "empty" in selected({"a.b": {"$exists": False}})


# -- strings -----------------------------------------------------------------------------------
def test_regex_matches_strings_and_string_elements_only():
    docs = [{"n": "ResNet"}, {"n": ["vgg", "resnet-50"]}, {"n": 5}, {}]
    assert [matches(d, {"n": {"$regex": "^res", "$options": "i"}}) for d in docs] == [True, True, False, False]
    assert [matches(d, {"n": re.compile("net$")}) for d in docs] == [False, False, False, False]
    assert [matches(d, {"n": re.compile("Net$")}) for d in docs] == [True, False, False, False]
    assert [matches(d, {"n": {"$not": re.compile("^vgg")}}) for d in docs] == [True, False, True, True]


def test_eq_with_a_pattern_matches_only_a_stored_pattern():
    assert not matches({"n": "abc"}, {"n": {"$eq": re.compile("a")}})
    assert matches({"n": re.compile("a")}, {"n": {"$eq": re.compile("a")}})


# -- arrays --------------------------------------------------------------------------------------
def test_all_is_an_and_of_equalities():
    assert selected({"a": {"$all": [1, 2]}}) == {"ints"}
    assert selected({"a": {"$all": [[1, 2]]}}) == {"ints", "arrays"}
    assert selected({"a.b": {"$all": [1, 3]}}) == {"b_lists"}
    assert selected({"a": {"$all": []}}) == set()
    assert selected({"a": {"$all": [{"$elemMatch": {"b": 1}}]}}) == {"subdocs", "one_subdoc", "b_lists"}


def test_size_counts_the_array_itself_not_its_elements():
    assert selected({"a": {"$size": 1}}) == {"one_subdoc", "deep", "null_in_array"}
    assert selected({"a.b": {"$size": 2}}) == {"b_list", "b_lists"}
    assert selected({"a": {"$size": 0}}) == {"empty"}


def test_elem_match_tests_single_elements_as_values_or_documents():
    assert selected({"a": {"$elemMatch": {"$gte": 1}}}) == {"ints", "mixed"}
    assert selected({"a": {"$elemMatch": {"b": 1}}}) == {"subdocs", "one_subdoc", "b_lists"}
    assert selected({"a": {"$elemMatch": {"$type": "array"}}}) == {"deep", "arrays"}
    docs = [{"r": [{"k": "lr", "v": 1}, {"k": "wd", "v": 5}]}]
    assert matches(docs[0], {"r": {"$elemMatch": {"k": "wd", "v": {"$gt": 2}}}})
    assert not matches(docs[0], {"r": {"$elemMatch": {"k": "lr", "v": {"$gt": 2}}}})


def test_type_accepts_names_numbers_lists_and_number():
    assert selected({"a": {"$type": "int"}}) == {"ints", "five", "mixed", "one"}
    assert selected({"a": {"$type": "double"}}) == {"one_float"}
    assert selected({"a": {"$type": "number"}}) == {"ints", "five", "mixed", "one", "one_float"}
    assert selected({"a": {"$type": [2, "bool"]}}) == {"string", "true"}
    assert selected({"a": {"$type": "null"}}) == {"null", "null_in_array"}
    assert matches({"a": 2**40}, {"a": {"$type": "long"}})


# -- logic -------------------------------------------------------------------------------------
def test_and_or_nor_combine_filters():
    assert selected({"$or": [{"a": 5}, {"a": "x"}]}) == {"five", "string"}
    assert selected({"$and": [{"a": {"$gt": 0}}, {"a": {"$lt": 2}}]}) == {"ints", "one", "one_float"}
    assert selected({"$nor": [{"a": {"$exists": True}}]}) == {"missing"}
    assert matches({"a": 1}, {"$comment": "anything", "a": 1})


def test_compiled_filters_give_the_same_answers():
    pred = compile_filter({"a.b": {"$in": [1, 3]}})
    assert {n for n, d in DOCS.items() if pred(d)} == selected({"a.b": {"$in": [1, 3]}})


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "filt",
    [
        {"$where": "this.a == 1"},
        {"a": 1, "$or": [{"$where": "sleep(1000)"}]},
        {"$and": [{"b": {"$elemMatch": {"$where": "1"}}}]},
        {"$expr": {"$function": {"body": "function() {return true}", "args": [], "lang": "js"}}},
        {"$expr": {"$gt": [{"$accumulator": {"init": "function() {}"}}, 1]}},
        {"a": {"$not": {"$where": "1"}}},
        {"a": {"$in": [{"$function": {}}]}},
    ],
    ids=["top", "in-or", "in-elemMatch", "function-in-expr", "accumulator-deep", "in-not", "in-in"],
)
def test_server_side_javascript_is_refused_at_any_depth(filt):
    with pytest.raises(SelectorError, match=r"\$(where|function|accumulator) in filter.*server-side JavaScript is not allowed; express the condition with query operators"):
        validate_filter(filt)
    with pytest.raises(SelectorError, match="server-side JavaScript is not allowed"):
        matches({"a": 1}, filt)


def test_bson_code_values_are_refused():
    from bson.code import Code

    with pytest.raises(SelectorError, match="JavaScript Code value in filter.*not allowed"):
        validate_filter({"a": Code("function() {}")})


def test_unknown_operators_are_refused_with_the_supported_list():
    with pytest.raises(SelectorError, match=r"operator \$mod in filter\['a'\]\.\$mod is unknown; supported operators: \$and, .*\$elemMatch"):
        validate_filter({"a": {"$mod": [2, 0]}})
    with pytest.raises(SelectorError, match=r"operator \$expr in filter is unknown; supported operators"):
        validate_filter({"$expr": {"$eq": ["$a", 1]}})
    with pytest.raises(SelectorError, match=r"operator \$gt in filter is a field operator; put it under a field name"):
        validate_filter({"$gt": 1})
    with pytest.raises(SelectorError, match=r"operator \$or in filter\['a'\]\.\$or is a logical operator"):
        validate_filter({"a": {"$or": [{"b": 1}]}})


@pytest.mark.parametrize(
    ("filt", "message"),
    [
        ([("a", 1)], r"a filter must be a dict like .* received list: \[\('a', 1\)\]"),
        ("a = 1", r"a filter must be a dict .* received str: 'a = 1'"),
        ({"$and": []}, r"\$and in filter needs a non-empty list of filters; received \[\]"),
        ({"$or": [1]}, r"\$or\[0\] in filter must be a filter dict; received 1"),
        ({"a": {"$in": 5}}, r"filter\['a'\]\.\$in needs a list of values; received 5"),
        ({"a": {"$size": -1}}, r"\$size needs a non-negative whole number; received -1"),
        ({"a": {"$size": 1.5}}, r"\$size needs a non-negative whole number; received 1.5"),
        ({"a": {"$type": "float"}}, r"unknown BSON type 'float'; use one of 'number'"),
        ({"a": {"$regex": "("}}, r"invalid regular expression '\('"),
        ({"a": {"$regex": "a", "$options": "q"}}, r"unknown regex option 'q'; use some of 'imsx'"),
        ({"a": {"$options": "i"}}, r"\$options in filter\['a'\] needs a \$regex next to it"),
        ({"a": {"$gt": 1, "b": 2}}, r"mixes operators and field names \('b'\)"),
        ({"a": {"$not": 5}}, r"\$not needs an operator dict or a regex; received 5"),
        ({"a": {"$exists": "yes"}}, r"\$exists needs true or false; received 'yes'"),
        ({"a": {"$elemMatch": {"$gt": 1, "b": 2}}}, r"\$elemMatch mixes field operators with field names"),
        ({"a": {"$in": [{"$gt": 1}]}}, r"\$in\[0\] is an operator dict; \$in/\$nin take plain values"),
        ({"a": {"$gt": object()}}, r"cannot compare with a object value"),
        ({"a": {"b": {"$gt": 1}}}, r"a literal subdocument cannot hold operators \('b': \{'\$gt': 1\}\); match fields one by one"),
        ({"a..b": 1}, r"field path 'a..b' in filter\['a..b'\] has an empty segment"),
        ({1: 2}, r"filter keys must be strings; received 1"),
    ],
)
def test_malformed_filters_are_refused_with_what_was_received(filt, message):
    with pytest.raises(SelectorError, match=message):
        validate_filter(filt)


def test_validate_filter_returns_the_filter_unchanged():
    filt = {"config.lr": {"$lt": 1e-3}, "$or": [{"tags": "a"}, {"tags": {"$size": 0}}]}
    assert validate_filter(filt) is filt


# -- the server is never asked -----------------------------------------------------------------
def test_refused_filters_never_reach_the_server(server_uri, db_name):
    """With a command listener on the connection: a refused filter sends no command at all."""
    import pymongo
    from pymongo import monitoring

    from ptdry.db.interface import DBInterface
    from ptdry.db.repo import Repo

    class Commands(monitoring.CommandListener):
        def __init__(self):
            self.names: list[str] = []

        def started(self, event):
            self.names.append(event.command_name)

        def succeeded(self, event):
            pass

        def failed(self, event):
            pass

    listener = Commands()
    db = DBInterface(server_uri, database=db_name)
    db._client = pymongo.MongoClient(server_uri, event_listeners=[listener])
    try:
        db.collection("modules").insert_one({"_id": "x", "a": 1})
        listener.names.clear()
        js = {"$where": "while (true) {}"}
        repo = Repo(db)
        calls = [
            lambda: db.access(js),
            lambda: db(js),
            lambda: repo.find(js),
            lambda: repo.get({"a": 1, "$or": [js]}),
            lambda: repo.get_one(js),
            lambda: repo.delete(js),
        ]
        for call in calls:
            with pytest.raises(SelectorError, match=r"\$where .*server-side JavaScript is not allowed"):
                call()
        sent = [n for n in listener.names if n not in ("ping", "hello", "isMaster", "ismaster", "endSessions")]
        assert sent == [] or set(sent) <= {"createIndexes"}, sent
        assert db.collection("modules").count_documents({}) == 1
    finally:
        db._client.drop_database(db_name)
        db._client.close()
