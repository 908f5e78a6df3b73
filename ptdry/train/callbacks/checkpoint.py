"""Checkpoint: when to save the trainer's state and which saves to keep — apart from where.

The *policy* (:class:`Checkpoint`: every N steps/epochs, keep the last K and the best K by a
monitored metric, save on exception) is separate from the *storage*
(:class:`CheckpointStorage`: ``save`` / ``load`` / ``remove`` / ``list``), so a directory,
memory, or a Session's database artifacts plug in alike.

Checkpoints are written once every callback of the triggering event has run (through
``trainer.defer``), so each holds a consistent state and resumes bit for bit. A checkpoint
saved on exception holds the state at the moment of failure, which may be mid-step: use it
to inspect, not to resume exactly (``which="last"`` never picks it).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
from typing import Any, Mapping

from ptdry.core.atomic import atomic_write
from ptdry.core.module import Module
from ptdry.core.state import State
from ptdry.errors import ConfigError, NotFoundError
from ptdry.train.callbacks.monitor import MonitorCallback

__all__ = [
    "Checkpoint",
    "CheckpointStorage",
    "DirectoryStorage",
    "MemoryStorage",
    "checkpoint_name",
    "select_checkpoint",
]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def checkpoint_name(prefix: str, epochs_done: int, steps_done: int, suffix: str = "") -> str:
    """``"<prefix>-e0003-s00000120<suffix>"``: sortable, unique per loop position."""
    return f"{prefix}-e{epochs_done:04d}-s{steps_done:08d}{suffix}"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"checkpoint name must be letters, digits, '.', '_' or '-'; received {name!r}")
    return name


def _order(meta: Mapping[str, Any]) -> tuple:
    return (meta.get("step", 0), meta.get("epoch", 0), meta.get("t", 0.0))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def select_checkpoint(entries: list[dict[str, Any]], which: str) -> dict[str, Any]:
    """The meta of the checkpoint ``which`` names among ``entries`` (from ``storage.list()``).

    ``"last"``: the latest regular checkpoint (not one saved on exception); ``"best"``: the
    best by its recorded monitored value among those saved by a policy that keeps the best
    (``Checkpoint(keep_best=k)``, k > 0) — never another one; ``"exception"``: the latest
    saved on exception; anything else: a checkpoint name.

    Raises:
        NotFoundError: no checkpoint matches; the message lists what the storage holds.
    """
    names = [e["name"] for e in entries]
    regular = [e for e in entries if e.get("reason") != "exception"]
    if which == "last":
        found = max(regular, key=_order, default=None)
    elif which == "exception":
        found = max((e for e in entries if e.get("reason") == "exception"), key=_order, default=None)
    elif which == "best":
        kept = [e for e in regular if e.get("keep_best")]
        if not kept:
            raise NotFoundError(
                f"no best checkpoint was kept (the storage holds {names or 'nothing'}; a Checkpoint keeps "
                "the best only with keep_best >= 1). Train with Checkpoint(keep_best=1, monitor='val.loss') "
                "to keep the best by that metric, or load which='last'"
            )
        scored = [e for e in kept if _finite(e.get("value"))]
        if not scored:
            monitors = sorted({str(e.get("monitor")) for e in kept})
            raise NotFoundError(
                f"no checkpoint recorded a value of {', '.join(monitors)}, so none is best; does the run "
                "compute that metric before each save (a val split, validation every epoch)?"
            )
        modes = {e.get("mode", "min") for e in scored}
        if len(modes) > 1 or len({e.get("monitor") for e in scored}) > 1:
            raise ConfigError("checkpoints monitor different metrics; load one by name instead of which='best'")
        sign = -1.0 if modes == {"max"} else 1.0
        found = min(scored, key=lambda e: (sign * e["value"], -e.get("step", 0)), default=None)
    else:
        found = next((e for e in entries if e["name"] == which), None)
    if found is None:
        raise NotFoundError(
            f"no checkpoint to load as {which!r}; the storage holds {names or 'nothing'} "
            "(which may be 'last', 'best', 'exception' or a name)"
        )
    return found


class CheckpointStorage(Module):
    """Where checkpoints go: subclass and implement ``save``, ``load``, ``remove``, ``list``.

    ``save`` receives the live state (tensors are not copied) and must serialize or copy it
    before returning. ``meta`` is a small JSON-like dict (``name``, ``step``, ``epoch``,
    ``reason``, ``monitor``, ``value``, ``mode``, ``t``...) that ``list()`` returns again.
    """

    def save(self, name: str, state: Mapping[str, Any], meta: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement save()")

    def load(self, name: str) -> State:
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def remove(self, name: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement remove()")

    def list(self) -> list[dict[str, Any]]:
        """The meta of every stored checkpoint, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} must implement list()")

    def names(self) -> list[str]:
        return [m["name"] for m in self.list()]

    def _missing(self, name: str) -> ConfigError:
        return NotFoundError(f"no checkpoint named {name!r} in {self!r}; it holds {self.names() or 'nothing'}")


class MemoryStorage(CheckpointStorage):
    """Checkpoints kept in memory (deep copies), for tests and short experiments.

    Args:
        serialize: store the bytes of :func:`ptdry.io.archive.state_to_bytes` instead of a
            deep copy (exercises the same path as files and the database).

    Example:
        >>> s = MemoryStorage(); s.save("a", {"x": 1}, {"step": 1})
        >>> s.load("a"), [m["name"] for m in s.list()]
        ({'x': 1}, ['a'])
    """

    def __init__(self, serialize: bool = False) -> None:
        self.serialize = bool(serialize)
        self._items: dict[str, tuple[Any, dict[str, Any]]] = {}

    def save(self, name: str, state: Mapping[str, Any], meta: dict[str, Any]) -> None:
        if self.serialize:
            from ptdry.io.archive import state_to_bytes

            data: Any = state_to_bytes(state)
        else:
            data = copy.deepcopy(dict(state))
        self._items[_check_name(name)] = (data, {**copy.deepcopy(meta), "name": name})

    def load(self, name: str) -> State:
        if name not in self._items:
            raise self._missing(name)
        data = self._items[name][0]
        if self.serialize:
            from ptdry.io.archive import state_from_bytes

            return state_from_bytes(data, source=f"checkpoint {name!r}")
        return State(copy.deepcopy(data))

    def remove(self, name: str) -> None:
        self._items.pop(name, None)

    def list(self) -> list[dict[str, Any]]:
        return sorted((copy.deepcopy(meta) for _, meta in self._items.values()), key=_order)

    def __repr__(self) -> str:
        return f"MemoryStorage({len(self._items)} checkpoints)"


class DirectoryStorage(CheckpointStorage):
    """Checkpoints as files in a directory: ``<name>.state`` (a ptdry state archive) and
    ``<name>.json`` (its meta, written last, so a listed checkpoint is complete).

    Args:
        path: the directory (created when needed).
        trusted: allow loading states that hold pickled values.
    """

    def __init__(self, path: str | os.PathLike, trusted: bool = False) -> None:
        self.path = os.fspath(path)
        self.trusted = bool(trusted)

    def _file(self, name: str, ext: str) -> str:
        return os.path.join(self.path, f"{_check_name(name)}.{ext}")

    def save(self, name: str, state: Mapping[str, Any], meta: dict[str, Any]) -> None:
        from ptdry.io.archive import state_to_bytes

        os.makedirs(self.path, exist_ok=True)
        atomic_write(self._file(name, "state"), state_to_bytes(state))
        text = json.dumps({**meta, "name": name}, sort_keys=True, default=str)
        atomic_write(self._file(name, "json"), text.encode())

    def load(self, name: str) -> State:
        from ptdry.io.archive import state_from_bytes

        file = self._file(name, "state")
        if not os.path.exists(self._file(name, "json")) or not os.path.exists(file):
            raise self._missing(name)
        with open(file, "rb") as f:
            return state_from_bytes(f.read(), trusted=self.trusted, source=file)

    def remove(self, name: str) -> None:
        for ext in ("json", "state"):  # meta first: a half-removed checkpoint is not listed
            try:
                os.remove(self._file(name, ext))
            except FileNotFoundError:
                pass

    def list(self) -> list[dict[str, Any]]:
        if not os.path.isdir(self.path):
            return []
        out = []
        for entry in sorted(os.listdir(self.path)):
            if entry.endswith(".json"):
                try:
                    with open(os.path.join(self.path, entry), encoding="utf-8") as f:
                        out.append(json.load(f))
                except (OSError, ValueError):
                    log.warning("skipping unreadable checkpoint meta %s", os.path.join(self.path, entry))
        return sorted(out, key=_order)

    def __repr__(self) -> str:
        return f"DirectoryStorage({self.path!r})"


class Checkpoint(MonitorCallback):
    """Save the trainer's full state every N steps and/or epochs; keep the last K and the
    best K (by ``monitor``); save also when training fails.

    Args:
        every_n_steps: save after every n-th step (None: not by steps).
        every_n_epochs: save after every n-th epoch (None: not by epochs).
        keep_last: how many of the latest checkpoints to keep (None: all).
        keep_best: how many of the best checkpoints by ``monitor`` to keep as well.
        monitor: the metric recorded with each checkpoint and ranking the best.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        on_exception: save (as ``<prefix>-exception-...``) when training raises.
        storage: a :class:`CheckpointStorage`; None uses ``trainer.checkpoint_storage``
            (a Session sets it to the run's artifact store).
        prefix: checkpoint names start with it; retention only touches its own names.

    Example:
        >>> ckpt = Checkpoint(every_n_epochs=1, keep_last=2, keep_best=1, storage=MemoryStorage())
    """

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        keep_last: int | None = 1,
        keep_best: int = 0,
        monitor: str = "val.loss",
        mode: str = "auto",
        on_exception: bool = True,
        storage: CheckpointStorage | None = None,
        prefix: str = "ckpt",
    ) -> None:
        self._init_monitor(monitor, mode)
        for name, value in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or None; received {value!r}")
        for name, value in (("keep_last", keep_last), ("keep_best", keep_best)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} must be an integer >= 0{' or None' if name == 'keep_last' else ''}; received {value!r}")
        if keep_best is None:
            raise ConfigError("keep_best must be an integer >= 0; received None")
        if storage is not None and not isinstance(storage, CheckpointStorage):
            raise ConfigError(f"storage must be a CheckpointStorage (e.g. DirectoryStorage(path)); received {storage!r}")
        if every_n_steps is None and every_n_epochs is None and not on_exception:
            raise ConfigError("this Checkpoint never saves: give every_n_steps, every_n_epochs or on_exception=True")
        _check_name(prefix)
        self.every_n_steps, self.every_n_epochs = every_n_steps, every_n_epochs
        self.keep_last, self.keep_best = keep_last, keep_best
        self.on_exception_save = bool(on_exception)
        self.storage = storage
        self.prefix = prefix

    def on_step_end(self, trainer: Any, step: int, **_: Any) -> None:
        if self.every_n_steps is not None and step % self.every_n_steps == 0:
            trainer.defer(lambda: self.save(trainer))

    def on_epoch_end(self, trainer: Any, epoch: int, **_: Any) -> None:
        if self.every_n_epochs is not None and epoch % self.every_n_epochs == 0:
            trainer.defer(lambda: self.save(trainer))

    def on_exception(self, trainer: Any, exception: BaseException, **_: Any) -> None:
        if self.on_exception_save:
            looper = trainer.looper
            name = checkpoint_name(self.prefix, looper.epochs_done, looper.steps_done, "-exception")
            trainer.save_checkpoint(
                name, storage=self.storage, reason="exception", meta={"prefix": self.prefix, "error": repr(exception)[:500]}
            )

    def save(self, trainer: Any) -> dict[str, Any]:
        """Save the trainer's state now and apply the retention policy; returns the meta."""
        looper = trainer.looper
        value = self.monitored(trainer.metrics)
        meta = {"prefix": self.prefix, "monitor": self.monitor, "mode": self.mode, "value": value, "keep_best": self.keep_best}
        name = checkpoint_name(self.prefix, looper.epochs_done, looper.steps_done)
        info = trainer.save_checkpoint(name, storage=self.storage, reason="periodic", meta=meta)
        self.retain(trainer.resolve_checkpoint_storage(self.storage))
        return info

    def retain(self, storage: CheckpointStorage) -> list[str]:
        """Remove this policy's checkpoints that are neither among the last ``keep_last``
        nor the best ``keep_best``; returns the names removed."""
        mine = [m for m in storage.list() if m.get("prefix") == self.prefix and m.get("reason") == "periodic"]
        latest = sorted(mine, key=_order, reverse=True)
        keep = {m["name"] for m in (latest if self.keep_last is None else latest[: self.keep_last])}
        if self.keep_best:
            sign = -1.0 if self.mode == "max" else 1.0
            scored = [m for m in mine if _finite(m.get("value"))]
            scored.sort(key=lambda m: (sign * m["value"], _order(m)))
            keep.update(m["name"] for m in scored[: self.keep_best])
        removed = [m["name"] for m in mine if m["name"] not in keep]
        for name in removed:
            storage.remove(name)
        return removed
