"""Compute contexts in this process: requests, the pool's accounting, ContextManager and
context_check. (Subprocesses: tests/test_compute_context.py.)"""

from __future__ import annotations

import os
import threading

import pytest

from ptdry import (
    ConfigError,
    ContextError,
    ContextIncompatibilityError,
    ContextManager,
    ResourcePool,
    ResourceRequest,
    active_context,
    context_check,
)
from ptdry.context.limits import environment, local_numbering


# -- requests ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "request_dict",
    [
        {"torch": {"gpu/0": 0.5}, "tf": {"gpu/0": 0.5}},
        {"tf": {}},
        {"num_cpus": 2},
        {"torch": {"num_gpus": 2, "gpu/3": 1}, "num_cpus": 1},
        {},
    ],
)
def test_a_valid_request_parses_and_round_trips(request_dict):
    parsed = ResourceRequest.parse(request_dict)
    assert ResourceRequest.parse(parsed.to_dict()) == parsed
    assert parsed.to_dict() == {k: ({d: float(f) if d != "num_gpus" else f for d, f in v.items()} if isinstance(v, dict) else v) for k, v in request_dict.items()}


def test_none_is_the_empty_request():
    assert ResourceRequest.parse(None) == ResourceRequest.parse({}) == ResourceRequest()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"jax": {}}, r"unknown key 'jax'; expected 'torch', 'tf' or 'num_cpus'"),
        ({"torch": {"gpu/0": -0.5}}, r"torch.gpu/0 = -0.5; expected the fraction of the device's memory, a number in \(0, 1\]"),
        ({"torch": {"gpu/0": 1.5}}, r"torch.gpu/0 = 1.5; expected .* in \(0, 1\]"),
        ({"torch": {"gpu/0": 0}}, r"torch.gpu/0 = 0; expected"),
        ({"torch": {"gpu/0": True}}, r"torch.gpu/0 = True; expected"),
        ({"torch": {"gpu/0": float("nan")}}, r"torch.gpu/0 = nan; expected"),
        ({"torch": {"cuda:0": 0.5}}, r"unknown device 'torch.cuda:0'; expected 'gpu/<index>'"),
        ({"torch": {"gpu/01": 0.5}}, r"unknown device 'torch.gpu/01'"),
        ({"torch": {"gpu/-1": 0.5}}, r"unknown device 'torch.gpu/-1'"),
        ({"torch": {"num_gpus": -1}}, r"torch.num_gpus = -1; expected a whole number >= 0"),
        ({"num_cpus": 0}, r"num_cpus = 0; expected a whole number >= 1"),
        ({"num_cpus": 2.0}, r"num_cpus = 2.0; expected a whole number >= 1"),
        ({"tf": None}, r"'tf' must map to a dict of 'gpu/<index>'.*received None"),
        ("tf", r"a resource request is a dict like .*; received 'tf' of type str"),
        (
            {"torch": {"gpu/0": 0.7}, "tf": {"gpu/0": 0.5}},
            r"asks 1.2 of gpu/0 in total \(torch 0.7, tf 0.5\); the fractions of one device sum to at most 1",
        ),
    ],
)
def test_a_malformed_request_raises_config_error_naming_the_bad_value(bad, message):
    with pytest.raises(ConfigError, match=message):
        ResourceRequest.parse(bad)


# -- the pool ---------------------------------------------------------------------------------
def test_fractions_of_one_gpu_are_lent_until_they_sum_to_one():
    pool = ResourcePool(num_gpus=2, num_cpus=4)
    a = pool.allocate({"torch": {"gpu/0": 0.5}, "tf": {"gpu/0": 0.25}})
    b = pool.allocate({"tf": {"gpu/0": 0.25}})
    assert pool.lent == {"gpu/0": 1.0}
    with pytest.raises(ContextError, match=r"gpu/0: 0.1 asked, 0 free \(1 lent\)"):
        pool.allocate({"torch": {"gpu/0": 0.1}})
    c = pool.allocate({"torch": {"gpu/1": 0.1}, "num_cpus": 4})
    assert pool.available == {"gpu/0": 0.0, "gpu/1": 0.9, "num_cpus": 0}
    for grant in (a, b, c):
        pool.release(grant)
    assert pool.lent == {} and pool.available == {"gpu/0": 1.0, "gpu/1": 1.0, "num_cpus": 4}


def test_thirds_and_tenths_sum_to_one_despite_float_rounding():
    pool = ResourcePool(num_gpus=1, num_cpus=1)
    grants = [pool.allocate({"torch": {"gpu/0": f}}) for f in (0.1, 0.2, 0.7)]
    assert pool.lent == {"gpu/0": 1.0}
    for grant in grants:
        pool.release(grant)
    grants = [pool.allocate({"tf": {"gpu/0": 1 / 3}}) for _ in range(3)]
    assert pool.available["gpu/0"] == 0.0


def test_a_request_the_pool_cannot_meet_names_everything_missing_and_lends_nothing():
    pool = ResourcePool(num_gpus=2, num_cpus=2)
    held = pool.allocate({"torch": {"gpu/1": 0.75}, "num_cpus": 1})
    request = {"torch": {"gpu/1": 0.5, "gpu/5": 0.5}, "tf": {"num_gpus": 2}, "num_cpus": 2}
    with pytest.raises(ContextError) as info:
        pool.allocate(request)
    message = str(info.value)
    assert "gpu/1: 0.5 asked, 0.25 free (0.75 lent)" in message
    assert "gpu/5 does not exist (the pool has 2 GPU(s), gpu/0 to gpu/1)" in message
    assert "tf num_gpus 2: 1 whole GPU(s) free" in message
    assert "num_cpus 2: 1 of 2 free" in message
    assert pool.lent == {"gpu/1": 0.75, "num_cpus": 1}  # all or nothing
    pool.release(held)


def test_num_gpus_takes_whole_free_devices_and_leaves_named_ones_alone():
    pool = ResourcePool(num_gpus=3, num_cpus=1)
    part = pool.allocate({"tf": {"gpu/0": 0.5}})
    grant = pool.allocate({"torch": {"num_gpus": 1, "gpu/1": 0.5}})
    assert grant.gpus == {"torch": {1: 0.5, 2: 1.0}}
    assert grant.devices("torch") == ["cuda:1", "cuda:2"]
    assert grant.satisfies({"torch": {"num_gpus": 1}}) and not grant.satisfies({"torch": {"num_gpus": 2}})
    with pytest.raises(ContextError, match=r"torch num_gpus 1: 0 whole GPU\(s\) free"):
        pool.allocate({"torch": {"num_gpus": 1}})
    pool.release(part)
    pool.release(grant)


def test_a_pool_without_gpus_grants_cpu_contexts():
    pool = ResourcePool(num_gpus=0, num_cpus=1)
    grant = pool.allocate({"torch": {}, "tf": {}})
    assert grant.devices("torch") == grant.devices("tf") == ["cpu"]
    with pytest.raises(ContextError, match=r"gpu/0 does not exist \(the pool has no GPU\)"):
        pool.allocate({"torch": {"gpu/0": 0.5}})
    pool.release(grant)


def test_releasing_twice_raises_context_error():
    pool = ResourcePool(num_gpus=0, num_cpus=2)
    grant = pool.allocate({"num_cpus": 1})
    pool.release(grant)
    with pytest.raises(ContextError, match="this pool has not lent it, or it was released already"):
        pool.release(grant)
    assert pool.lent == {}


def test_the_pool_is_thread_safe():
    pool = ResourcePool(num_gpus=1, num_cpus=1)
    granted, refused = [], []

    def take():
        try:
            granted.append(pool.allocate({"torch": {"gpu/0": 0.125}}))
        except ContextError:
            refused.append(1)

    threads = [threading.Thread(target=take) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 8 and len(refused) == 4 and pool.lent == {"gpu/0": 1.0}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_gpus": -1, "num_cpus": 1}, r"num_gpus = -1; expected a whole number >= 0"),
        ({"num_gpus": 0, "num_cpus": 0}, r"num_cpus = 0; expected a whole number >= 1"),
        ({"num_gpus": 1, "num_cpus": 1, "gpu_memory": 0}, r"gpu_memory = 0; expected a whole number >= 1"),
    ],
)
def test_a_pool_with_bad_counts_raises_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ResourcePool(**kwargs)


def test_a_default_pool_counts_this_machines_cpus():
    assert ResourcePool.default() is ResourcePool.default()
    assert ResourcePool.default().num_cpus == len(os.sched_getaffinity(0))


# -- what a child's environment gets ------------------------------------------------------------
def test_a_child_sees_only_its_gpus_renumbered_from_zero(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    pool = ResourcePool(num_gpus=4, num_cpus=4)
    grant = pool.allocate({"torch": {"gpu/3": 0.5}, "tf": {"gpu/1": 0.5}, "num_cpus": 2})
    env = environment(grant, child=True)
    assert env["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "2"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    child = grant.with_local(local_numbering(grant))
    assert child.devices("torch") == ["cuda:1"] and child.devices("tf") == ["cuda:0"]
    assert environment(pool.allocate({"torch": {}}), child=True)["CUDA_VISIBLE_DEVICES"] == ""


def test_a_pool_keeps_the_ids_of_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    pool = ResourcePool(num_gpus=2, num_cpus=1)
    grant = pool.allocate({"torch": {"gpu/1": 1}})
    assert environment(grant, child=True)["CUDA_VISIBLE_DEVICES"] == "7"


# -- ContextManager and context_check -----------------------------------------------------------
def test_context_check_outside_any_context_says_how_to_enter_one():
    assert active_context() is None
    with pytest.raises(
        ContextIncompatibilityError,
        match=r'no compute context is active, and this code needs \{"tf": \{\}\}; wrap the code in '
        r'`with ptdry.ContextManager\(\{"tf": \{\}\}\):` or run it with @ptdry.compute_context',
    ):
        context_check({"tf": {}})


def test_context_check_inside_a_context_passes_or_names_what_is_missing():
    pool = ResourcePool(num_gpus=0, num_cpus=2)
    with ContextManager({"torch": {}, "num_cpus": 1}, pool=pool) as granted:
        assert context_check({"torch": {}}) is granted is active_context()
        assert context_check({"num_cpus": 1}) is granted
        with pytest.raises(
            ContextIncompatibilityError,
            match=r"the active compute context \(torch: cpu; num_cpus 1\) does not give framework 'tf' "
            r"\(this context has: torch\)",
        ):
            context_check({"tf": {}})
        with pytest.raises(ContextIncompatibilityError, match=r"does not give num_cpus 2 \(granted 1\)"):
            context_check({"num_cpus": 2})
        with pytest.raises(ContextIncompatibilityError, match=r"torch gpu/0 0.5 \(granted 0\)"):
            context_check({"torch": {"gpu/0": 0.5}})
    assert active_context() is None and pool.lent == {}


def test_a_context_manager_limits_torch_threads_and_restores_them(monkeypatch):
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    pool = ResourcePool(num_gpus=0, num_cpus=2)
    with ContextManager({"torch": {}, "num_cpus": 1}, pool=pool):
        assert torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == "1"
        assert pool.lent == {"num_cpus": 1}
    assert torch.get_num_threads() == before
    assert "OMP_NUM_THREADS" not in os.environ and pool.lent == {}


def test_a_compatible_context_nests_and_an_incompatible_one_is_refused():
    pool = ResourcePool(num_gpus=0, num_cpus=2)
    with ContextManager({"torch": {}, "num_cpus": 2}, pool=pool) as outer:
        with ContextManager({"torch": {}}, pool=pool) as inner:
            assert inner is outer and pool.lent == {"num_cpus": 2}  # nothing lent twice
        assert active_context() is outer
        with pytest.raises(
            ContextError, match=r"a compute context is active \(torch: cpu; num_cpus 2\) and it does not give "
            r"framework 'tf'.*use compute_context to run this in a process of its own",
        ):
            with ContextManager({"tf": {}}, pool=pool):
                pass  # pragma: no cover
        assert active_context() is outer
    assert active_context() is None and pool.lent == {}


def test_a_gpu_the_framework_does_not_see_fails_the_context_and_lends_nothing():
    pool = ResourcePool(num_gpus=64, num_cpus=1)
    with pytest.raises(
        ContextError,
        match=r"torch was granted gpu/63 \(CUDA id '63'\), but it sees \d+ CUDA device\(s\) here; "
        r"is the pool right about this machine's GPUs\?",
    ):
        with ContextManager({"torch": {"gpu/63": 0.5}}, pool=pool):
            pass  # pragma: no cover
    assert active_context() is None and pool.lent == {}


def test_a_context_that_cannot_be_granted_leaves_no_context_active():
    pool = ResourcePool(num_gpus=0, num_cpus=1)
    with pytest.raises(ContextError, match=r"num_cpus 2: 1 of 1 free"):
        with ContextManager({"num_cpus": 2}, pool=pool):
            pass  # pragma: no cover
    assert active_context() is None and pool.lent == {}


def test_a_context_ends_and_gives_back_its_resources_when_the_block_raises():
    pool = ResourcePool(num_gpus=0, num_cpus=1)
    with pytest.raises(KeyError, match="boom"):
        with ContextManager({"num_cpus": 1}, pool=pool):
            raise KeyError("boom")
    assert active_context() is None and pool.lent == {}


def test_a_context_manager_is_entered_once_at_a_time():
    cm = ContextManager({"num_cpus": 1}, pool=ResourcePool(num_gpus=0, num_cpus=1))
    with cm:
        with pytest.raises(ContextError, match="this ContextManager is already entered"):
            cm.__enter__()
    with cm:  # and again afterwards
        assert cm.allocation is not None
    assert cm.allocation is None


def test_the_active_context_is_process_wide():
    seen = []
    with ContextManager({"torch": {}}, pool=ResourcePool(num_gpus=0, num_cpus=1)):
        thread = threading.Thread(target=lambda: seen.append(context_check({"torch": {}})))
        thread.start()
        thread.join()
    assert len(seen) == 1
