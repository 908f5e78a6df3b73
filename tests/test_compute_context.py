"""compute_context runs functions in fresh subprocesses: results, exceptions, dead children,
and only the requested frameworks imported. No torch or TensorFlow import at module level:
children import this module to find its functions, and must not get them from here."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from ptdry import (
    ContextError,
    ContextIncompatibilityError,
    ResourcePool,
    SerializationError,
    compute_context,
    context_check,
)


class Oops(ValueError):
    """An exception of the test's own."""


def _frameworks_loaded() -> list[str]:
    return sorted(m for m in ("torch", "tensorflow") if m in sys.modules)


def _torch_probe():
    import torch

    try:
        context_check({"tf": {}})
        tf_refused = ""
    except ContextIncompatibilityError as exc:
        tf_refused = str(exc)
    context_check({"torch": {}, "num_cpus": 1})
    return {
        "loaded": _frameworks_loaded(),
        "threads": (torch.get_num_threads(), torch.get_num_interop_threads()),
        "env": (os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"], os.environ["CUDA_VISIBLE_DEVICES"]),
        "tf_refused": tf_refused,
    }


def _tf_probe():
    import tensorflow as tf

    threading = tf.config.threading
    return {
        "loaded": _frameworks_loaded(),
        "threads": (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()),
        "visible_gpus": tf.config.get_visible_devices("GPU"),
    }


def test_a_torch_child_imports_torch_only_and_takes_the_thread_limits():
    pool = ResourcePool(num_gpus=0, num_cpus=2)
    out = compute_context({"torch": {}, "num_cpus": 1}, pool=pool)(_torch_probe)()
    assert out["loaded"] == ["torch"]
    assert out["threads"] == (1, 1)
    assert out["env"] == ("1", "1", "")  # and no GPU for a request that names none
    assert "does not give framework 'tf'" in out["tf_refused"]
    assert pool.lent == {}


def test_a_tensorflow_child_imports_tensorflow_only_and_takes_the_thread_limits():
    out = compute_context({"tf": {}, "num_cpus": 1}, pool=ResourcePool(num_gpus=0, num_cpus=2))(_tf_probe)()
    assert out == {"loaded": ["tensorflow"], "threads": (1, 1), "visible_gpus": []}


def test_a_child_without_a_framework_imports_none():
    assert compute_context()(_frameworks_loaded)() == []


def test_return_values_closures_and_lambdas_travel_with_dill():
    offset = 10

    @compute_context({"num_cpus": 1}, pool=ResourcePool(num_gpus=0, num_cpus=1))
    def apply(fn, x, *, scale=1):
        return {"value": fn(x) * scale + offset, "pid": os.getpid(), "granted": context_check({}).num_cpus}

    out = apply(lambda v: v**2, 3, scale=2)
    assert out["value"] == 28 and out["pid"] != os.getpid() and out["granted"] == 1
    assert apply.__name__ == "apply" and apply.request.num_cpus == 1


def test_an_exception_in_the_child_keeps_its_type_and_carries_the_childs_traceback():
    def fail(x):
        raise Oops(f"bad value {x}")

    with pytest.raises(Oops, match=r"bad value 7") as info:
        compute_context()(fail)(7)
    note = "\n".join(info.value.__notes__)
    assert "raised in the compute_context child (pid" in note and "running " in note
    assert 'raise Oops(f"bad value {x}")' in note and "Traceback (most recent call last)" in note


def test_an_exception_that_cannot_be_rebuilt_becomes_a_context_error_with_its_text():
    def fail():
        class Picky(Exception):
            def __init__(self, a, b):
                super().__init__(f"{a} and {b}")

        raise Picky("left", "right")

    with pytest.raises(ContextError, match=r"fail raised .*Picky: left and right in its compute_context child") as info:
        compute_context()(fail)()
    assert "the exception itself could not be sent back" in str(info.value)
    assert 'raise Picky("left", "right")' in "\n".join(info.value.__notes__)


def test_a_child_killed_by_a_signal_gives_a_context_error_with_the_exit_code_and_the_resources_back():
    pool = ResourcePool(num_gpus=0, num_cpus=1)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(
        ContextError, match=r"child \(pid \d+\) running .*die was killed by SIGKILL \(exit code -9\) — the kernel's out-of-memory"
    ):
        compute_context({"num_cpus": 1}, pool=pool)(die)()
    assert pool.lent == {}


def test_a_child_that_exits_without_a_result_gives_a_context_error_with_the_exit_code():
    with pytest.raises(ContextError, match=r"exited with code 3 without a result"):
        compute_context()(lambda: sys.exit(3))()


def test_a_child_past_its_timeout_is_killed():
    pool = ResourcePool(num_gpus=0, num_cpus=1)
    with pytest.raises(ContextError, match=r"did not finish within timeout=1 s .*which was killed"):
        compute_context({"num_cpus": 1}, pool=pool, timeout=1)(lambda: time.sleep(120))()
    assert pool.lent == {}


def test_a_request_the_pool_cannot_meet_raises_before_starting_a_child():
    pool = ResourcePool(num_gpus=1, num_cpus=1)
    held = pool.allocate({"torch": {"gpu/0": 0.75}})
    with pytest.raises(ContextError, match=r"gpu/0: 0.5 asked, 0.25 free \(0.75 lent\)"):
        compute_context({"torch": {"gpu/0": 0.5}}, pool=pool)(_frameworks_loaded)()
    pool.release(held)


def test_a_gpu_the_child_does_not_have_fails_in_the_child_with_context_error():
    pool = ResourcePool(num_gpus=64, num_cpus=1)
    with pytest.raises(ContextError, match=r"torch was granted gpu/63 \(CUDA id '63'\), but it sees 0 CUDA device"):
        compute_context({"torch": {"gpu/63": 0.5}}, pool=pool)(_frameworks_loaded)()
    assert pool.lent == {}


def test_what_dill_cannot_send_raises_serialization_error_naming_it():
    def gen():
        yield 1

    with pytest.raises(SerializationError, match=r"cannot send argument 1 of .*to its subprocess with dill"):
        compute_context()(lambda a, b: None)(1, gen())
    with pytest.raises(SerializationError, match=r"returned builtins.generator, which dill cannot send back"):
        compute_context()(lambda: (i for i in range(3)))()


class Scaler:
    def __init__(self, factor):
        self.factor = factor

    @compute_context()
    def scale(self, x):
        return self.factor * x, os.getpid()


def test_a_decorated_method_gets_its_instance():
    value, pid = Scaler(3).scale(5)
    assert value == 15 and pid != os.getpid()


def test_compute_context_without_dill_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "dill", None)  # what `import dill` does when it is not installed
    with pytest.raises(ImportError, match=r"pip install 'ptdry\[dill\]'"):
        compute_context()(_frameworks_loaded)()


def test_a_bad_timeout_is_a_config_error():
    from ptdry import ConfigError

    with pytest.raises(ConfigError, match=r"timeout = 0; expected seconds > 0"):
        compute_context(timeout=0)


def test_functions_of_a_module_that_exists_only_in_memory_travel_by_value(monkeypatch):
    import types

    namespace = types.ModuleType("made_in_memory")  # like code run with exec: no file to import
    monkeypatch.setitem(sys.modules, "made_in_memory", namespace)
    source = (
        "def factorial(n):\n    return 1 if n <= 1 else n * factorial(n - 1)\n"
        "def job(n):\n    return factorial(n), __name__\n"
    )
    exec(compile(source, "<memory>", "exec"), namespace.__dict__)
    assert compute_context()(namespace.job)(5) == (120, "made_in_memory")
