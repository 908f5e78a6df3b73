"""ObjectDef / Configuration: definitions as values that build trees, serialize and hash."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import bson
import numpy as np
import pytest
import torch

from ptdry import Configuration, Module, ObjectDef, build
from ptdry.errors import ConfigError, SerializationError, UntrustedArchiveError

import _tree_classes
from _tree_classes import Leaf, Pair

HERE = pathlib.Path(__file__).resolve().parent


class Point(Module):
    def __init__(self, x, y=0.0, *, label="p"):
        self.x, self.y, self.label = x, y, label


class Group(Module):
    def __init__(self, first, items=(), table=None, **options):
        self.first, self.items, self.table, self.options = first, items, table, options


class Optimized(Module):
    """Holds a torch network and builds its optimizer from a recipe."""

    def __init__(self, net=ObjectDef(torch.nn.Linear, 3, 1), opt=ObjectDef(torch.optim.SGD, lr=0.1)):
        self.net = net.build()
        self.opt = opt.cls(self.net.parameters(), *opt.args, **opt.kwargs)


class Failing(Module):
    def __init__(self, size):
        raise ValueError(f"size {size} is too big")


class Secret(Module):
    def __init__(self, user, password=None):
        self._record_argument("password", "***")


class Carrier(Module):
    def __init__(self, payload=None, **kw):
        self.payload = payload


class WithData(Module):
    dry_data_args = ("train",)

    def __init__(self, train=None, batch=8):
        self.train = train


def module_level_fn(x):
    return x


# -- definition() and build() -----------------------------------------------------------------
def test_definition_returns_an_objectdef_of_class_and_arguments():
    p = Point(1, label="a")
    d = p.definition()
    assert type(d) is ObjectDef
    assert d.cls is Point and d.args == (1,)
    assert d.kwargs == {"y": 0.0, "label": "a", "dry_id": p.dry_id}
    assert d.dry_id == p.dry_id


def test_build_makes_the_object_with_the_same_dry_id():
    p = Point(1.5, 2.5)
    again = p.definition().build()
    assert type(again) is Point and again is not p
    assert (again.x, again.y, again.label) == (1.5, 2.5, "p")
    assert again.dry_id == p.dry_id
    assert again.definition() == p.definition()


def test_build_is_also_a_free_function():
    assert build(ObjectDef(Point, 3)).x == 3


def test_objectdef_written_by_hand_builds_with_a_fresh_id():
    a, b = ObjectDef(Point, 1).build(), ObjectDef(Point, 1).build()
    assert a.dry_id != b.dry_id and a.x == b.x == 1


def test_nested_modules_in_args_kwargs_lists_tuples_and_dicts_become_nested_definitions():
    g = Group(Point(1), items=[Point(2), (Point(3),)], table={"k": Point(4)}, extra=Point(5))
    d = g.definition()
    assert isinstance(d.args[0], ObjectDef) and d.args[0].cls is Point
    assert isinstance(d.kwargs["items"], list) and isinstance(d.kwargs["items"][1], tuple)
    assert d.kwargs["items"][1][0].args == (3,)
    assert d.kwargs["table"]["k"].args == (4,)
    assert d.kwargs["extra"].args == (5,)

    again = d.build()
    assert again.first.x == 1 and again.first.dry_id == g.first.dry_id
    assert type(again.items) is list and type(again.items[1]) is tuple
    assert again.items[1][0].x == 3 and again.items[1][0].dry_id == g.items[1][0].dry_id
    assert again.table["k"].dry_id == g.table["k"].dry_id
    assert again.options["extra"].x == 5


def test_a_definition_is_a_value_mutating_it_does_not_change_the_module():
    g = Group(Point(1), items=[1, 2], table={"a": [1]})
    d = g.definition()
    d.kwargs["items"].append(3)
    d.kwargs["table"]["a"].append(2)
    d.args[0].kwargs["y"] = 99.0
    d.kwargs["new"] = 1
    assert g.items == [1, 2] and g.table == {"a": [1]}
    fresh = g.definition()
    assert fresh.kwargs["items"] == [1, 2] and fresh.args[0].kwargs["y"] == 0.0
    assert "new" not in fresh.kwargs


def test_definitions_of_classes_that_cannot_be_stored_still_compare_by_content():
    class Local(Module):
        def __init__(self, a=1, fn=None):
            pass

    x = Local(a=2)
    assert x.configuration == x.definition()
    assert x.definition() == Local(a=2, dry_id=x.dry_id).definition()
    assert x.definition() != Local(a=3, dry_id=x.dry_id).definition()
    assert ObjectDef(Local, fn=print) != ObjectDef(Local, fn=len)


def test_two_definition_calls_give_equal_but_distinct_objects():
    g = Group(Point(1), items=[1])
    a, b = g.definition(), g.definition()
    assert a == b and a is not b
    assert a.args[0] is not b.args[0] and a.kwargs["items"] is not b.kwargs["items"]


def test_building_twice_gives_independent_argument_values():
    d = ObjectDef(Group, Point(0).definition(), items=[1, 2])
    a, b = d.build(), d.build()
    a.items.append(3)
    assert b.items == [1, 2] and d.kwargs["items"] == [1, 2]


def test_without_ids_removes_every_dry_id_and_builds_fresh_ids_each_time():
    g = Group(Point(1), items=[Point(2)])
    category = g.definition().without_ids()
    assert category.dry_id is None and category.args[0].dry_id is None
    assert category.kwargs["items"][0].dry_id is None
    a, b = category.build(), category.build()
    assert len({g.dry_id, a.dry_id, b.dry_id}) == 3
    assert len({g.first.dry_id, a.first.dry_id, b.first.dry_id}) == 3
    assert a.definition().without_ids() == category


def test_record_argument_changes_what_the_definition_records():
    s = Secret("ann", password="hunter2")
    assert s.definition().kwargs["password"] == "***"
    with pytest.raises(ConfigError, match=r"Point has no recorded argument 'z'"):
        Point(1)._record_argument("z", 1)
    p = Point(1)
    p._record_argument("x", 5)  # a positional argument, by its parameter's name
    assert p.definition().args == (5,) and Point(x=1).definition().kwargs["x"] == 1


def test_data_arguments_are_recorded_as_a_fingerprint():
    a = WithData(train=np.arange(10))
    b = WithData(train=np.arange(10))
    c = WithData(train=np.arange(11))
    ref = a.definition().kwargs["train"]
    assert type(ref).__name__ == "DataRef"
    assert a.definition().category_hash == b.definition().category_hash != c.definition().category_hash


# -- foreign classes ------------------------------------------------------------------------------
def test_foreign_class_definition_builds_it():
    lin = ObjectDef(torch.nn.Linear, 4, 2).build()
    assert isinstance(lin, torch.nn.Linear) and lin.weight.shape == (2, 4)


def test_foreign_definitions_inside_a_tree_are_recipes_the_owner_builds():
    m = Optimized(net=ObjectDef(torch.nn.Linear, 5, 2), opt=ObjectDef(torch.optim.SGD, lr=0.3, momentum=0.5))
    assert isinstance(m.opt, torch.optim.SGD) and m.opt.param_groups[0]["lr"] == 0.3
    d = m.definition()
    assert d.kwargs["opt"] == ObjectDef(torch.optim.SGD, lr=0.3, momentum=0.5)
    data = json.loads(json.dumps(d.to_dict()))
    assert data["kwargs"]["opt"]["__def__"]["cls"] == "torch.optim.sgd:SGD"
    again = ObjectDef.from_dict(data).build()
    assert again.net.weight.shape == (2, 5) and again.opt.param_groups[0]["momentum"] == 0.5
    assert again.definition() == d


def test_a_live_torch_module_argument_is_refused_with_a_hint():
    with pytest.raises(SerializationError, match=r"argument Carrier\.payload is a Linear instance.*pass ObjectDef\(Linear, \.\.\.\) instead"):
        Carrier(payload=torch.nn.Linear(2, 2)).definition()


def test_objectdef_needs_a_callable():
    with pytest.raises(ConfigError, match=r"ObjectDef needs a class or callable first; received 3"):
        ObjectDef(3)


def test_build_errors_keep_their_type_and_name_the_place_in_the_tree():
    d = ObjectDef(Group, ObjectDef(Group, ObjectDef(Failing, 5)))
    with pytest.raises(ValueError, match=r"size 5 is too big") as info:
        d.build()
    assert "while building Group.args[0].args[0] = Failing(...) from an ObjectDef" in info.value.__notes__


# -- shared nodes -----------------------------------------------------------------------------------
def test_the_same_definition_node_referenced_twice_builds_one_shared_object():
    node = ObjectDef(Point, 1)
    pair = ObjectDef(Pair, node, node).build()
    assert pair.left is pair.right


def test_equal_but_distinct_nodes_build_distinct_objects():
    pair = ObjectDef(Pair, ObjectDef(Point, 1), ObjectDef(Point, 1)).build()
    assert pair.left is not pair.right


def test_a_module_shared_in_a_tree_is_one_node_of_its_definition():
    p = Point(1)
    d = Pair(p, p).definition()
    assert d.args[0] is d.args[1]
    again = d.build()
    assert again.left is again.right and again.left.dry_id == p.dry_id


def test_shared_nodes_survive_to_dict_and_from_dict():
    node = ObjectDef(Point, 1)
    d = ObjectDef(Group, node, items=[node], table={"k": node})
    data = json.loads(json.dumps(d.to_dict()))
    back = ObjectDef.from_dict(data)
    assert back.args[0] is back.kwargs["items"][0] is back.kwargs["table"]["k"]
    built = back.build()
    assert built.first is built.items[0] is built.table["k"]
    assert back == d


def test_shared_nodes_load_from_json_written_with_sorted_keys():
    node = ObjectDef(Point, 2)
    d = ObjectDef(Group, 0, zeta=node, alpha=node)  # the node is defined under "zeta"
    text = json.dumps(d.to_dict(), sort_keys=True)
    back = ObjectDef.from_dict(json.loads(text))
    assert back.kwargs["alpha"] is back.kwargs["zeta"]
    assert back == d and back.category_hash == d.category_hash


def test_a_shared_recipe_stays_shared_in_a_module_definition():
    recipe = ObjectDef(torch.nn.Linear, 2, 2)
    d = Group(0, items=[recipe, recipe]).definition()
    assert d.kwargs["items"][0] is d.kwargs["items"][1]


def test_from_dict_reports_a_reference_to_an_undefined_node():
    data = {"cls": "_tree_classes:Pair", "args": [{"__ref__": 4}, 1], "kwargs": {}}
    with pytest.raises(ConfigError, match=r"refers to shared node 4, which it does not define"):
        ObjectDef.from_dict(data)


# -- to_dict / from_dict -----------------------------------------------------------------------------
def test_to_dict_is_json_and_bson_safe_and_round_trips():
    g = Group(
        Point(np.float64(1.5), label="x"),
        items=(1, (2, 3), [4.0, None, True]),
        table={"a.b": 1, "$where": 2, "nested": {"c.d": (5,)}, 7: "int key"},
        arr=np.arange(6, dtype=np.int32).reshape(2, 3),
        tensor=torch.tensor([1.0, 2.0]),
        fn=module_level_fn,
        cls=torch.nn.ReLU,
        big=2**80,
        nan=float("nan"),
    )
    d = g.definition()
    data = d.to_dict()
    text = json.dumps(data, allow_nan=False)
    bson.encode(data)
    back = ObjectDef.from_dict(json.loads(text), allowed=[module_level_fn])  # a plain function: not allowed by default
    assert back == d
    assert back.kwargs["items"] == (1, (2, 3), [4.0, None, True])
    assert back.kwargs["table"] == {"a.b": 1, "$where": 2, "nested": {"c.d": (5,)}, 7: "int key"}
    assert back.kwargs["arr"].dtype == np.int32 and back.kwargs["arr"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert torch.equal(back.kwargs["tensor"], torch.tensor([1.0, 2.0]))
    assert back.kwargs["fn"] is module_level_fn and back.kwargs["cls"] is torch.nn.ReLU
    assert back.kwargs["big"] == 2**80 and np.isnan(back.kwargs["nan"])
    assert type(back.args[0].args[0]) is np.float64
    built = back.build()
    assert built.table["a.b"] == 1 and built.first.label == "x"


def test_to_dict_names_classes_by_module_and_qualname():
    data = ObjectDef(Pair, ObjectDef(torch.nn.Linear, 1, 1), 2).to_dict()
    assert data["cls"] == "_tree_classes:Pair"
    assert data["args"][0]["__def__"]["cls"] == "torch.nn.modules.linear:Linear"
    assert data["format"] == 1


def test_to_dict_of_a_local_class_is_refused_with_a_hint():
    class Local(Module):
        def __init__(self):
            pass

    with pytest.raises(SerializationError, match=r"Local: class .* cannot be imported by name .*define it at module level"):
        Local().definition().to_dict()


def test_from_dict_refuses_data_that_is_not_a_definition():
    with pytest.raises(ConfigError, match=r"not a ptdry definition \(no 'cls' key\)"):
        ObjectDef.from_dict({"x": 1})


def test_from_dict_refuses_a_newer_format():
    with pytest.raises(ConfigError, match=r"definition format 99 is newer than this ptdry understands \(1\); upgrade ptdry"):
        ObjectDef.from_dict({"format": 99, "cls": "json:dumps"})


def test_from_dict_names_a_class_it_cannot_import():
    with pytest.raises(UntrustedArchiveError, match=r"definition names no_such_pkg:X.*module no_such_pkg is not imported"):
        ObjectDef.from_dict({"cls": "no_such_pkg:X"})
    with pytest.raises(ConfigError, match=r"cannot import module 'no_such_pkg' for 'no_such_pkg:X'"):
        ObjectDef.from_dict({"cls": "no_such_pkg:X"}, trusted=True)
    with pytest.raises(ConfigError, match=r"module 'json' has no attribute 'Nothing'"):
        ObjectDef.from_dict({"cls": "json:Nothing"})


# -- category hash ---------------------------------------------------------------------------------
def test_category_hash_is_equal_regardless_of_kwarg_order():
    a = ObjectDef(Leaf, rate=0.1, size=3, extra={"a": 1, "b.c": 2})
    b = ObjectDef(Leaf, extra={"b.c": 2, "a": 1}, size=3, rate=0.1)
    assert a.category_hash == b.category_hash
    assert a == b


def test_category_hash_is_equal_for_numpy_and_python_scalars():
    assert ObjectDef(Leaf, rate=np.float64(0.1), size=np.int64(3)).category_hash == ObjectDef(Leaf, rate=0.1, size=3).category_hash


def test_category_hash_differs_for_different_hyperparameters():
    base = ObjectDef(Leaf, rate=0.1, size=3)
    assert base.category_hash != ObjectDef(Leaf, rate=0.2, size=3).category_hash
    assert base.category_hash != ObjectDef(Leaf, rate=0.1, size=4).category_hash
    assert base.category_hash != ObjectDef(Leaf, rate=0.1, size=3, names=("a",)).category_hash
    assert base.category_hash != ObjectDef(Pair, rate=0.1, size=3).category_hash


def test_category_hash_ignores_dry_ids():
    a, b = Pair(Leaf(), Leaf()), Pair(Leaf(), Leaf())
    assert a.definition() != b.definition()
    assert a.definition().category_hash == b.definition().category_hash
    assert len(a.definition().category_hash) == 64


def test_category_hash_is_a_property_of_configuration_too():
    m = Pair(Leaf(rate=0.5), Leaf())
    assert m.configuration.category_hash == m.definition().category_hash


def test_category_hash_is_stable_across_processes():
    tree = Pair(Leaf(rate=np.float64(0.25), size=4, names=("x", "y"), extra={"k.v": [1, 2]}), Leaf())
    d = tree.definition()
    code = (
        "import json, sys; from ptdry import ObjectDef; import _tree_classes; "
        "d = ObjectDef.from_dict(json.loads(sys.stdin.read())); "
        "print(d.category_hash); print(d.without_ids().category_hash)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), PYTHONHASHSEED="123")
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(d.to_dict()), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [d.category_hash, d.category_hash]
    assert _tree_classes.Leaf is Leaf


# -- bad input ---------------------------------------------------------------------------------------
def test_a_lambda_argument_fails_at_definition_naming_its_path():
    with pytest.raises(SerializationError, match=r"argument Carrier\.fn = <function .*<lambda>.* cannot be imported by name"):
        Carrier(fn=lambda x: x).definition()


def test_an_open_file_argument_fails_naming_its_path_and_suggesting_a_path(tmp_path):
    with open(tmp_path / "f.txt", "w") as fh:
        with pytest.raises(SerializationError, match=r"argument Carrier\.payload = .* of type TextIOWrapper cannot be stored in a definition; pass its file path"):
            Carrier(payload=fh).definition()


def test_an_array_over_the_size_limit_fails_naming_its_path():
    with pytest.raises(SerializationError, match=r"argument Carrier\.payload is an array of 800000 bytes, over the 65536-byte limit.*keep large data in the module's state"):
        Carrier(payload=np.zeros(100_000)).definition()


def test_an_arbitrary_object_fails_naming_its_path():
    with pytest.raises(SerializationError, match=r"argument Carrier\.payload = <object object at .*> of type object cannot be stored"):
        Carrier(payload=object()).definition()


def test_a_bad_value_deep_in_the_tree_is_named_by_its_full_path():
    tree = Group(Point(1), items=[0, {"cb": Carrier(payload=[1, object()])}])
    with pytest.raises(SerializationError, match=r"argument Group\.items\[1\]\.cb\.payload\[1\] = <object"):
        tree.definition()


def test_a_bad_value_in_a_recipe_fails_at_definition():
    with pytest.raises(SerializationError, match=r"argument Carrier\.payload\.lr = <function .*<lambda>"):
        Carrier(payload=ObjectDef(torch.optim.SGD, lr=lambda epoch: 0.1)).definition()


def test_a_bad_value_in_a_hand_written_objectdef_fails_at_to_dict():
    d = ObjectDef(Carrier, payload=[object()])
    with pytest.raises(SerializationError, match=r"argument Carrier\.payload\[0\] = <object"):
        d.to_dict()
    assert isinstance(d.build().payload[0], object)  # building in-process still works


def test_serialization_error_is_a_config_error_and_a_type_error():
    with pytest.raises(TypeError, match=r"cannot be stored"):
        Carrier(payload=object()).definition()
    with pytest.raises(ConfigError, match=r"cannot be stored"):
        Carrier(payload=object()).definition()


# -- Configuration --------------------------------------------------------------------------------
def test_configuration_is_the_metamodule_view_of_the_definition():
    g = Group(Point(1), items=[2])
    conf = g.configuration
    assert isinstance(conf, Configuration) and isinstance(conf, ObjectDef)
    assert conf == g.definition()
    assert conf.to_dict() == g.definition().to_dict()
    assert conf.build().dry_id == g.dry_id
    assert g.configuration is not conf  # a fresh value each time


def test_configuration_document_round_trips_and_is_bson_safe():
    g = Group(Point(1, label="a.b"), table={"$x": 1})
    doc = g.configuration.to_document()
    assert set(doc) == {"definition", "config", "category"}
    assert doc["category"] == g.definition().category_hash
    raw = bson.decode(bson.encode(doc))
    back = Configuration.from_document(raw)
    assert type(back) is Configuration and back == g.definition()


def test_config_is_a_readable_hyperparameter_tree_without_its_own_id():
    g = Group(Point(1, label="a"), items=(1, 2), table={"lr.max": np.float64(0.5)})
    config = g.definition().config()
    assert config == {  # a nested definition carries its identity, so selectors can ask for it
        "first": {"__class__": "test_objectdef:Point", "dry_id": g.first.dry_id, "x": 1, "y": 0.0, "label": "a"},
        "items": [1, 2],
        "table": {"lr\uff0emax": 0.5},
    }
    assert g.definition().without_ids().config()["first"] == {"__class__": "test_objectdef:Point", "x": 1, "y": 0.0, "label": "a"}
    bson.encode(config)


def test_a_plain_dict_in_config_never_looks_like_a_nested_definition():
    config = ObjectDef(dict, spec={"__class__": "x:Y", "a": 1}).config()
    assert config == {"spec": {"\uff3f\uff3fclass\uff3f\uff3f": "x:Y", "a": 1}}


def test_query_document_holds_id_class_path_mro_and_config():
    p = Point(2)
    doc = p.query_document()
    assert doc["_id"] == p.dry_id
    assert doc["cls"] == "test_objectdef:Point"
    assert doc["mro"] == ["test_objectdef:Point", "ptdry.core.module:Module"]
    assert doc["config"] == {"x": 2, "y": 0.0, "label": "p"}
    assert ObjectDef(torch.nn.Linear, 4, 2).config() == {"in_features": 4, "out_features": 2}


# -- replace: values at dotted paths ------------------------------------------------------------
class Layers(Module):
    def __init__(self, *sizes, act="relu"):
        self.sizes, self.act = sizes, act


def test_replace_sets_values_at_dotted_paths_in_a_copy():
    d = Group(Point(1, label="a"), items=(1, 2), table={"lr": 0.1}, extra=[5, 6]).definition()
    new = d.replace({"first.x": 3, "first.label": "b", "items.1": 7, "table.lr": 0.01, "extra.0": 8})
    built = new.without_ids().build()
    assert (built.first.x, built.first.label, built.items, built.table, built.options) == (
        3, "b", (1, 7), {"lr": 0.01}, {"extra": [8, 6]}
    )  # fmt: skip
    assert d.args[0].args == (1,) and d.kwargs["items"] == (1, 2) and d.kwargs["table"] == {"lr": 0.1}
    assert new.dry_id == d.dry_id  # ids are kept; without_ids() makes new ones


def test_replace_reaches_positional_arguments_by_parameter_name_and_varargs_by_index():
    linear = ObjectDef(torch.nn.Linear, 4, 2)
    assert linear.replace({"in_features": 8, "bias": False}).build().weight.shape == (2, 8)
    layers = Layers(64, 32, 10).definition()
    assert layers.replace({"sizes.1": 16}).build().sizes == (64, 16, 10)
    assert layers.replace({"sizes": [8, 4]}).build().sizes == (8, 4)
    opt = ObjectDef(torch.optim.SGD, lr=0.1)
    assert opt.replace({"momentum": 0.9}).kwargs == {"lr": 0.1, "momentum": 0.9}  # a parameter left at its default


def test_replace_names_the_path_and_lists_what_exists_when_a_part_is_missing():
    d = Group(Point(1), items=(1, 2)).definition()
    with pytest.raises(ConfigError, match=r"cannot set 'first\.z': first \(Point\) has no 'z'; it has: x, y, label"):
        d.replace({"first.z": 1})
    with pytest.raises(ConfigError, match=r"cannot set 'items\.5': items is a tuple of 2 items; '5' is not an index 0\.\.1"):
        d.replace({"items.5": 1})
    with pytest.raises(ConfigError, match=r"cannot set 'first\.x\.y': first\.x is the value 1 \(int\), not a definition"):
        d.replace({"first.x.y": 1})
    with pytest.raises(ConfigError, match=r"the definition \(Layers\) has no 'widths'; it has: sizes\.0\.\.2, act"):
        Layers(64, 32, 10).definition().replace({"widths": 1})
    with pytest.raises(ConfigError, match=r"a path is dotted names .* received 'first\.\.x'"):
        d.replace({"first..x": 1})
