"""The global random number generators (Python, NumPy, torch): seed, capture and restore.

Exact resume needs the three global generators exactly where they were when a checkpoint
was taken: dropout, augmentation and anything else drawing from them continues the same
sequence. The captured state is a flat dict of arrays and numbers that archives store.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ptdry.errors import ConfigError

__all__ = ["get_rng_state", "seed_everything", "set_rng_state"]

KEYS = ("python", "python_gauss", "numpy", "numpy_pos", "numpy_has_gauss", "numpy_gauss", "torch")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch's CPU generator.

    Raises:
        ConfigError: ``seed`` is not an integer in [0, 2**32).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be an integer in [0, 2**32); received {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """The state of the three global generators, as arrays and numbers.

    Example:
        >>> s = get_rng_state(); a = torch.rand(1); set_rng_state(s)
        >>> torch.equal(a, torch.rand(1))
        True
    """
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": np.asarray(internal, dtype=np.int64),
        "python_gauss": gauss,
        "numpy": np.array(keys, dtype=np.uint32),
        "numpy_pos": int(pos),
        "numpy_has_gauss": int(has_gauss),
        "numpy_gauss": float(cached),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Put the three global generators back where :func:`get_rng_state` found them.

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
    t = state["torch"]
    torch.set_rng_state(t if isinstance(t, torch.Tensor) else torch.as_tensor(np.asarray(t), dtype=torch.uint8))
