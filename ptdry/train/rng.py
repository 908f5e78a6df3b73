"""The global random number generators (Python, NumPy, and each framework in use): seed,
capture and restore.

Exact resume needs the global generators exactly where they were when a checkpoint was
taken: dropout, augmentation and anything else drawing from them continues the same
sequence. The captured state is a flat dict of arrays and numbers that archives store.
Python's and NumPy's generators are always captured; a framework's only once something has
imported it (ptdry never imports a framework just to seed it), so a model of that
framework — which is built before training starts — always has its generator captured.
For TensorFlow that is its global ``tf.random.Generator`` and Keras's global SeedGenerator
(what ``keras.random`` functions use without a seed); Keras layers keep their own
SeedGenerators (dropout), which are part of a ``KerasModel``'s state.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any

import numpy as np

from ptdry.errors import ConfigError

__all__ = ["enable_determinism", "get_rng_state", "seed_everything", "set_rng_state"]

KEYS = ("python", "python_gauss", "numpy", "numpy_pos", "numpy_has_gauss", "numpy_gauss")


def _torch() -> Any:
    return sys.modules.get("torch")


def _tf() -> Any:
    return sys.modules.get("tensorflow")


def _keras_global_seed_generator(create: bool) -> Any:
    """Keras's global SeedGenerator (None when Keras is not imported, or none exists and
    ``create`` is False)."""
    if sys.modules.get("keras") is None:
        return None
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    found = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    if found is None and create:
        found = seed_generator.global_seed_generator()
    return found


def enable_determinism(framework: str | None) -> None:
    """Make ``framework`` pick deterministic kernels: ``"torch"``:
    ``torch.use_deterministic_algorithms(True)``; ``"tensorflow"``:
    ``tf.config.experimental.enable_op_determinism()``; None or another name: nothing.
    Process-wide; bitwise-equal runs also need equal thread counts.

    Raises:
        ConfigError: ``framework`` is not a string or None.
    """
    if framework == "torch":
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what CUDA's cuBLAS needs for it
        if not torch.are_deterministic_algorithms_enabled():
            torch.use_deterministic_algorithms(True)
    elif framework == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif framework is not None and not isinstance(framework, str):
        raise ConfigError(f"framework must be a name such as 'torch' or 'tensorflow'; received {framework!r}")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and, once imported, torch's and
    TensorFlow's (its global seed and generator, and Keras's global SeedGenerator).

    Raises:
        ConfigError: ``seed`` is not an integer in [0, 2**32).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be an integer in [0, 2**32); received {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch = _torch()
    if torch is not None:
        torch.manual_seed(seed)
    tf = _tf()
    if tf is not None:
        tf.random.set_seed(seed)
        tf.random.set_global_generator(tf.random.Generator.from_seed(seed))
        if sys.modules.get("keras") is not None:
            import keras

            keras.utils.set_random_seed(seed)  # also drops Keras's global SeedGenerator


def get_rng_state() -> dict[str, Any]:
    """The state of the global generators, as arrays and numbers.

    Example:
        >>> import torch
        >>> s = get_rng_state(); a = torch.rand(1); set_rng_state(s)
        >>> torch.equal(a, torch.rand(1))
        True
    """
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": np.asarray(internal, dtype=np.int64),
        "python_gauss": gauss,
        "numpy": np.array(keys, dtype=np.uint32),
        "numpy_pos": int(pos),
        "numpy_has_gauss": int(has_gauss),
        "numpy_gauss": float(cached),
    }
    # The frameworks' keys are always there (None: not imported, nothing to restore), so a
    # state has the same keys whichever frameworks the saving process had imported.
    torch = _torch()
    state["torch"] = torch.get_rng_state() if torch is not None else None
    tf = _tf()
    state["tf_generator"] = tf.random.get_global_generator().state.numpy() if tf is not None else None
    keras_gen = _keras_global_seed_generator(create=False) if tf is not None else None
    state["keras_seed"] = keras_gen.state.numpy() if keras_gen is not None else None
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put the global generators back where :func:`get_rng_state` found them (a framework's
    generator only when the state holds it, not None).

    Raises:
        ConfigError: keys are missing (the message lists them).
    """
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise ConfigError(f"RNG state lacks {missing}; expected the keys {list(KEYS)}")
    internal = tuple(int(x) for x in np.asarray(state["python"]).tolist())
    gauss = state["python_gauss"]
    random.setstate((3, internal, None if gauss is None else float(gauss)))
    np.random.set_state(
        (
            "MT19937",
            np.asarray(state["numpy"], dtype=np.uint32),
            int(state["numpy_pos"]),
            int(state["numpy_has_gauss"]),
            float(state["numpy_gauss"]),
        )
    )
    if state.get("torch") is not None:
        import torch  # a state captured with torch's generator restores it

        t = state["torch"]
        torch.set_rng_state(t if isinstance(t, torch.Tensor) else torch.as_tensor(np.asarray(t), dtype=torch.uint8))
    if state.get("tf_generator") is not None:
        import tensorflow as tf  # a state captured with TensorFlow's generator restores it

        tf.random.get_global_generator().reset(np.asarray(state["tf_generator"], dtype=np.int64))
    if state.get("keras_seed") is not None:
        import keras  # noqa: F401  (as for TensorFlow)

        _keras_global_seed_generator(create=True).state.assign(np.asarray(state["keras_seed"]))
