"""Dataset and its vocabulary: DRYML's own data tests, run for the NumPy, torch and TensorFlow
backends, plus what DRYML got wrong (its shuffle never picked the last buffered element, its
errors were not exceptions)."""

from __future__ import annotations

import numpy as np
import pytest

from ptdry import Cast, DataError, NumpyDataset, PtdryError, TFDataset, TorchDataset
from ptdry.data import structure

BACKENDS = ["numpy", "torch", "tf"]
N = 32


def as_np(value):
    return structure.convert(value, "numpy")


def block(backend: str, *arrays: np.ndarray):
    """One batch of ``len(arrays[0])`` rows (a pair when two arrays are given), in ``backend``."""
    data = arrays[0] if len(arrays) == 1 else tuple(arrays)
    if backend == "numpy":
        return NumpyDataset(data)
    if backend == "torch":
        return NumpyDataset(data).torch()
    import tensorflow as tf

    return TFDataset(tf.data.Dataset.from_tensors(data), batch_size=len(arrays[0]))


def rows(backend: str, *arrays: np.ndarray):
    """The rows of ``arrays`` as elements, from each backend's own kind of dataset."""
    data = arrays[0] if len(arrays) == 1 else tuple(arrays)
    if backend == "numpy":
        return NumpyDataset([structure.row(data, i) for i in range(len(arrays[0]))])
    if backend == "torch":
        import torch
        from torch.utils.data import TensorDataset

        ds = TensorDataset(*[torch.from_numpy(a) for a in arrays])
        return TorchDataset(ds).map(_first) if len(arrays) == 1 else TorchDataset(ds)
    import tensorflow as tf

    return TFDataset(tf.data.Dataset.from_tensor_slices(data))


def _first(element):
    return element[0]


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).random(shape)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


# -- DRYML's test_numpy_dataset_* / test_tf_dataset_* ---------------------------------------------------
def test_unbatching_a_block_yields_its_rows_in_order(backend):
    data = _rand(10, 20)
    got = [as_np(el) for el in block(backend, data).unbatch()]
    assert len(got) == 10 and all(np.array_equal(g, data[i]) for i, g in enumerate(got))


def test_a_block_is_one_element_holding_all_rows(backend):
    data = _rand(10, 20)
    ds = block(backend, data)
    assert ds.batch_size == 10 and ds.count() == 1
    assert np.array_equal(as_np(next(iter(ds))), data) and np.array_equal(as_np(ds.peek()), data)


def test_rows_iterate_one_by_one(backend):
    data = _rand(N, 20)
    assert [as_np(el).tolist() for el in rows(backend, data)] == data.tolist()


def test_batching_rows_stacks_them(backend):
    data = _rand(N, 20)
    assert np.array_equal(as_np(rows(backend, data).batch(N).peek()), data)
    quarters = [as_np(el) for el in rows(backend, data).batch(N // 4)]
    assert len(quarters) == 4 and all(np.array_equal(q, data[i * 8 : (i + 1) * 8]) for i, q in enumerate(quarters))


def test_batch_then_unbatch_gives_the_rows_back(backend):
    data = _rand(N, 20)
    ds = rows(backend, data)
    assert [as_np(a).tolist() for a in ds] == [as_np(b).tolist() for b in ds.batch(N // 4).unbatch()]


def test_as_indexed_numbers_rows_from_zero(backend):
    data = _rand(N, 20)
    for i, (idx, el) in enumerate(rows(backend, data).as_indexed()):
        assert idx == i and np.array_equal(as_np(el), data[i])


def test_indexing_a_block_then_unbatching_numbers_each_row(backend):
    data = _rand(N, 20)
    seen = list(block(backend, data).as_indexed().unbatch())
    assert [int(idx) for idx, _ in seen] == list(range(N))
    assert all(np.array_equal(as_np(el), data[i]) for i, (_, el) in enumerate(seen))


def test_as_not_indexed_strips_the_indices(backend):
    data = _rand(N, 20)
    ds = block(backend, data).as_indexed().as_not_indexed().unbatch()
    assert [as_np(el).tolist() for el in ds] == data.tolist()
    again = rows(backend, data).as_indexed()
    assert again.as_indexed() is again and not again.as_not_indexed().indexed


def test_indexed_pairs_keep_both_parts(backend):
    x, y = _rand(N, 20), _rand(N, 20, seed=1)
    for i, (idx, (a, b)) in enumerate(block(backend, x, y).as_indexed().unbatch()):
        assert idx == i and np.array_equal(as_np(a), x[i]) and np.array_equal(as_np(b), y[i])


def test_batching_to_another_size_makes_a_new_dataset_and_to_the_same_size_keeps_it(backend):
    x, y = _rand(N, 20), _rand(N, 20, seed=1)
    batched = block(backend, x, y)
    assert batched.batch(2) is not batched and batched.batch(2).batch_size == 2
    assert [int(as_np(b[1]).shape[0]) for b in batched.batch(10)] == [10, 10, 10, 2]
    by_32 = rows(backend, x).batch(N)
    assert by_32.batch(N) is by_32


def test_take_after_unbatch_counts_rows(backend):
    data = _rand(N, 20)
    taken = list(block(backend, data).unbatch().take(10))
    assert len(taken) == 10 and all(tuple(el.shape) == (20,) for el in taken)


def test_peek_and_iteration_repeat_the_same_elements(backend):
    data = _rand(N, 20)
    ds = rows(backend, data)
    assert np.array_equal(as_np(ds.peek()), as_np(ds.peek()))
    assert all(np.array_equal(as_np(a), as_np(b)) for a, b in zip(ds, ds))


def test_a_supervised_block_peeks_as_a_tuple(backend):
    x, y = _rand(N, 20), _rand(N, 20, seed=1)
    ds = block(backend, x, y)
    a, b = ds.peek(), ds.peek()
    assert ds.supervised and type(a) is tuple and type(b) is tuple
    assert np.array_equal(as_np(a[0]), as_np(b[0])) and np.array_equal(as_np(a[1]), y)


# -- conversions and DRYML's chained transforms ------------------------------------------------------------
@pytest.mark.parametrize("to", BACKENDS)
def test_conversions_change_the_element_type_and_keep_batches(backend, to):
    data = _rand(N, 5)
    converted = getattr(block(backend, data), to)()
    element = converted.peek()
    assert structure.framework(element) == to and converted.batch_size == N
    assert np.array_equal(as_np(element), data)
    assert all(structure.framework(el) == to for el in getattr(rows(backend, data), to)())


def test_drymls_readme_example_holds():
    assert NumpyDataset(np.random.random((32, 10, 10))).tf().unbatch().peek().shape == (10, 10)


def test_numpy_to_torch_shares_memory_and_torch_to_numpy_too():
    data = _rand(4, 3)
    tensor = NumpyDataset(data).torch().peek()
    tensor[0, 0] = 7.0
    assert data[0, 0] == 7.0
    assert np.shares_memory(NumpyDataset(data).torch().numpy().peek(), data)


def test_converted_datasets_iterate_twice_and_with_two_iterators_at_once(backend):
    data = _rand(N, 5)
    ds = block(backend, data).unbatch().tf()
    assert [as_np(e).tolist() for e in ds] == [as_np(e).tolist() for e in ds] == data.tolist()
    first, second = iter(ds), iter(ds)
    assert np.array_equal(as_np(next(first)), data[0]) and np.array_equal(as_np(next(second)), data[0])


def test_a_round_trip_through_frameworks_keeps_the_values(backend):
    data = _rand(N, 5)
    original = rows(backend, data)
    assert [as_np(e).tolist() for e in original.numpy().tf().torch()] == data.tolist()


def test_apply_x_of_an_unsupervised_dataset_applies_to_the_whole_element(backend):
    data = _rand(N, 5)
    squared = rows(backend, data).numpy().apply_X(np.square).tf()
    assert all(np.allclose(as_np(e), data[i] ** 2) for i, e in enumerate(squared))


def test_apply_x_and_apply_y_of_a_supervised_dataset_touch_one_side(backend):
    x, y = _rand(N, 5), _rand(N, 5, seed=1)
    ds = rows(backend, x, y).numpy()
    for i, (a, b) in enumerate(ds.apply_X(np.square).tf()):
        assert np.allclose(as_np(a), x[i] ** 2) and np.array_equal(as_np(b), y[i])
    for i, (a, b) in enumerate(ds.apply_Y(np.negative)):
        assert np.array_equal(a, x[i]) and np.array_equal(b, -y[i])


def test_apply_y_needs_a_supervised_dataset():
    with pytest.raises(
        DataError, match=r"apply_Y needs a supervised dataset \(elements \(X, Y\)\); NumpyDataset is not"
    ):
        NumpyDataset(np.zeros((3, 2))).apply_Y(np.negative)


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_cast_gives_every_array_the_dtype_in_its_own_framework(backend, dtype):
    ds = block(backend, np.arange(6).reshape(3, 2).astype(np.int32), np.arange(3).astype(np.int16)).map(Cast(dtype))
    x, y = ds.peek()
    assert structure.framework(x) == backend
    assert as_np(x).dtype == np.dtype(dtype) and as_np(y).dtype == np.dtype(dtype)
    assert as_np(ds.unbatch().batch(2).peek()[0]).dtype == np.dtype(dtype)


def test_cast_refuses_what_is_not_a_dtype():
    with pytest.raises(PtdryError, match=r"Cast needs a NumPy dtype name such as 'float32'; received 'floaty'"):
        Cast("floaty")


# -- collect, count, shuffle -------------------------------------------------------------------------------------
def test_collecting_twice_gives_the_same_elements_without_reading_again(backend):
    data = _rand(N, 5)
    once = rows(backend, data).map(_square_np).collect()
    twice = once.collect()
    assert twice is once and once.random_access and len(once) == N
    assert [e.tolist() for e in once] == [e.tolist() for e in twice] == (data**2).tolist()


def _square_np(x):
    return as_np(x) ** 2


def test_shuffle_keeps_count_and_every_element(backend):
    data = np.arange(N, dtype=np.float64)[:, None]
    ds = rows(backend, data)
    shuffled = ds.shuffle(8, seed=3)
    assert shuffled.count() == ds.count() == N
    values = sorted(float(as_np(e)[0]) for e in shuffled)
    assert values == list(range(N))
    assert [float(as_np(e)[0]) for e in shuffled] == [float(as_np(e)[0]) for e in ds.shuffle(8, seed=3)]


def test_shuffle_can_pick_the_last_buffered_element_first():
    # DRYML drew from [0, buffer-1), so the last buffered element never came out first
    firsts = {int(NumpyDataset(list(range(4))).shuffle(4, seed=s).peek()) for s in range(40)}
    assert firsts == {0, 1, 2, 3}


def test_shuffling_a_batched_dataset_shuffles_rows_and_keeps_the_batch_size():
    ds = NumpyDataset(np.arange(10)).shuffle(10, seed=0)
    assert ds.batch_size == 10 and sorted(ds.peek().tolist()) == list(range(10))


def test_peek_of_an_empty_dataset_says_so_with_an_exception():
    with pytest.raises(DataError, match=r"cannot peek Window: it has no elements"):
        NumpyDataset(np.zeros((3, 2))).unbatch().skip(5).peek()
    assert issubclass(DataError, Exception) and issubclass(DataError, ValueError)


def test_take_and_skip_compose_into_one_window():
    ds = NumpyDataset(np.arange(10)).unbatch()
    window = ds.skip(2).take(5).skip(1)
    assert [int(x) for x in window] == [3, 4, 5, 6] and len(window) == 4 and window.source is ds


def test_map_style_datasets_index_like_sequences():
    ds = NumpyDataset(np.arange(5)).unbatch()
    assert int(ds[-1]) == 4 and ds.random_access
    with pytest.raises(IndexError, match=r"index 5 is out of range for Unbatched of 5 elements"):
        ds[5]
    with pytest.raises(TypeError, match=r"Shuffled is iterable, not map-style"):
        ds.shuffle(2)[0]
    with pytest.raises(TypeError, match=r"the length of Shuffled"):
        len(NumpyDataset(_gen).shuffle(2))


def _gen():
    yield from range(3)


def test_a_pipeline_is_stored_and_rebuilt_with_its_data():
    ds = NumpyDataset((np.arange(6.0).reshape(3, 2), np.arange(3))).unbatch().map(Cast("float32")).batch(2)
    rebuilt = ds.definition().build()
    assert rebuilt.problems() == [
        "source: source: source: data not loaded: call load_state_dict() with the saved state"
    ]
    rebuilt.load_state_dict(ds.state_dict())
    assert [b[0].tolist() for b in rebuilt] == [b[0].tolist() for b in ds]


def test_a_lambda_in_a_pipeline_works_until_the_definition_is_asked_for():
    ds = NumpyDataset(np.arange(3)).map(lambda x: x + 1)
    assert ds.peek().tolist() == [1, 2, 3]
    with pytest.raises(PtdryError, match=r"argument Mapped.fn = <function .*<lambda>> cannot be imported by name"):
        ds.definition()
