"""Properties: typed, validated attributes with change callbacks."""

from __future__ import annotations

import numpy as np
import pytest

from ptdry import Bool, Choice, Float, Int, Module, Partition, Property, Seq, Str
from ptdry.errors import ConfigError, ValidationError


def is_even(value):
    return value % 2 == 0


class Split(Module):
    partition = Partition(default=(80, 10, 10))
    batch_size = Int(default=32, min=1, max=4096)
    lr = Float(default=0.1, min=0.0)
    name = Str(default="run", nonempty=True)
    shuffle = Bool(default=True)
    mode = Choice(["train", "eval"], default="train")
    sizes = Seq(default=(2, 4), item=Int(min=0, validators=[is_even]))
    workers = Int(default=None, allow_none=True)
    even = Int(default=0, validators=[is_even])
    required = Str()

    def __init__(self, partition=(80, 10, 10), batch_size=32):
        self.partition = partition
        self.batch_size = batch_size


# -- the family -----------------------------------------------------------------------------------
def test_defaults_are_read_before_any_assignment():
    s = Split()
    assert (s.lr, s.name, s.shuffle, s.mode, s.sizes, s.workers) == (0.1, "run", True, "train", (2, 4), None)


def test_constructor_arguments_assigned_to_properties_are_validated_and_recorded():
    s = Split((70, 20, 10), batch_size=8)
    assert s.partition == (70.0, 20.0, 10.0) and s.batch_size == 8
    assert s.dry_kwargs["partition"] == (70, 20, 10)
    with pytest.raises(ValidationError, match=r"Split\.batch_size must be an integer: below the minimum 1; received 0"):
        Split(batch_size=0)


def test_a_property_without_default_says_so_when_read():
    with pytest.raises(AttributeError, match=r"Split\.required has no value yet and no default"):
        Split().required


def test_int_accepts_integers_within_bounds_only():
    s = Split()
    s.batch_size = np.int64(64)
    assert s.batch_size == 64 and type(s.batch_size) is int
    with pytest.raises(ValidationError, match=r"Split\.batch_size must be an integer: not an integer; received True"):
        s.batch_size = True
    with pytest.raises(ValidationError, match=r"Split\.batch_size must be an integer: not an integer; received 2\.0"):
        s.batch_size = 2.0
    with pytest.raises(ValidationError, match=r"Split\.batch_size must be an integer: above the maximum 4096; received 5000"):
        s.batch_size = 5000


def test_float_accepts_numbers_and_refuses_nan_and_out_of_range():
    s = Split()
    s.lr = 1
    assert s.lr == 1.0 and type(s.lr) is float
    with pytest.raises(ValidationError, match=r"Split\.lr must be a number: NaN is not allowed; received nan"):
        s.lr = float("nan")
    with pytest.raises(ValidationError, match=r"Split\.lr must be a number: below the minimum 0\.0; received -1"):
        s.lr = -1
    with pytest.raises(ValidationError, match=r"Split\.lr must be a number: not a number; received '0\.1'"):
        s.lr = "0.1"


def test_str_refuses_non_strings_and_empty_when_nonempty():
    s = Split()
    with pytest.raises(ValidationError, match=r"Split\.name must be a string: empty; received ''"):
        s.name = ""
    with pytest.raises(ValidationError, match=r"Split\.name must be a string: not a string; received 3"):
        s.name = 3


def test_bool_refuses_integers():
    s = Split()
    s.shuffle = False
    with pytest.raises(ValidationError, match=r"Split\.shuffle must be True or False: not a bool; received 1"):
        s.shuffle = 1


def test_choice_accepts_only_its_options():
    s = Split()
    s.mode = "eval"
    with pytest.raises(ValidationError, match=r"Split\.mode must be one of \['train', 'eval'\]: not an option; received 'test'"):
        s.mode = "test"
    with pytest.raises(ConfigError, match=r"Choice needs at least one option"):
        Choice([])


def test_seq_stores_a_tuple_and_checks_every_item_with_its_validators():
    s = Split()
    s.sizes = [0, 8]
    assert s.sizes == (0, 8)
    with pytest.raises(ValidationError, match=r"Split\.sizes must be a sequence: item 1: rejected by validator 'is_even'; received \(2, 3\)"):
        s.sizes = (2, 3)
    with pytest.raises(ValidationError, match=r"Split\.sizes must be a sequence: item 0: below the minimum 0; received \[-2\]"):
        s.sizes = [-2]
    with pytest.raises(ValidationError, match=r"Split\.sizes must be a sequence: not a sequence; received 'ab'"):
        s.sizes = "ab"


def test_allow_none_accepts_none():
    s = Split()
    s.workers = 4
    s.workers = None
    assert s.workers is None


def test_user_defined_validator_rejects_with_its_name():
    s = Split()
    s.even = 4
    with pytest.raises(ValidationError, match=r"Split\.even must be an integer: rejected by validator 'is_even'; received 3"):
        s.even = 3
    assert s.even == 4


def test_a_validator_may_raise_its_own_message():
    def below_ten(value):
        if value >= 10:
            raise ValueError("must stay below ten")

    class Box(Module):
        size = Int(default=1, validators=[below_ten])

        def __init__(self):
            pass

    b = Box()
    with pytest.raises(ValidationError, match=r"Box\.size must be an integer: must stay below ten; received 12"):
        b.size = 12


def test_a_bad_default_is_refused_when_the_property_is_made():
    with pytest.raises(ValidationError, match=r"the default of Int\(\.\.\.\) must be an integer: not an integer; received 'a'"):
        Int(default="a")


def test_custom_property_subclass_overrides_check():
    class Even(Property):
        kind = "an even integer"

        def check(self, value):
            if value % 2:
                raise ValueError("odd")
            return value

    class Box(Module):
        n = Even(default=0)

        def __init__(self):
            pass

    b = Box()
    with pytest.raises(ValidationError, match=r"Box\.n must be an even integer: odd; received 1"):
        b.n = 1


# -- Partition --------------------------------------------------------------------------------------
def test_partition_accepts_three_non_negative_numbers_summing_to_100_with_float_tolerance():
    s = Split()
    s.partition = (33.3, 33.3, 33.4)
    assert s.partition == (33.3, 33.3, 33.4)
    s.partition = [100, 0, 0]
    assert s.partition == (100.0, 0.0, 0.0)


def test_partition_refuses_a_wrong_sum():
    s = Split()
    with pytest.raises(ValidationError, match=r"Split\.partition must be 3 non-negative numbers summing to 100: they sum to 101; received \(50, 50, 1\)"):
        s.partition = (50, 50, 1)


def test_partition_refuses_negative_parts():
    s = Split()
    with pytest.raises(ValidationError, match=r"Split\.partition must be 3 non-negative numbers summing to 100: item 0: negative; received \(-1, 51, 50\)"):
        s.partition = (-1, 51, 50)


def test_partition_refuses_the_wrong_number_of_parts():
    s = Split()
    with pytest.raises(ValidationError, match=r"needs 3 items, got 2; received \(50, 50\)"):
        s.partition = (50, 50)


def test_partition_with_other_parts_and_total():
    class Fractions(Module):
        split = Partition(default=(0.5, 0.5), parts=2, total=1.0)

        def __init__(self):
            pass

    f = Fractions()
    f.split = (0.25, 0.75)
    with pytest.raises(ValidationError, match=r"Fractions\.split must be 2 non-negative numbers summing to 1: they sum to 1\.5"):
        f.split = (0.75, 0.75)


# -- change callbacks ---------------------------------------------------------------------------------
def test_on_change_calls_fn_with_name_old_new_and_object():
    s = Split()
    calls = []
    s.on_change("partition", lambda *args: calls.append(args))
    s.partition = (70, 20, 10)
    assert calls == [("partition", (80.0, 10.0, 10.0), (70.0, 20.0, 10.0), s)]


def test_on_change_fires_only_on_a_real_change():
    s = Split()
    calls = []
    s.on_change("partition", lambda name, old, new, obj: calls.append(new))
    s.partition = (80, 10, 10)  # equal to the current value
    s.partition = (70, 20, 10)
    s.partition = [70.0, 20.0, 10.0]  # equal after normalization
    assert calls == [(70.0, 20.0, 10.0)]


def test_on_change_fires_in_registration_order():
    s = Split()
    order = []
    s.on_change("batch_size", lambda *a: order.append("first"))
    s.on_change("batch_size", lambda *a: order.append("second"))
    s.on_change("batch_size", lambda *a: order.append("third"))
    s.batch_size = 64
    assert order == ["first", "second", "third"]


def test_on_change_is_per_object():
    a, b = Split(), Split()
    calls = []
    a.on_change("batch_size", lambda name, old, new, obj: calls.append(obj))
    b.batch_size = 7
    a.batch_size = 8
    assert calls == [a]


def test_on_change_returns_a_function_that_unregisters():
    s = Split()
    calls = []
    remove = s.on_change("lr", lambda *a: calls.append(a[2]))
    s.lr = 0.2
    remove()
    s.lr = 0.3
    assert calls == [0.2]


def test_failed_validation_leaves_the_old_value_and_calls_no_listener():
    s = Split()
    s.partition = (60, 20, 20)
    calls = []
    s.on_change("partition", lambda *a: calls.append(a))
    with pytest.raises(ValidationError, match=r"they sum to 101"):
        s.partition = (50, 50, 1)
    assert s.partition == (60.0, 20.0, 20.0)
    assert calls == []


def test_on_change_refuses_unknown_properties_and_non_callables():
    s = Split()
    with pytest.raises(ConfigError, match=r"Split has no property 'nope'; properties: \[.*'partition'.*\]"):
        s.on_change("nope", print)
    with pytest.raises(ConfigError, match=r"on_change needs a callable; received 3"):
        s.on_change("lr", 3)


def test_validation_error_is_a_config_error_and_a_value_error():
    s = Split()
    with pytest.raises(ValueError, match=r"Split\.mode"):
        s.mode = "x"
    with pytest.raises(ConfigError, match=r"Split\.mode"):
        s.mode = "x"


def test_ptdry_constructors_validate_their_arguments_with_properties():
    from ptdry import Looper, ValidationError

    with pytest.raises(ValidationError, match=r"Looper\.batch_size must be an integer: not an integer; received '32'"):
        Looper(batch_size="32")


def test_setting_a_property_after_construction_updates_the_definition():
    from ptdry import Looper

    looper = Looper(epochs=3)
    looper.epochs = 10
    assert looper.definition().kwargs["epochs"] == 10
    assert looper.definition().build().epochs == 10


def test_arguments_are_recorded_as_given_during_construction():
    from ptdry import TimeLimit

    assert TimeLimit(seconds=5).definition().kwargs["seconds"] == 5  # not the normalized 5.0


def test_a_refused_child_leaves_the_tree_unchanged():
    import torch

    from ptdry import ObjectDef, Trainer, ValidationError
    from ptdry.train.model import Criterion, Model, Optimizer

    trainer = Trainer(Model(ObjectDef(torch.nn.Linear, 2, 2), Optimizer(torch.optim.SGD, lr=0.1), Criterion(torch.nn.MSELoss)), progress_bar=False)
    looper = trainer.looper
    with pytest.raises(ValidationError, match="Trainer.looper"):
        trainer.looper = torch.nn.Linear(1, 1)
    assert trainer.looper is looper and dict(trainer.named_children())["looper"] is looper
