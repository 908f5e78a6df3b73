"""DataProvider: pyveda's partitions re-allocated by property callbacks, explicit splits of
every form, DataLoaders handed out, and the data travelling with the state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdry import ConfigError, DataLoader, DataProvider, NotReadyError, NumpyDataset, ValidationError
from ptdry.core.dataref import DataRef
from ptdry.data.partitions import allocate


def _rows(n):
    return NumpyDataset((np.arange(2 * n, dtype=np.float32).reshape(n, 2), np.arange(n)))


# -- pyveda PR-55 -------------------------------------------------------------------------------------------
def test_a_partition_allocates_rows_to_the_splits():
    dp = DataProvider(_rows(100), partition=(70, 20, 10), count=100)
    assert (dp.train.allocated, dp.val.allocated, dp.test.allocated) == (70, 20, 10)


def test_assigning_a_partition_reallocates_the_splits():
    dp = DataProvider(_rows(100), partition=(70, 20, 10), count=100)
    dp.partition = (90, 5, 5)
    assert (dp.train.allocated, dp.val.allocated, dp.test.allocated) == (90, 5, 5)


def test_a_partition_that_does_not_sum_to_100_is_refused_and_the_old_one_kept():
    dp = DataProvider(_rows(100), partition=(70, 20, 10))
    with pytest.raises(
        ValidationError, match=r"DataProvider.partition must be 3 non-negative numbers summing to 100: they sum to 110"
    ):
        dp.partition = (90, 10, 10)
    assert dp.partition == (70, 20, 10) and dp.train.allocated == 70


def test_count_and_partition_give_contiguous_index_ranges():
    dp = DataProvider(_rows(300), partition=(70, 20, 10), seed=None)
    dp.partition = (80, 0, 20)
    dp.count = 200
    train, val, test = dp.train, dp.val, dp.test
    assert (train.allocated, val.allocated, test.allocated) == (160, 0, 40)
    assert (train.index_range[0], train.index_range[-1]) == (0, 159)
    assert len(val.index_range) == 0 and val.index_range.start == 160
    assert (test.index_range[0], test.index_range[-1]) == (160, 199)
    assert train.indices.tolist() == list(range(160)) and int(test[0][1]) == 160


def test_a_count_above_the_rows_is_refused():
    dp = DataProvider(_rows(50))
    with pytest.raises(
        ValidationError, match=r"DataProvider.count must be at most the 50 rows of the dataset; received 60"
    ):
        dp.count = 60
    assert dp.count is None
    with pytest.raises(ConfigError, match=r"at most the 50 rows"):
        DataProvider(_rows(50), count=60)


def test_users_register_callbacks_on_any_property():
    dp = DataProvider(_rows(10), classes=["cat"])
    seen = []
    dp.on_change("classes", lambda name, old, new, obj: seen.append((name, old, new)))
    dp.on_change("count", lambda name, old, new, obj: seen.append((name, obj.train.allocated)))
    dp.classes = ["cat", "horse"]
    dp.count = 5
    assert seen == [("classes", ("cat",), ("cat", "horse")), ("count", 4)]


def test_a_seeded_partition_is_a_fixed_permutation_and_splits_do_not_overlap():
    dp = DataProvider(_rows(100), seed=3)
    sets = [set(dp.split(s).indices.tolist()) for s in ("train", "val", "test")]
    assert sum(map(len, sets)) == 100 and set.union(*sets) == set(range(100))
    assert dp.train.indices.tolist() == DataProvider(_rows(100), seed=3).train.indices.tolist() != list(range(70))
    assert [int(y) for _, y in dp.val][:3] == dp.val.indices[:3].tolist()


def test_allocation_sums_to_count_exactly():
    assert allocate(1797, (70, 15, 15)) == [1258, 270, 269]
    assert allocate(7, (50, 50, 0)) == [4, 3, 0]
    assert all(sum(allocate(n, (33.3, 33.3, 33.4))) == n for n in range(50))


# -- provide ---------------------------------------------------------------------------------------------------
def test_provide_hands_out_a_shuffled_train_loader_and_ordered_others():
    dp = DataProvider(_rows(100), seed=None, batch_size=16)
    train, val = dp.provide("train"), dp.provide("val")
    assert isinstance(train, DataLoader) and train.batch_size == 16 and len(val) == 2
    assert [y.tolist() for _, y in val] == [list(range(70, 86)), list(range(86, 90))]
    assert sorted(int(v) for _, y in train for v in y) == list(range(70))
    assert dp.provide("train") is train and dp.provide("train", 8) is not train


def test_explicit_splits_take_every_form():
    x, y = np.zeros((6, 2), np.float32), np.arange(6)
    loader = DataLoader((x, y), batch_size=4)
    dp = DataProvider(train=(x, y), val=NumpyDataset((x, y)), test=loader)
    assert dp.provide("test") is loader and dp.has("val") and dp.size("train") == 6
    with pytest.raises(
        ConfigError, match=r"the test split is a DataLoader with batch_size=4, and batch_size=2 was asked for"
    ):
        dp.provide("test", 2)
    tensors = DataProvider(train=(torch.zeros(3, 2), torch.arange(3)))
    xb, yb = next(iter(tensors.provide("train", shuffle=False)))
    assert isinstance(xb, torch.Tensor) and yb.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"train": (np.zeros((3, 2)), np.zeros(4))},
            ConfigError,
            r"NumpyDataset's data have different lengths \[3, 4\]",
        ),
        ({"val": "data.csv"}, ConfigError, r"val is a str; expected a ptdry Dataset, arrays such as \(X, y\)"),
        ({"train": (np.zeros(3), [1, 2, 3])}, ConfigError, r"train holds a list; a tuple of data must hold arrays"),
        (
            {"dataset": _rows(3), "train": (np.zeros(3),)},
            ConfigError,
            r"give either one dataset to partition or the splits \['train'\]",
        ),
        (
            {"train": (np.zeros(3),), "partition": (50, 50, 0)},
            ConfigError,
            r"partition and count allocate splits from one dataset",
        ),
        (
            {"dataset": _rows(3), "partition": (50, 40, 0)},
            ValidationError,
            r"DataProvider.partition must be 3 non-negative numbers summing to 100",
        ),
    ],
)
def test_bad_arguments_are_refused_with_a_message_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataProvider(**kwargs)


def test_unknown_and_missing_splits_are_reported():
    dp = DataProvider(train=_rows(4), val=_rows(2))
    with pytest.raises(ConfigError, match=r"unknown split 'valid'; expected one of train, val, test"):
        dp.provide("valid")
    with pytest.raises(ConfigError, match=r"DataProvider has no 'test' split; it has \['train', 'val'\]"):
        dp.provide("test")
    empty_val = DataProvider(_rows(10), partition=(100, 0, 0))
    assert not empty_val.has("val") and empty_val.has("train")
    with pytest.raises(ConfigError, match=r"has no 'val' split"):
        empty_val.provide("val")
    with pytest.raises(ValidationError, match=r"partition applies to DataProvider\(dataset, partition=...\)"):
        dp.partition = (50, 50, 0)


# -- state ---------------------------------------------------------------------------------------------------
def test_the_definition_keeps_fingerprints_and_the_state_the_data():
    dp = DataProvider(_rows(20), partition=(50, 25, 25), seed=1)
    definition = dp.definition()
    assert isinstance(definition.kwargs["dataset"].kwargs["data"], DataRef)
    rebuilt = definition.build()
    assert rebuilt.problems() == ["dataset: data not loaded: call load_state_dict() with the saved state"]
    assert rebuilt.has("train")
    with pytest.raises(NotReadyError, match=r"DataProvider is not ready: dataset: data not loaded"):
        rebuilt.provide("train")
    rebuilt.load_state_dict(dp.state_dict())
    assert rebuilt.problems() == [] and rebuilt.train.indices.tolist() == dp.train.indices.tolist()
    assert [y.tolist() for _, y in rebuilt.provide("val")] == [y.tolist() for _, y in dp.provide("val")]


def test_state_from_other_data_is_refused():
    rebuilt = DataProvider(train=_rows(4)).definition().build()
    with pytest.raises(
        ConfigError, match=r"the saved data \(fingerprint [0-9a-f]{12}\) does not match this NumpyDataset's definition"
    ):
        rebuilt.load_state_dict(DataProvider(train=_rows(5)).state_dict())
