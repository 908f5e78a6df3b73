"""What this machine has: CPU cores and NVIDIA GPUs, found without importing a framework.

GPUs are listed with ``nvidia-smi`` (no torch or TensorFlow import, which would cost
seconds and initialize CUDA in the parent). ``CUDA_VISIBLE_DEVICES``, when set, limits and
renumbers them, as it does for the frameworks.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["GPU", "cpu_count", "detect_gpus", "gpu_memory", "visible_ids"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GPU:
    """One device as this process numbers it: ``index``, its CUDA id, its memory if known."""

    index: int
    cuda_id: str
    memory: int | None = None  # bytes


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def visible_ids(environ: "os._Environ[str] | dict[str, str]" = os.environ) -> list[str] | None:
    """The ids in ``CUDA_VISIBLE_DEVICES`` (``[]`` hides every GPU), or None when unset."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    ids = []
    for part in value.split(","):
        part = part.strip()
        if not part or part.startswith("-"):  # CUDA stops at the first invalid id
            break
        ids.append(part)
    return ids


def detect_gpus(timeout: float = 20.0) -> list[GPU]:
    """The NVIDIA GPUs this process can see (none without ``nvidia-smi``)."""
    visible = visible_ids()
    if visible == []:
        return []
    found = _all_gpus(timeout)
    if visible is None:
        return [GPU(n, index, memory) for n, (index, _, memory) in enumerate(found)]
    by_id = {key: row for row in found for key in row[:2]}  # an index or a UUID
    rows = [(v, by_id[v]) for v in visible if v in by_id]
    return [GPU(n, v, row[2]) for n, (v, row) in enumerate(rows)]


def gpu_memory(cuda_id: str, timeout: float = 20.0) -> int | None:
    """Memory in bytes of the device ``cuda_id`` (an index or a UUID), or None if unknown."""
    for index, uuid, memory in _all_gpus(timeout):
        if cuda_id in (index, uuid):
            return memory
    return None


def _all_gpus(timeout: float) -> list[tuple[str, str, int | None]]:
    """``(index, uuid, memory bytes)`` of every GPU ``nvidia-smi`` lists (all, whatever is visible)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    query = [exe, "--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=timeout, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed (%s); taking it that there is no GPU", exc)
        return []
    rows = []
    for line in out.strip().splitlines():
        index, uuid, memory = (p.strip() for p in line.split(",")[:3])
        rows.append((index, uuid, int(memory) * 2**20 if memory.isdigit() else None))
    return rows
