"""Apply an allocation's limits: environment variables first, then the frameworks' own knobs.

Two steps, in this order, because frameworks read their environment when they load:

1. :func:`environment` — ``CUDA_VISIBLE_DEVICES`` (a child sees only its GPUs, renumbered
   from 0; none when no framework got a GPU), the BLAS/OpenMP thread counts
   (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ...), TensorFlow's thread counts and
   ``TF_FORCE_GPU_ALLOW_GROWTH``.
2. :func:`configure` — imports each requested framework and sets what it offers: torch's
   thread counts and ``torch.cuda.set_per_process_memory_fraction``; TensorFlow's threading,
   visible GPUs, memory growth and, for a fraction of a GPU, a memory limit.

Only the requested frameworks are imported. A framework that was already loaded (in this
process, by other code) gets the thread limit too, as far as it still can.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable

from ptdry.context.allocation import Allocation
from ptdry.context.devices import gpu_memory
from ptdry.context.request import gpu_name
from ptdry.errors import ContextError

__all__ = ["THREAD_VARIABLES", "configure", "environment", "local_numbering"]

log = logging.getLogger(__name__)

#: Environment variables that cap the threads of numeric libraries (set to ``num_cpus``).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)

Undo = Callable[[], None]


def local_numbering(allocation: Allocation) -> dict[int, int]:
    """How a child numbers its devices: position in its ``CUDA_VISIBLE_DEVICES``."""
    return {index: n for n, index in enumerate(allocation.devices_in_use())}


def environment(allocation: Allocation, *, child: bool) -> dict[str, str]:
    """The environment variables for ``allocation``.

    ``child``: for a new process, which also gets ``CUDA_VISIBLE_DEVICES`` (an existing
    process has set up CUDA already, or may have: changing it there is not reliable).
    """
    env: dict[str, str] = {}
    if allocation.num_cpus is not None:
        env.update({name: str(allocation.num_cpus) for name in THREAD_VARIABLES})
    if child:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(allocation.gpu_ids[i] for i in allocation.devices_in_use())
    if allocation.gpus.get("tf"):
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return env


def configure(allocation: Allocation, *, child: bool) -> list[Undo]:
    """Import the requested frameworks and apply the limits; return what undoes them.

    ``child``: in a fresh process, also set what cannot be undone (torch's inter-op
    threads, settable once per process); an existing process keeps its own.

    Raises:
        ContextError: a granted GPU does not exist for the framework, TensorFlow was
            initialized already in a way the context would change, or the memory size of a
            GPU that TensorFlow gets a fraction of is unknown.
    """
    undo: list[Undo] = []
    if "torch" in allocation.gpus or "torch" in sys.modules:
        undo += _torch(allocation, requested="torch" in allocation.gpus, child=child)
    if "tf" in allocation.gpus or "tensorflow" in sys.modules:
        _tensorflow(allocation, requested="tf" in allocation.gpus)
    return undo


def _torch(allocation: Allocation, *, requested: bool, child: bool) -> list[Undo]:
    import torch

    undo: list[Undo] = []
    n = allocation.num_cpus
    if n is not None:
        old = torch.get_num_threads()
        torch.set_num_threads(n)
        undo.append(lambda: torch.set_num_threads(old))
        if child and torch.get_num_interop_threads() != n:
            try:
                torch.set_num_interop_threads(n)
            except RuntimeError as exc:  # settable once, before any inter-op work
                log.info("torch inter-op threads stay %d: %s", torch.get_num_interop_threads(), exc)
    fractions = allocation.gpus.get("torch", {}) if requested else {}
    if not fractions:
        return undo
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for index, fraction in sorted(fractions.items()):
        local = allocation.local.get(index, index)
        if local >= count:
            raise ContextError(_no_device("torch", allocation, index, count))
        if fraction < 1:
            torch.cuda.set_per_process_memory_fraction(fraction, local)
            undo.append(lambda local=local: torch.cuda.set_per_process_memory_fraction(1.0, local))
    return undo


def _tensorflow(allocation: Allocation, *, requested: bool) -> None:
    import tensorflow as tf

    n = allocation.num_cpus
    threading = tf.config.threading
    if n is not None:
        for name, get, put in (
            ("intra-op", threading.get_intra_op_parallelism_threads, threading.set_intra_op_parallelism_threads),
            ("inter-op", threading.get_inter_op_parallelism_threads, threading.set_inter_op_parallelism_threads),
        ):
            if get() == n:
                continue
            try:
                put(n)
            except RuntimeError as exc:
                _tf_too_late(f"its {name} threads ({get() or 'default'}, not {n})", exc, requested)
    if not requested:
        return
    physical = tf.config.list_physical_devices("GPU")
    if not physical and not allocation.gpus["tf"]:
        return  # no GPU to hide or share
    mine = []
    for index, fraction in sorted(allocation.gpus["tf"].items()):
        local = allocation.local.get(index, index)
        if local >= len(physical):
            raise ContextError(_no_device("tf", allocation, index, len(physical)))
        mine.append((index, physical[local], fraction))
    try:
        if tf.config.get_visible_devices("GPU") != [d for _, d, _ in mine]:
            tf.config.set_visible_devices([d for _, d, _ in mine], "GPU")
        for index, device, fraction in mine:
            if fraction >= 1:
                tf.config.experimental.set_memory_growth(device, True)
                continue
            total = allocation.gpu_memory.get(index) or gpu_memory(allocation.gpu_ids[index])
            if total is None:
                raise ContextError(
                    f"cannot limit TensorFlow to {fraction:g} of {gpu_name(index)}: the size of its memory "
                    "is unknown (nvidia-smi did not say); give the pool gpu_memory=<bytes>"
                )
            limit_mib = max(1, int(fraction * total / 2**20))
            config = [tf.config.LogicalDeviceConfiguration(memory_limit=limit_mib)]
            tf.config.set_logical_device_configuration(device, config)
    except RuntimeError as exc:
        _tf_too_late("its GPUs", exc, requested=True)


def _tf_too_late(what: str, exc: Exception, requested: bool) -> None:
    message = (
        f"TensorFlow has started its runtime in this process, so {what} can no longer be set; "
        "enter the context before TensorFlow runs anything, or use compute_context for a fresh process"
    )
    if requested:
        raise ContextError(message) from exc
    log.warning("%s (%s)", message, exc)


def _no_device(framework: str, allocation: Allocation, index: int, count: int) -> str:
    return (
        f"{framework} was granted {gpu_name(index)} (CUDA id {allocation.gpu_ids.get(index)!r}), but it "
        f"sees {count} CUDA device(s) here; is the pool right about this machine's GPUs?"
    )
