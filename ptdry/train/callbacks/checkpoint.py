"""Checkpoint: when to save the trainer's state and which saves to keep — apart from where.

The *policy* (:class:`Checkpoint`: every N steps/epochs, keep the ``save_top_k`` best by a
monitored metric and the latest, save on exception) is separate from the *storage*
(:class:`CheckpointStorage`: ``save`` / ``load`` / ``remove`` / ``list``), so a directory,
memory, or a Session's database artifacts plug in alike.

Checkpoints are written once every callback of the triggering event has run (through
``trainer.defer``), so each holds a consistent state and resumes bit for bit. A checkpoint
saved on exception holds the state at the moment of failure, which may be mid-step: use it
to inspect, not to resume exactly (``which="last"`` never picks it).

Checkpoints are taken at optimizer-step boundaries (``on_step_end``, ``on_epoch_end``), so
with gradient accumulation none falls inside a window. In a distributed job every rank runs
the callback and rank 0 alone writes (see ``Trainer.save_checkpoint``).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import warnings
from typing import Any, Mapping

from ptdry.core.atomic import atomic_write
from ptdry.core.history import metric_mode
from ptdry.core.module import Module
from ptdry.core.properties import Bool, Instance, Int, Property, Str
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
_UNSET: Any = object()


def _plain_name(value: str) -> None:
    if not _NAME.match(value):
        raise ValueError("letters, digits, '.', '_' or '-' only, starting with a letter or digit")


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
    best by its recorded monitored value among those saved by a policy that ranks them (a
    monitor and ``save_top_k`` of k >= 1, or -1 for all; the default ``Checkpoint()`` keeps
    the best by ``val.loss``) — never another one; ``"exception"``: the latest saved on
    exception; anything else: a checkpoint name.

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
        kept = [e for e in regular if e.get("monitor") is not None and e.get("save_top_k", e.get("keep_best"))]
        if not kept:
            raise NotFoundError(
                f"no best checkpoint was kept (the storage holds {names or 'nothing'}; a Checkpoint keeps "
                "the best only with a monitor and save_top_k >= 1). Train with Checkpoint(monitor='val.loss') "
                "(it keeps the best by that metric, and the latest), or load which='last'"
            )
        scored = [e for e in kept if _finite(e.get("value"))]
        if not scored:
            monitors = sorted({str(e.get("monitor")) for e in kept})
            raise NotFoundError(
                f"no checkpoint recorded a finite value of {', '.join(monitors)}, so none is best (the storage "
                f"holds {names}); does the run compute that metric before each save (a val split, validation "
                "every epoch), and is it not NaN?"
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


class _KeepLast(Property):
    """``save_last``: True (keep the latest checkpoint), False, or how many of the latest to
    keep; stored as a count."""

    kind = "True, False or a number of latest checkpoints (>= 0)"

    def check(self, value: Any) -> int:
        if isinstance(value, bool):
            return int(value)
        if not hasattr(value, "__index__") or int(value) < 0:
            raise ValueError("not a bool or a count >= 0")
        return int(value)


class Checkpoint(MonitorCallback):
    """Save the trainer's full state every N steps and/or epochs, keep the ``save_top_k`` best
    by ``monitor`` and the latest (``save_last``), and save when training fails.

    By default it saves after every epoch and keeps two: the latest (to resume from) and the
    best by ``val.loss`` (for ``Session.load(id, which="best")``). A run without validation
    has no ``val.loss``, so only the latest is kept and no checkpoint is "best".

    Args:
        every_n_steps: save after every n-th step (None: not by steps).
        every_n_epochs: save after every n-th epoch (None: not by epochs).
        monitor: the metric ranking the checkpoints (recorded with each); None: no ranking.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy-like names).
        save_top_k: keep the k best by ``monitor`` (``0``: none by score, only the latest;
            ``-1``: keep every checkpoint). Default: 1 with a monitor, 0 without. A NaN
            value never ranks: such a checkpoint is kept only as the latest.
        save_last: keep the latest checkpoint as well (``True``), or the ``n`` latest.
        on_exception: save (as ``<prefix>-...-exception``) when training raises.
        storage: a :class:`CheckpointStorage`; None uses ``trainer.checkpoint_storage``
            (a Session sets it to the run's artifact store).
        prefix: checkpoint names start with it; retention only touches its own names.
        **renamed: ``keep_last`` and ``keep_best``, the former names of ``save_last`` and
            ``save_top_k`` (``keep_last=None`` meant keep all); deprecated.

    Raises:
        ConfigError: a bad value, ``save_top_k >= 1`` without a monitor (nothing to rank
            by), or a policy that never saves or keeps nothing.

    Example:
        >>> ckpt = Checkpoint(every_n_epochs=1, save_top_k=2, storage=MemoryStorage())
        >>> Checkpoint(monitor=None, save_top_k=3)
        Traceback (most recent call last):
        ...
        ptdry.errors.ConfigError: Checkpoint(save_top_k=3) keeps the best checkpoints by a metric, but monitor=None: name the metric (monitor='val.loss'), or use save_top_k=0 (only the latest) or -1 (all)
    """

    monitor = Str(nonempty=True, allow_none=True, doc="a metric name such as 'val.loss', or None")
    every_n_steps = Int(min=1, allow_none=True)
    every_n_epochs = Int(min=1, allow_none=True)
    save_top_k = Int(min=-1)
    save_last = _KeepLast()
    save_on_exception = Bool()
    storage = Instance(CheckpointStorage, allow_none=True, kind="a CheckpointStorage (e.g. DirectoryStorage(path))")
    prefix = Str(validators=[_plain_name])

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        monitor: str | None = "val.loss",
        mode: str = "auto",
        save_top_k: int | None = None,
        save_last: bool | int = True,
        on_exception: bool = True,
        storage: CheckpointStorage | None = None,
        prefix: str = "ckpt",
        **renamed: Any,
    ) -> None:
        save_top_k, save_last = _renamed(save_top_k, save_last, renamed)
        self.monitor = monitor
        self.mode = mode
        if monitor is not None and mode == "auto":
            self.mode = metric_mode(monitor)
        self.min_delta = 0.0
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self.save_top_k = (1 if monitor is not None else 0) if save_top_k is None else save_top_k
        self.save_last = save_last
        self.save_on_exception = on_exception
        self.storage = storage
        self.prefix = prefix
        if monitor is None and self.save_top_k > 0:
            raise ConfigError(
                f"Checkpoint(save_top_k={self.save_top_k}) keeps the best checkpoints by a metric, but monitor=None: "
                "name the metric (monitor='val.loss'), or use save_top_k=0 (only the latest) or -1 (all)"
            )
        if every_n_steps is None and every_n_epochs is None and not on_exception:
            raise ConfigError("this Checkpoint never saves: give every_n_steps, every_n_epochs or on_exception=True")
        if self.save_top_k == 0 and self.save_last == 0:
            raise ConfigError(
                "this Checkpoint keeps nothing (save_top_k=0 and save_last=False): keep the latest "
                "(save_last=True), the best (save_top_k=1 with a monitor) or all (save_top_k=-1)"
            )
        self._warned = False

    def monitored(self, metrics: Mapping[str, Any]) -> float | None:
        return None if self.monitor is None else super().monitored(metrics)

    def on_step_end(self, trainer: Any, step: int, **_: Any) -> None:
        if self.every_n_steps is not None and step % self.every_n_steps == 0:
            trainer.defer(lambda: self.save(trainer))

    def on_epoch_end(self, trainer: Any, epoch: int, **_: Any) -> None:
        if self.every_n_epochs is not None and epoch % self.every_n_epochs == 0:
            trainer.defer(lambda: self.save(trainer))

    def on_exception(self, trainer: Any, exception: BaseException, **_: Any) -> None:
        if self.save_on_exception:
            looper = trainer.looper
            name = checkpoint_name(self.prefix, looper.epochs_done, looper.steps_done, "-exception")
            trainer.save_checkpoint(
                name, storage=self.storage, reason="exception", meta={"prefix": self.prefix, "error": repr(exception)[:500]}
            )

    def save(self, trainer: Any) -> dict[str, Any]:
        """Save the trainer's state now and apply the retention policy; returns the meta."""
        looper = trainer.looper
        value = self.monitored(trainer.metrics)
        if value is None and self.monitor is not None and self.save_top_k > 0 and not self._warned:
            self._warned = True
            log.info(
                "Checkpoint: no %s yet at step %d, so this checkpoint does not rank among the best "
                "(a run without validation keeps only the latest)", self.monitor, looper.steps_done,
            )  # fmt: skip
        meta = {"prefix": self.prefix, "monitor": self.monitor, "mode": self.mode, "value": value, "save_top_k": self.save_top_k}
        name = checkpoint_name(self.prefix, looper.epochs_done, looper.steps_done)
        info = trainer.save_checkpoint(name, storage=self.storage, reason="periodic", meta=meta)
        if info.get("saved", True):  # (ranks other than 0 of a distributed job save nothing)
            self.retain(trainer.resolve_checkpoint_storage(self.storage))
        return info

    def kept(self, entries: list[dict[str, Any]]) -> set[str]:
        """The names among this policy's ``entries`` (metas, as ``storage.list()`` gives) that
        retention keeps: the ``save_last`` latest and the ``save_top_k`` best."""
        if self.save_top_k == -1:
            return {m["name"] for m in entries}
        latest = sorted(entries, key=_order, reverse=True)
        keep = {m["name"] for m in latest[: self.save_last]}
        if self.save_top_k > 0:
            sign = -1.0 if self.mode == "max" else 1.0
            scored = [m for m in entries if _finite(m.get("value")) and m.get("monitor") == self.monitor]
            scored.sort(key=lambda m: (sign * m["value"], _order(m)))  # ties: the earlier stays
            keep.update(m["name"] for m in scored[: self.save_top_k])
        return keep

    def retain(self, storage: CheckpointStorage) -> list[str]:
        """Remove this policy's checkpoints that :meth:`kept` does not keep; returns their names."""
        mine = [m for m in storage.list() if m.get("prefix") == self.prefix and m.get("reason") == "periodic"]
        keep = self.kept(mine)
        removed = [m["name"] for m in mine if m["name"] not in keep]
        for name in removed:
            storage.remove(name)
        return removed


def _renamed(save_top_k: Any, save_last: Any, renamed: dict[str, Any]) -> tuple[Any, Any]:
    """Map the deprecated ``keep_last`` / ``keep_best`` onto ``save_last`` / ``save_top_k``."""
    unknown = sorted(set(renamed) - {"keep_last", "keep_best"})
    if unknown:
        raise TypeError(f"Checkpoint() got an unexpected keyword argument {unknown[0]!r}")
    if not renamed:
        return save_top_k, save_last
    keep_last, keep_best = renamed.get("keep_last", _UNSET), renamed.get("keep_best", _UNSET)
    warnings.warn(
        "Checkpoint(keep_last=, keep_best=) are deprecated: use save_last= (True or a count) and "
        "save_top_k= (k best; 0 none; -1 all)",
        DeprecationWarning,
        stacklevel=4,
    )
    if keep_best is not _UNSET:
        save_top_k = keep_best
    elif save_top_k is None:  # the former default: keep_best=0
        save_top_k = 0
    if keep_last is None:
        save_top_k = -1
    elif keep_last is not _UNSET:
        save_last = keep_last
    return save_top_k, save_last
