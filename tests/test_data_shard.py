"""DataLoader.shard: each rank's part of every global batch; together the ranks' step j is
exactly batch j of one process with the global batch size, in the same order."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ptdry import DataLoader, RandomSampler
from ptdry.data.dataset import Dataset
from ptdry.errors import ConfigError


def _rows(loader: DataLoader, epoch: int) -> list[list[int]]:
    loader.seek(epoch, 0)
    return [batch.tolist() for batch in loader.remaining()]


@pytest.mark.parametrize("sampler", [None, RandomSampler(seed=3)], ids=["sequential", "shuffled"])
def test_the_ranks_steps_together_are_the_batches_of_one_process(sampler):
    n, world, per_rank = 203, 3, 8
    single = DataLoader(np.arange(n), batch_size=world * per_rank, sampler=sampler)
    ranks = [DataLoader(np.arange(n), batch_size=per_rank, sampler=sampler).shard(r, world) for r in range(world)]
    for epoch in (0, 1):
        expected = _rows(single, epoch)
        parts = [_rows(loader, epoch) for loader in ranks]
        assert {len(p) for p in parts} == {len(expected)} == {len(ranks[0])}  # every rank takes as many steps
        for j, batch in enumerate(expected):
            assert sum((p[j] for p in parts), []) == batch
    # the last global batch (203 - 8 * 24 = 11 rows) is split 4/4/3, each part's loss weighted by its share
    assert [len(p[-1]) for p in parts] == [4, 4, 3]
    assert [loader.loss_scale(1, 8) for loader in ranks] == pytest.approx([3 * 4 / 11, 3 * 4 / 11, 3 * 3 / 11])
    assert ranks[0].loss_scale(1, 0) == 1.0


def test_a_sharded_loader_resumes_at_a_global_batch():
    whole = DataLoader(np.arange(100), batch_size=5, shuffle=True, seed=1).shard(1, 2)
    expected = _rows(whole, 2)
    resumed = DataLoader(np.arange(100), batch_size=5, shuffle=True, seed=1).shard(1, 2).seek(2, 4)
    assert [b.tolist() for b in resumed.remaining()] == expected[4:]


def test_a_last_global_batch_smaller_than_the_world_is_left_out_of_training_but_not_of_evaluation(caplog):
    loaders = [DataLoader(np.arange(9), batch_size=2).shard(r, 4) for r in range(4)]  # 8 rows, then 1 for 4 ranks
    with caplog.at_level(logging.WARNING, logger="ptdry.data.loader"):
        training = [[b.tolist() for b in loader] for loader in loaders]
    assert training == [[[0, 1]], [[2, 3]], [[4, 5]], [[6, 7]]]
    assert "the last batch of 1 row(s) is left out of this epoch" in caplog.text
    evaluation = [[b.tolist() for b in loader.batches()] for loader in loaders]
    assert evaluation == [[[0, 1], [8]], [[2, 3]], [[4, 5]], [[6, 7]]]


def test_shard_0_of_1_gives_everything_again():
    loader = DataLoader(np.arange(10), batch_size=4).shard(1, 2)
    assert loader.sharded == (1, 2)
    assert [b.tolist() for b in loader.shard(0, 1)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(ConfigError, match=r"rank must be in \[0, world_size\); received rank=2, world_size=2"):
        DataLoader(np.arange(10)).shard(2, 2)


class _Stream(Dataset):
    """An iterable dataset of 10 rows (no random access)."""

    def __init__(self) -> None:
        pass

    @property
    def random_access(self) -> bool:
        return False

    def _length(self):
        return 10

    def __iter__(self):
        return iter(np.arange(10))


def test_an_iterable_dataset_cannot_be_sharded_by_row():
    loader = DataLoader(_Stream(), batch_size=2).shard(0, 2)
    with pytest.raises(ConfigError, match="is iterable, and distributed training gives each rank its part"):
        list(loader)
