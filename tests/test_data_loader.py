"""DataLoader: batches of rows, positions in the state, exact resume with any sampler, workers
that change nothing but speed."""

from __future__ import annotations

import numpy as np
import pytest

from ptdry import (
    ConfigError,
    DataLoader,
    NumpyDataset,
    RandomSampler,
    SubsetSampler,
    TorchDataset,
    WeightedRandomSampler,
)


def _xy(n=10):
    return np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n)


def _labels(batches):
    return [np.asarray(y).tolist() for _, y in batches]


def test_batches_come_in_order_with_a_smaller_last_one_or_without_it():
    assert _labels(DataLoader(_xy(), batch_size=4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert _labels(DataLoader(_xy(), batch_size=4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(_xy(), batch_size=4)) == 3 and len(DataLoader(_xy(), batch_size=4, drop_last=True)) == 2


def test_a_loader_counts_rows_of_a_batched_dataset():
    ds = NumpyDataset(_xy()).unbatch().batch(3)  # elements are batches of 3: the loader regroups rows
    assert _labels(DataLoader(ds, batch_size=5)) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_sequential_batches_of_arrays_are_views_and_shuffled_ones_one_gather():
    x, y = _xy()
    xb, _ = next(iter(DataLoader((x, y), batch_size=4)))
    assert np.shares_memory(xb, x)
    xs, ys = next(iter(DataLoader((x, y), batch_size=4, shuffle=True)))
    assert not np.shares_memory(xs, x) and np.array_equal(xs, x[ys])


def test_the_shuffled_order_depends_on_seed_and_epoch_only():
    def epochs(seed, n=3):
        loader = DataLoader(_xy(), batch_size=3, shuffle=True, seed=seed)
        return [_labels(loader) for _ in range(n)]

    a = epochs(1)
    np.random.seed(0)
    assert a == epochs(1) and a != epochs(2)
    assert a[0] != a[1] and all(sorted(sum(e, [])) == list(range(10)) for e in a)


SAMPLERS = {
    "sequential": lambda: None,
    "random": lambda: RandomSampler(seed=4),
    "weighted": lambda: WeightedRandomSampler(np.linspace(0.1, 1, 10), num_samples=13),
    "subset": lambda: SubsetSampler([9, 3, 5, 1, 0, 2], shuffle=True),
}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_a_loader_restored_from_its_state_gives_exactly_the_batches_not_given_yet(sampler):
    def make():
        return DataLoader(NumpyDataset(_xy()), batch_size=3, sampler=SAMPLERS[sampler](), seed=7)

    reference = make()
    expected = [_labels(reference) for _ in range(3)]
    for epoch in range(3):
        for k in range(len(expected[epoch]) + 1):
            loader = make()
            it = iter(loader)
            for _ in range(epoch):
                list(it)
                it = iter(loader)
            given = [np.asarray(next(it)[1]).tolist() for _ in range(k)]
            resumed = make()
            resumed.load_state_dict(loader.state_dict())
            assert given + _labels(resumed.remaining()) == expected[epoch], (epoch, k)
            if epoch < 2:  # and the epoch after it
                assert _labels(resumed) == expected[epoch + 1], (epoch, k)


def test_iterating_moves_to_the_next_epoch_and_remaining_does_not_start_one():
    loader = DataLoader(_xy(), batch_size=4, shuffle=True, seed=0)
    first = _labels(loader)
    assert (loader.epochs_done, loader.batches_done) == (1, 0)
    second = _labels(loader)
    assert first != second and sorted(sum(second, [])) == list(range(10))
    loader.seek(0, 3)
    assert list(loader.remaining()) == [] and (loader.epochs_done, loader.batches_done) == (1, 0)
    assert _labels(loader.batches(0)) == first and (loader.epochs_done, loader.batches_done) == (1, 0)


def test_seeking_outside_the_epoch_is_refused():
    with pytest.raises(ConfigError, match=r"batch 4 is outside epoch 0, which has 3 batches \(4 rows each\)"):
        DataLoader(_xy(), batch_size=4).seek(0, 4)


def test_collate_builds_batches_from_rows():
    loader = DataLoader(_xy(), batch_size=4, collate=_collate_sums)
    assert list(loader) == [1 + 5 + 9 + 13, 17 + 21 + 25 + 29, 33 + 37]


def _collate_sums(rows):
    return int(sum(x.sum() for x, _ in rows))


def _gen():
    for i in range(7):
        yield np.array([i, i]), i


def test_an_iterable_dataset_is_batched_in_order_and_resumes_by_skipping_rows():
    loader = DataLoader(NumpyDataset(_gen, size=7), batch_size=3)
    assert _labels(loader) == [[0, 1, 2], [3, 4, 5], [6]] and len(loader) == 3
    loader.seek(0, 2)
    assert _labels(loader.remaining()) == [[6]]
    with pytest.raises(ConfigError, match=r"RandomSampler needs a map-style dataset, and NumpyDataset is iterable"):
        list(DataLoader(NumpyDataset(_gen), batch_size=3, shuffle=True))
    with pytest.raises(ConfigError, match=r"num_workers > 0 needs a map-style dataset"):
        list(DataLoader(NumpyDataset(_gen), batch_size=3, num_workers=2))


def test_workers_give_the_same_batches_in_the_same_order():
    data = (np.random.default_rng(0).random((101, 3)), np.arange(101))
    plain = DataLoader(data, batch_size=8, shuffle=True, seed=3)
    workers = DataLoader(data, batch_size=8, shuffle=True, seed=3, num_workers=2)
    for _ in range(2):  # two epochs
        a, b = list(plain), list(workers)
        assert len(a) == len(b) == 13
        assert all(np.array_equal(x1, x2) and np.array_equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    assert workers.state_dict()["epochs_done"] == 2
    workers.seek(1, 11)
    assert [y.tolist() for _, y in workers.remaining()] == [y.tolist() for _, y in a[11:]]
    in_order = DataLoader(data, batch_size=40, num_workers=2)  # sequential: slices sent to workers
    assert [y.tolist() for _, y in in_order] == [list(range(i, min(i + 40, 101))) for i in range(0, 101, 40)]


def test_workers_with_a_torch_dataset_and_collate_match_the_main_process():
    import torch
    from torch.utils.data import TensorDataset

    ds = TorchDataset(TensorDataset(torch.arange(40.0).reshape(20, 2), torch.arange(20)))
    a = list(DataLoader(ds, batch_size=6, shuffle=True, seed=1, collate=_collate_sums))
    b = list(DataLoader(ds, batch_size=6, shuffle=True, seed=1, collate=_collate_sums, num_workers=2))
    assert a == b


def test_a_loader_is_stored_and_rebuilt_with_its_data_sampler_and_position():
    loader = DataLoader(NumpyDataset(_xy()), batch_size=3, shuffle=True, seed=2)
    it = iter(loader)
    next(it)
    rebuilt = loader.definition().build()
    assert type(rebuilt.sampler) is RandomSampler
    rebuilt.load_state_dict(loader.state_dict())
    assert _labels(rebuilt) == _labels(it)


def test_shuffle_and_a_sampler_together_are_refused():
    with pytest.raises(ConfigError, match=r"give either shuffle=True or a sampler, not both"):
        DataLoader(_xy(), shuffle=True, sampler=RandomSampler())
    with pytest.raises(ConfigError, match=r"DataLoader dataset is a str; expected a ptdry Dataset"):
        DataLoader("data.csv")


def test_what_workers_receive_survives_pickling_as_spawned_workers_need(tmp_path):
    import pickle

    from ptdry import Cast, DataReader
    from ptdry.data.loader import _Fetch

    np.savez(tmp_path / "xy.npz", x=np.arange(20.0).reshape(10, 2), y=np.arange(10))
    for rows in (NumpyDataset(_xy()).unbatch().map(Cast("float32")), DataReader().read(tmp_path / "xy.npz")):
        rows[0]  # a file is open now: its handle stays in this process
        fetch = _Fetch(rows, None)
        copy = pickle.loads(pickle.dumps(fetch))
        index = np.array([7, 2, 5])
        assert all(np.array_equal(a, b) for a, b in zip(fetch[index], copy[index]))
