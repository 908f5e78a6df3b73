"""TorchDataset and TFDataset: other libraries' datasets kept rebuildable — in the state when
small, by recipe, or fingerprinted by content and asked for again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset as TorchBase
from torch.utils.data import IterableDataset, TensorDataset

from ptdry import ConfigError, NotReadyError, ObjectDef, TFDataset, TorchDataset
from ptdry.core.dataref import DataRef


class Squares(TorchBase):
    """A map-style torch dataset of (x, x**2) for x in range(n), shifted by ``offset``."""

    def __init__(self, n: int = 6, offset: float = 0.0) -> None:
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = torch.tensor([float(i) + self.offset])
        return x, i * i


class Stream(IterableDataset):
    def __iter__(self):
        yield from (torch.tensor([float(i)]) for i in range(4))


def test_torch_datasets_of_one_class_with_other_contents_fingerprint_differently():
    assert DataRef.of(Squares(6)) == DataRef.of(Squares(6))
    assert DataRef.of(Squares(6)) != DataRef.of(Squares(6, offset=0.5))
    assert DataRef.of(TensorDataset(torch.zeros(4, 2))) != DataRef.of(TensorDataset(torch.ones(4, 2)))


def test_a_small_torch_dataset_is_stored_and_a_rebuilt_tree_needs_nothing_again():
    ds = TorchDataset(Squares())
    assert ds.stored and ds.supervised and len(ds) == 6 and ds[2][1] == 4
    rebuilt = ds.batch(3).definition().build()
    assert rebuilt.problems() == [
        "source: its elements are not loaded yet (rebuilt from a definition): call load_state_dict() with the saved state"
    ]
    rebuilt.load_state_dict(ds.batch(3).state_dict())
    x, y = rebuilt.peek()
    assert x.tolist() == [[0.0], [1.0], [2.0]] and y.tolist() == [0, 1, 4] and isinstance(y, torch.Tensor)


def test_a_torch_dataset_over_the_store_limit_is_asked_for_again():
    ds = TorchDataset(Squares(), store_limit=10)
    assert not ds.stored and ds.state_dict() == {}
    rebuilt = ds.definition().build()
    assert "wrapped a dataset object" in rebuilt.problems()[0] and "pass that dataset again" in rebuilt.problems()[0]
    with pytest.raises(NotReadyError, match=r"TorchDataset: it wrapped a dataset object .* ptdry could not store"):
        rebuilt.peek()


def test_a_torch_dataset_recipe_is_built_again_from_the_definition():
    ds = TorchDataset(ObjectDef(Squares, 5, offset=1.0))
    assert not ds.stored and len(ds) == 5 and ds[0][0].tolist() == [1.0]
    rebuilt = ds.definition().build()
    assert rebuilt.problems() == [] and rebuilt[4][0].tolist() == [5.0]


def test_an_iterable_torch_dataset_is_iterated_not_indexed():
    ds = TorchDataset(Stream())
    assert not ds.random_access and ds.count() == 4 and not ds.stored
    assert ds.batch(3).peek().tolist() == [[0.0], [1.0], [2.0]]
    with pytest.raises(TypeError, match=r"TorchDataset wraps an iterable dataset"):
        ds[0]


def test_what_is_not_a_torch_dataset_is_refused():
    with pytest.raises(ConfigError, match=r"TorchDataset needs a torch Dataset .* received int"):
        TorchDataset(3)


def _tf_squares():
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((np.arange(5.0), np.arange(5) ** 2))


def test_a_tf_dataset_is_iterated_as_tensors_and_stored_as_arrays():
    import tensorflow as tf

    ds = TFDataset(_tf_squares())
    assert ds.supervised and ds.count() == 5 and ds.stored and isinstance(ds.peek()[0], tf.Tensor)
    state = ds.state_dict()
    assert isinstance(state["elements"][0], np.ndarray)
    rebuilt = ds.definition().build()
    rebuilt.load_state_dict(state)
    x, y = rebuilt.batch(5).peek()
    assert isinstance(x, tf.Tensor) and y.numpy().tolist() == [0, 1, 4, 9, 16]


def test_a_tf_dataset_function_is_called_again_by_the_rebuilt_tree():
    ds = TFDataset(_tf_squares)
    rebuilt = ds.definition().build()
    assert rebuilt.problems() == [] and [int(y) for _, y in rebuilt] == [0, 1, 4, 9, 16]
    assert (
        DataRef.of(TFDataset(_tf_squares()).definition().kwargs["dataset"])
        == TFDataset(_tf_squares()).definition().kwargs["dataset"]
    )
