"""The Trainer's resumable state and its checkpoint calls (a mixin of :class:`Trainer`).

``Trainer.state_dict()`` holds, besides its children (``model.*``: net, optimizer;
``looper.*``: epochs/batches/steps done):

- ``seed``, ``stop_reason`` and the running sums of the current epoch (``epoch_count``,
  ``epoch_sums``), so a mid-epoch resume computes the same epoch means;
- ``metrics`` (latest value of every metric);
- ``history.length`` and ``history.summaries``: how many records the history had and the
  running summary of each metric — never the records, which live in the history's store
  (a Session's database; for a bare Trainer, its memory), so the state has one format and
  its size does not grow with the run;
- ``rng``: the global generator states (Python, NumPy, and each framework in use) in one
  entry, so the state's keys are the same whichever frameworks a process imported; in a
  checkpoint of a distributed job, also those of the other ranks (``rng["ranks"]``), so each
  rank resumes with its own;
- ``loss_scaler``: with ``precision="16-mixed"`` only, the gradient scaler's state;
- ``callbacks.<name>.<key>``: each callback's state (schedulers, early stopping, ...).

Loading it into a tree built from the same definition and calling ``fit`` continues the run
with bitwise identical results (CPU). The RNG states are applied when ``fit`` starts, so
nothing run between loading and fitting disturbs them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ptdry.core.module import Module
from ptdry.core.state import State
from ptdry.core.statistic import Statistic
from ptdry.errors import ConfigError
from ptdry.train.callbacks.checkpoint import CheckpointStorage, checkpoint_name, select_checkpoint
from ptdry.train import distributed
from ptdry.train.rng import get_rng_state, set_rng_state

__all__ = ["ResumableTrainer"]

log = logging.getLogger(__name__)


class ResumableTrainer:
    """State and checkpoint methods of :class:`~ptdry.train.trainer.Trainer`."""

    # -- state ---------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        run = self._run
        out: dict[str, Any] = {
            "seed": self.seed,
            "stop_reason": run.stop_reason,
            "epoch_count": run.acc_count,
            "epoch_sums": {k: float(v) for k, v in run.acc_sums.items()},  # (read off a device, if there)
            "metrics": dict(self.metrics),
        }
        history = self._hist.state_dict()
        out["history.length"] = history["length"]
        out["history.summaries"] = history["summaries"]
        rng = self.__dict__["_pending_rng"] or get_rng_state()
        out["rng"] = dict(rng)
        if self.precision == "16-mixed":  # a key of this definition only: the keys stay those of the definition
            out["loss_scaler"] = self.model.loss_scaler_state()
        for name in self._cbs.names():
            cb = self._cbs[name]
            if hasattr(cb, "state_dict"):
                for key, value in cb.state_dict().items():
                    out[f"callbacks.{name}.{key}"] = value
        return out

    def load_extra_state(self, state: dict[str, Any]) -> None:
        run = self._run
        self.seed = state.get("seed")
        run.stop_reason = state.get("stop_reason")
        run.acc_count = int(state.get("epoch_count", 0))
        run.acc_sums = {k: float(v) for k, v in (state.get("epoch_sums") or {}).items()}
        run.in_epoch = False
        self.metrics.clear()
        self.metrics.update(state.get("metrics") or {})
        self._load_history(state)
        # (states of earlier ptdry versions kept one ``rng.<name>`` entry per generator)
        rng = state.get("rng") or {k[4:]: v for k, v in state.items() if k.startswith("rng.")}
        self.__dict__["_pending_rng"] = dict(rng) if rng else None
        if state.get("loss_scaler") is not None:
            self.model.load_loss_scaler_state(state["loss_scaler"])
        names = sorted(self._cbs.names(), key=len, reverse=True)  # longest first: names may hold dots
        groups: dict[str, dict[str, Any]] = {}
        for key, value in state.items():
            if key.startswith("callbacks."):
                name = next((n for n in names if key.startswith(f"callbacks.{n}.")), None)
                if name is not None:  # unknown names were reported by load_state_dict(strict=True)
                    groups.setdefault(name, {})[key[len(name) + 11 :]] = value
        strict = self.__dict__.get("_strict_load", True)
        for name, sub in groups.items():
            cb = self._cbs[name]
            if isinstance(cb, Module):
                cb.load_state_dict(State(sub), strict=strict)
            else:
                cb.load_state_dict(State(sub))

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
        """As :meth:`Module.load_state_dict`; ``strict`` also applies to the callbacks' states."""
        self.__dict__["_strict_load"] = strict
        try:
            return super().load_state_dict(state, strict=strict, assign=assign)
        finally:
            self.__dict__["_strict_load"] = True

    def _load_history(self, state: dict[str, Any]) -> None:
        """The history's position and summaries; the store forgets records past it. States of
        earlier ptdry versions held ``history`` (the records) or ``history_len`` instead;
        they load with ``strict=False``."""
        if "history" in state and "history.length" not in state:
            records = [Statistic.from_document(doc) for doc in state["history"] or []]
            self._hist.load_state_dict({"length": 0})
            for stat in records:
                self._hist.append(stat)
            return
        length = state.get("history.length", state.get("history_len")) or 0
        self._hist.load_state_dict({"length": length, "summaries": state.get("history.summaries") or {}})

    def _restore_rng(self, rng: dict[str, Any]) -> None:
        """Put the generators back as the loaded state had them: a rank other than 0 takes
        its own states when the checkpoint holds them (saved by as many ranks)."""
        world = self.__dict__["_world"]
        ranks = rng.get("ranks") or []
        saved_size, size = len(ranks) + 1, 1 if world is None else world.size
        if saved_size != size and "ranks" in rng or (size > 1 and not ranks):
            log.warning(
                "this state was saved by %s and is resumed by %d; ranks other than 0 start from rank 0's random "
                "state%s", f"{saved_size} processes" if "ranks" in rng else "a single process", size,
                " and the position in this epoch counts batches of the former world size" if self.looper.mid_epoch else "",
            )  # fmt: skip
        if world is not None and world.rank > 0 and len(ranks) == size - 1:
            rng = ranks[world.rank - 1]
        set_rng_state(rng)

    # -- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoint_storage(self) -> CheckpointStorage | None:
        """Where checkpoints go when a Checkpoint callback has no storage of its own; a
        Session sets it to the run's artifact store. Runtime wiring: not a child of the tree,
        not in the definition or the state."""
        return self.__dict__["_checkpoint_storage"]

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "checkpoint_storage":  # before Module.__setattr__ would make it a child
            self.set_checkpoint_storage(value)
        else:
            super().__setattr__(name, value)

    def set_checkpoint_storage(self, storage: CheckpointStorage | None) -> None:
        """Set :attr:`checkpoint_storage` (same as assigning it)."""
        if storage is not None and not _is_storage(storage):
            raise ConfigError(f"storage must have save/load/remove/list methods (a CheckpointStorage); received {storage!r}")
        self.__dict__["_checkpoint_storage"] = storage

    def resolve_checkpoint_storage(self, storage: CheckpointStorage | None = None) -> CheckpointStorage:
        """``storage``, else :attr:`checkpoint_storage`.

        Raises:
            ConfigError: neither is set.
        """
        found = storage if storage is not None else self.__dict__["_checkpoint_storage"]
        if found is None:
            raise ConfigError(
                "no checkpoint storage: pass storage=DirectoryStorage(path) (or MemoryStorage()), "
                "or call trainer.set_checkpoint_storage(...) — a Session does this for you"
            )
        if not _is_storage(found):
            raise ConfigError(f"storage must have save/load/remove/list methods (a CheckpointStorage); received {found!r}")
        return found

    def save_checkpoint(
        self,
        name: str | None = None,
        *,
        storage: CheckpointStorage | None = None,
        reason: str = "manual",
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Save :meth:`state_dict` now as checkpoint ``name``; fires on_checkpoint_save (whose
        callbacks may add to ``meta``). Returns the meta stored with it.

        In a distributed job, call it on every rank (the Checkpoint callback does): rank 0
        saves, with the random states of every rank; the others return the meta with
        ``"saved": False``.

        Args:
            name: default ``"ckpt-e<epochs done>-s<steps done>"``.
            storage: default :attr:`checkpoint_storage`.
            reason: ``"periodic"``, ``"exception"`` or ``"manual"`` (recorded in the meta).
            meta: more fields to record.
        """
        world = distributed.current()
        looper = self.looper
        name = name or checkpoint_name("ckpt", looper.epochs_done, looper.steps_done)
        info = {
            **(meta or {}),
            "name": name,
            "step": looper.steps_done,
            "epoch": looper.epochs_done,
            "batch": looper.batches_done,
            "reason": reason,
            "t": time.time(),
        }
        # In a distributed job every rank calls this at the same step (a checkpoint on an
        # exception is rank 0's alone: the others may be gone); rank 0 saves every rank's
        # generators, and the ranks wait for each other around the save.
        together = world is not None and reason != "exception"
        rngs = distributed.gather(get_rng_state()) if together else None
        if world is not None and not world.is_main:
            if together:
                distributed.barrier()
            return {**info, "saved": False}
        target = self.resolve_checkpoint_storage(storage)
        state = self.state_dict()
        if rngs is not None:
            state["rng"] = {**state["rng"], "ranks": rngs[1:]}
            info["world_size"] = world.size
        if self._cbs.handlers("on_checkpoint_save"):
            self._cbs.call("on_checkpoint_save", trainer=self, name=name, state=state, meta=info)
        try:
            target.save(name, state, info)
        finally:
            if together:
                distributed.barrier()
        log.info("saved checkpoint %s (%s) to %r", name, reason, target)
        return info

    def load_checkpoint(
        self, storage: CheckpointStorage | None = None, which: str = "last", *, strict: bool = True
    ) -> dict[str, Any]:
        """Load a checkpoint into this trainer (then ``fit`` continues from it); fires
        on_checkpoint_load. Returns the checkpoint's meta.

        Args:
            storage: default :attr:`checkpoint_storage`.
            which: ``"last"``, ``"best"``, ``"exception"`` or a checkpoint name.
            strict: report missing/unexpected state keys.

        Raises:
            ConfigError: no such checkpoint.
            StateDictError: the state does not fit this tree.
        """
        source = self.resolve_checkpoint_storage(storage)
        info = select_checkpoint(source.list(), which)
        state = source.load(info["name"])
        self.load_state_dict(state, strict=strict)
        if self._cbs.handlers("on_checkpoint_load"):
            self._cbs.call("on_checkpoint_load", trainer=self, name=info["name"], state=state, meta=info)
        log.info("loaded checkpoint %s from %r", info["name"], source)
        return info


def _is_storage(obj: Any) -> bool:
    return all(callable(getattr(obj, m, None)) for m in ("save", "load", "remove", "list"))
