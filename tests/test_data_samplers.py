"""Samplers: orders that depend only on (seed, epoch), and their arguments checked."""

from __future__ import annotations

import numpy as np
import pytest

from ptdry import ConfigError, DataError, RandomSampler, SequentialSampler, SubsetSampler, WeightedRandomSampler


def test_a_random_order_is_a_permutation_fixed_by_seed_and_epoch():
    s = RandomSampler(seed=5)
    a = s.order(50, epoch=2)
    np.random.seed(1)  # the global generators play no part
    assert a.tolist() == RandomSampler(seed=5).order(50, epoch=2).tolist()
    assert sorted(a.tolist()) == list(range(50))
    assert (
        a.tolist() != s.order(50, epoch=3).tolist() and a.tolist() != RandomSampler(seed=6).order(50, epoch=2).tolist()
    )


def test_a_sampler_without_a_seed_uses_the_one_it_is_given():
    s = RandomSampler()
    assert s.order(20, 1, seed=4).tolist() == RandomSampler(seed=4).order(20, 1).tolist()
    assert s.order(20, 1, seed=4).tolist() != s.order(20, 1, seed=5).tolist()


def test_random_sampling_with_replacement_draws_num_samples():
    order = RandomSampler(seed=0, replacement=True, num_samples=100).order(3)
    assert len(order) == 100 and set(order.tolist()) == {0, 1, 2}
    assert len(RandomSampler(seed=0, num_samples=4).order(10)) == 4


def test_weighted_sampling_follows_the_weights_and_checks_their_number():
    s = WeightedRandomSampler([0.0, 3.0, 1.0], num_samples=4000, seed=0)
    counts = np.bincount(s.order(3), minlength=3)
    assert counts[0] == 0 and 2.5 < counts[1] / counts[2] < 3.5
    with pytest.raises(DataError, match=r"WeightedRandomSampler has 3 weights but the dataset has 4 rows"):
        s.order(4)
    with pytest.raises(DataError, match=r"cannot draw 3 rows without replacement: only 2 have a weight above 0"):
        WeightedRandomSampler([0.0, 3.0, 1.0], replacement=False).order(3)


@pytest.mark.parametrize("weights", [[], [-1.0, 2.0], [0.0, 0.0], [[1.0]], [float("nan")]])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ConfigError, match=r"weights must be a 1-d sequence of non-negative finite numbers"):
        WeightedRandomSampler(weights)


def test_weights_live_in_the_state_and_their_fingerprint_in_the_definition():
    s = WeightedRandomSampler([1.0, 2.0, 3.0], seed=1)
    rebuilt = s.definition().build()
    assert rebuilt.problems() == ["weights not loaded: call load_state_dict() with the saved state"]
    rebuilt.load_state_dict(s.state_dict())
    assert rebuilt.order(3, 4).tolist() == s.order(3, 4).tolist()


def test_a_subset_sampler_visits_only_its_indices():
    assert SubsetSampler([3, 1, -1]).order(5).tolist() == [3, 1, 4]
    shuffled = SubsetSampler([0, 2, 4], shuffle=True, seed=2)
    assert (
        sorted(shuffled.order(5, 1).tolist()) == [0, 2, 4]
        and shuffled.order(5, 1).tolist() == shuffled.order(5, 1).tolist()
    )
    with pytest.raises(DataError, match=r"SubsetSampler indices reach 7 but the dataset has 5 rows"):
        SubsetSampler([7]).order(5)
    with pytest.raises(ConfigError, match=r"indices must be a 1-d sequence of integers"):
        SubsetSampler([0.5])
    rebuilt = SubsetSampler([2, 0]).definition().build()
    rebuilt.load_state_dict(SubsetSampler([2, 0]).state_dict())
    assert rebuilt.order(3).tolist() == [2, 0]


def test_the_sequential_order_is_every_row():
    assert SequentialSampler().order(3, epoch=9, seed=1).tolist() == [0, 1, 2]
