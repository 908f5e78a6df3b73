"""DataProvider and Batches: deterministic order, resumable batching, validation, state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdry.core.dataref import DataRef
from ptdry.data.loader import Batches, epoch_generator, num_batches
from ptdry.data.provider import DataProvider
from ptdry.errors import ConfigError, NotReadyError


def _data(n=10):
    X = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    y = np.arange(n, dtype=np.int32)
    return DataProvider(train=(X, y), val=(X[:4], y[:4]))


def _labels(batches):
    return [b[1].tolist() for b in batches]


def test_unshuffled_batches_come_in_order_with_a_smaller_last_batch():
    assert _labels(_data().provide("train", 4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_drop_last_leaves_out_the_smaller_batch():
    data = _data()
    assert _labels(data.provide("train", 4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert data.len_batches("train", 4, drop_last=True) == 2 and data.len_batches("train", 4) == 3


def test_shuffled_order_depends_only_on_seed_and_epoch():
    data = _data()
    a = _labels(data.provide("train", 3, shuffle=True, seed=5, epoch=2))
    torch.manual_seed(123)  # the global RNG plays no part
    b = _labels(data.provide("train", 3, shuffle=True, seed=5, epoch=2))
    assert a == b
    assert sorted(sum(a, [])) == list(range(10))
    assert a != _labels(data.provide("train", 3, shuffle=True, seed=5, epoch=3))
    assert a != _labels(data.provide("train", 3, shuffle=True, seed=6, epoch=2))


def test_skip_yields_exactly_the_remaining_batches_of_the_same_order():
    data = _data()
    full = _labels(data.provide("train", 3, shuffle=True, seed=1, epoch=4))
    for k in range(len(full) + 1):
        rest = data.provide("train", 3, shuffle=True, seed=1, epoch=4, skip=k)
        assert len(rest) == len(full) - k
        assert _labels(rest) == full[k:]


def test_batches_iterate_the_same_twice():
    b = _data().provide("train", 4, shuffle=True, seed=0, epoch=1)
    assert _labels(b) == _labels(b)


def test_epoch_generator_is_stable_across_calls():
    assert torch.equal(torch.randperm(50, generator=epoch_generator(3, 9)), torch.randperm(50, generator=epoch_generator(3, 9)))


def test_numpy_inputs_become_float32_features_and_int64_labels():
    x, y = next(iter(_data().provide("train", 2)))
    assert x.dtype == torch.float32 and y.dtype == torch.int64


def test_tensors_are_used_without_copy_when_dtypes_fit():
    X = torch.randn(6, 3)
    data = DataProvider(train=(X, torch.zeros(6, dtype=torch.int64)))
    (x, _), *_ = data.provide("train", 6)
    assert x.data_ptr() == X.data_ptr()


class _Squares(torch.utils.data.Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return torch.tensor([float(i)]), i * i


def test_a_torch_dataset_is_batched_and_shuffled_the_same_way():
    data = DataProvider(train=_Squares())
    batches = list(data.provide("train", 3, shuffle=True, seed=2, epoch=1))
    assert [len(b[0]) for b in batches] == [3, 3, 1]
    order = torch.randperm(7, generator=epoch_generator(2, 1)).tolist()
    assert batches[0][1].tolist() == [i * i for i in order[:3]]
    assert _labels(data.provide("train", 3, shuffle=True, seed=2, epoch=1, skip=2)) == [[order[6] ** 2]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"train": (np.zeros((3, 2)), np.zeros(4))}, r"train arrays have different lengths \[3, 4\]"),
        ({"train": np.zeros((3, 2))}, r"train is a single ndarray; pass a tuple such as \(train_X, train_y\)"),
        ({"val": "data.csv"}, r"val is a str; expected a tuple of arrays/tensors \(X, y\)"),
        ({"train": (np.zeros(3), [1, 2, 3])}, r"train\[1\] is a list; expected a NumPy array or torch tensor"),
        ({"train": ()}, r"train is an empty tuple"),
        ({"test": (np.zeros((0, 2)),)}, r"test has no samples"),
    ],
)
def test_bad_splits_are_rejected_with_a_message_naming_them(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DataProvider(**kwargs)


def test_unknown_and_missing_splits_are_reported():
    data = _data()
    with pytest.raises(ConfigError, match=r"unknown split 'valid'; expected one of train, val, test"):
        data.provide("valid", 2)
    with pytest.raises(ConfigError, match=r"has no 'test' split; it has \['train', 'val'\]"):
        data.provide("test", 2)
    assert data.has("val") and not data.has("test")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_batch_size_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        _data().provide("train", bad)


def test_skip_beyond_the_epoch_is_rejected():
    with pytest.raises(ConfigError, match=r"skip=4 is more than the 3 batches of this epoch"):
        _data().provide("train", 4, skip=4)


def test_definition_keeps_a_fingerprint_and_state_keeps_the_data():
    data = _data()
    definition = data.definition()
    assert isinstance(definition.kwargs["train"], DataRef) and definition.kwargs["test"] is None
    assert sorted(data.state_dict()) == ["train.0", "train.1", "val.0", "val.1"]

    rebuilt = definition.build()
    assert rebuilt.problems() == [
        "train data not loaded: call load_state_dict() with the saved state",
        "val data not loaded: call load_state_dict() with the saved state",
    ]
    with pytest.raises(NotReadyError, match="the train data of DataProvider is not loaded yet"):
        rebuilt.provide("train", 2)
    rebuilt.load_state_dict(data.state_dict())
    assert rebuilt.problems() == []
    assert _labels(rebuilt.provide("train", 3, shuffle=True, seed=4, epoch=1)) == _labels(
        data.provide("train", 3, shuffle=True, seed=4, epoch=1)
    )


def test_state_from_other_data_is_refused():
    rebuilt = _data().definition().build()
    other = _data(10).state_dict()
    other["train.1"] = other["train.1"] + 1
    with pytest.raises(ConfigError, match="the saved train data .* does not match this provider's definition"):
        rebuilt.load_state_dict(other)


def test_state_survives_an_archive_round_trip():
    from ptdry.io.archive import state_from_bytes, state_to_bytes

    data = _data()
    rebuilt = data.definition().build()
    rebuilt.load_state_dict(state_from_bytes(state_to_bytes(data.state_dict())))
    assert _labels(rebuilt.provide("val", 10)) == [[0, 1, 2, 3]]


def test_num_batches_and_batches_repr():
    assert num_batches(10, 4) == 3 and num_batches(10, 4, drop_last=True) == 2
    assert "skip=1, batches=2" in repr(Batches((torch.arange(10),), batch_size=4, skip=1))
