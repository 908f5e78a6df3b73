"""torch.distributed for ptdry: find the job's world, join it once, and a few collectives.

A script started by ``torchrun`` (or any launcher that sets ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) runs once per process; :func:`setup`
reads those variables and joins the process group — gloo for CPU tensors and, when CUDA is
there, NCCL for CUDA tensors (``"cpu:gloo,cuda:nccl"``) — so the same script runs alone or
under torchrun unchanged. A process group the user started before is used as it is.

The collectives here are the Trainer's few points of agreement — stop decisions, the sums
of an epoch's values, evaluation sums, the random states saved with a checkpoint — and
each is one call per epoch, per logging step or per checkpoint, never per batch (the
gradients' all-reduce is DistributedDataParallel's).

``PTDRY_DIST_TIMEOUT`` (seconds) bounds every collective of a group ptdry starts: a process
whose peer died without the launcher ending the job fails after that long instead of
waiting forever (torch's default: 30 minutes).
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import logging
import os
import pickle
import sys
import time
from typing import Any, Mapping

from ptdry.errors import ConfigError

__all__ = [
    "World",
    "all_reduce_sum",
    "any_rank",
    "barrier",
    "broadcast",
    "current",
    "environment",
    "gather",
    "setup",
]

log = logging.getLogger(__name__)

_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in a distributed job.

    Attributes:
        rank: its rank among all processes (0 writes the run).
        local_rank: its rank on this machine (which GPU it uses).
        size: the number of processes.
    """

    rank: int
    local_rank: int
    size: int

    @property
    def is_main(self) -> bool:
        """True for rank 0, the process that records the run."""
        return self.rank == 0


def environment(environ: Mapping[str, str] | None = None) -> World | None:
    """The world the launcher's variables describe, or None for a single process
    (``WORLD_SIZE`` unset or 1).

    Example:
        >>> environment({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1",
        ...              "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
        World(rank=1, local_rank=1, size=2)
        >>> environment({}) is None
        True

    Raises:
        ConfigError: ``WORLD_SIZE`` > 1 but other variables are missing or not numbers.
    """
    env = os.environ if environ is None else environ
    size = _int(env, "WORLD_SIZE", None)
    if size is None or size == 1:
        return None
    missing = [v for v in _VARIABLES if not env.get(v)]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={size} says this is one of {size} processes, but {', '.join(missing)} "
            "is not set: start the script with torchrun (python -m torch.distributed.run), which sets them"
        )
    rank, local_rank = _int(env, "RANK", 0), _int(env, "LOCAL_RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"RANK={rank} is not a rank of WORLD_SIZE={size}")
    return World(rank, local_rank, size)


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer; received {value!r}") from None


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def current() -> World | None:
    """The world of the process group this process belongs to (started by :func:`setup` or
    by the user), or None when there is none or it has one process. Starts nothing."""
    if "torch" not in sys.modules:  # no group without torch
        return None
    dist = _dist()
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return None
    local = _int(os.environ, "LOCAL_RANK", None)
    return World(dist.get_rank(), dist.get_rank() if local is None else local, dist.get_world_size())


def setup() -> World | None:
    """Join the process group the environment describes (once per process) and return this
    process's world; None for a single process.

    Raises:
        ConfigError: the environment is incomplete, or torch has no distributed support.
    """
    found = current()
    if found is not None:
        return found
    world = environment()
    if world is None:
        return None
    dist = _dist()
    if not dist.is_available():
        raise ConfigError(f"WORLD_SIZE={world.size}, but this torch build has no torch.distributed support")
    import torch

    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    kwargs: dict[str, Any] = {}
    timeout = os.environ.get("PTDRY_DIST_TIMEOUT")
    if timeout:
        try:
            kwargs["timeout"] = datetime.timedelta(seconds=float(timeout))
        except ValueError:
            raise ConfigError(f"PTDRY_DIST_TIMEOUT must be a number of seconds; received {timeout!r}") from None
    dist.init_process_group(backend=backend, **kwargs)
    atexit.register(_leave)
    _share_cores()
    log.info("joined the process group as rank %d of %d (%s)", world.rank, world.size, backend)
    return World(dist.get_rank(), world.local_rank, dist.get_world_size())


#: Seconds a process that is exiting leaves gloo's worker threads after its last collective.
_GRACE = 0.25


def _share_cores() -> None:
    """Give this process its share of the machine's cores, unless ``OMP_NUM_THREADS`` says
    how many (torchrun sets it to 1): N processes of all cores each would oversubscribe them."""
    local = _int(os.environ, "LOCAL_WORLD_SIZE", None)
    if os.environ.get("OMP_NUM_THREADS") or not local:
        return
    import torch

    from ptdry.context.devices import cpu_count

    torch.set_num_threads(max(1, cpu_count() // local))


def _leave() -> None:
    """At exit, with the interpreter still alive: give gloo's worker threads a moment to let
    go of the last collective, then leave the group.

    A worker releases a collective's tensors just after the collective completes, and that
    needs the interpreter: when the main thread reaches the interpreter's shutdown first (a
    collective right before the script ends), the process aborts ("terminate called without
    an active exception") although the job succeeded.
    """
    wait = _GRACE - (time.monotonic() - _last[0])
    if wait > 0:
        time.sleep(wait)
    _held.clear()
    dist = _dist()
    if dist.is_initialized():
        dist.destroy_process_group()


# -- collectives (every rank must call them, in the same order) ---------------------------------
#: The work (and tensors) of the latest collective, kept until the next one or exit.
_held: list[Any] = []
#: When the latest collective ended (time.monotonic()).
_last = [float("-inf")]


def _run(collective: Any, *args: Any, **kwargs: Any) -> None:
    work = collective(*args, async_op=True, **kwargs)
    work.wait()
    _held.append((work, args))
    _last[0] = time.monotonic()


def _tensor_device() -> Any:
    """Where tensors of a collective live: the CPU, unless the group is NCCL only."""
    import torch

    if _dist().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _start() -> None:
    _held.clear()


def all_reduce_sum(values: list[float]) -> list[float]:
    """Each value summed over every rank (in float64)."""
    import torch

    if not values:
        return []
    _start()
    t = torch.tensor(values, dtype=torch.float64, device=_tensor_device())
    _run(_dist().all_reduce, t)
    return t.tolist()


def any_rank(flag: bool) -> bool:
    """True when ``flag`` is true on any rank."""
    import torch

    _start()
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_tensor_device())
    _run(_dist().all_reduce, t, op=_dist().ReduceOp.MAX)
    return bool(t.item())


def gather(obj: Any) -> list[Any]:
    """``obj`` of every rank (pickled: the job's own processes only), in rank order, on
    every rank."""
    import torch

    _start()
    device, size = _tensor_device(), _dist().get_world_size()
    data = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8).to(device)
    length = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    lengths = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(size)]
    _run(_dist().all_gather, lengths, length)
    counts = [int(n.item()) for n in lengths]
    padded = torch.zeros(max(counts), dtype=torch.uint8, device=device)
    padded[: data.numel()] = data
    parts = [torch.empty(max(counts), dtype=torch.uint8, device=device) for _ in range(size)]
    _run(_dist().all_gather, parts, padded)
    return [pickle.loads(part[:n].cpu().numpy().tobytes()) for part, n in zip(parts, counts)]


def broadcast(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (pickled), on every rank."""
    import torch

    _start()
    device = _tensor_device()
    mine = _dist().get_rank() == src
    data = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8).to(device) if mine else None
    length = torch.tensor([data.numel() if mine else 0], dtype=torch.int64, device=device)
    _run(_dist().broadcast, length, src=src)
    if not mine:
        data = torch.empty(int(length.item()), dtype=torch.uint8, device=device)
    _run(_dist().broadcast, data, src=src)
    return obj if mine else pickle.loads(data.cpu().numpy().tobytes())


def barrier() -> None:
    """Wait until every rank got here."""
    _start()
    _run(_dist().barrier)
