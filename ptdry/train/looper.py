"""Looper: how long to train and in which batches — and where the loop is now.

The Looper holds the loop's settings (epochs, batch size, validation frequency, step limit,
shuffling) and its position (epochs done, batches done in the current epoch, global steps
done). The position is its state, so a checkpoint taken at any step resumes at the next
batch of the same epoch order: :meth:`Looper.batches` moves the train split's
:class:`~ptdry.data.loader.DataLoader` to that position (the Looper is the truth; the
loader's own position follows it).
"""

from __future__ import annotations

from typing import Any

from ptdry.core.module import Module
from ptdry.core.properties import Int
from ptdry.data.loader import DataLoader
from ptdry.errors import ConfigError

__all__ = ["Looper"]


class Looper(Module):
    """The loop's settings and position (epochs done, batches done in this epoch, steps done).

    Args:
        epochs: epochs to train.
        batch_size: training rows per step (validation uses the same size); None: the data's
            own (a DataProvider's ``batch_size``, or that of a DataLoader given as a split).
        val_every_n_epochs: validate after every n-th epoch and after the last; 0: never.
        max_steps: stop after this many optimizer steps in total (None: no limit).
        shuffle: shuffle the training data each epoch (the order depends on seed and epoch);
            a DataLoader given as the train split keeps its own sampler.
        drop_last: leave out a last, smaller training batch.

    Example:
        >>> looper = Looper(epochs=2, batch_size=32)
        >>> looper.finished, looper.epoch
        (False, 1)
        >>> looper.advance_step(); looper.advance_epoch()
        >>> looper.state_dict()
        {'epochs_done': 1, 'batches_done': 0, 'steps_done': 1}
    """

    epochs = Int(min=1)
    batch_size = Int(min=1, allow_none=True)
    val_every_n_epochs = Int(min=0)
    max_steps = Int(min=1, allow_none=True)

    def __init__(
        self,
        epochs: int = 1,
        batch_size: int | None = None,
        val_every_n_epochs: int = 1,
        max_steps: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.val_every_n_epochs = val_every_n_epochs
        self.max_steps = max_steps
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.reset()

    # -- position ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Go back to the start (nothing done)."""
        self.epochs_done = 0
        self.batches_done = 0
        self.steps_done = 0

    @property
    def epoch(self) -> int:
        """The current epoch number, counted from 1 (the next one when between epochs)."""
        return self.epochs_done + 1

    @property
    def started(self) -> bool:
        """True once any step or epoch was done."""
        return bool(self.steps_done or self.epochs_done or self.batches_done)

    @property
    def mid_epoch(self) -> bool:
        """True when some batches of the current epoch are done."""
        return self.batches_done > 0

    @property
    def steps_exhausted(self) -> bool:
        """True when ``max_steps`` is reached."""
        return self.max_steps is not None and self.steps_done >= self.max_steps

    @property
    def finished(self) -> bool:
        """True when every epoch is done or ``max_steps`` is reached."""
        return self.epochs_done >= self.epochs or self.steps_exhausted

    def advance_step(self) -> None:
        """Record one more batch done (and one optimizer step)."""
        d = self.__dict__  # plain ints: skip Module.__setattr__'s child bookkeeping in the hot loop
        d["batches_done"] += 1
        d["steps_done"] += 1

    def advance_epoch(self) -> None:
        """Record the current epoch as done."""
        self.epochs_done += 1
        self.batches_done = 0

    def validation_due(self, epoch: int) -> bool:
        """True if validation runs after ``epoch`` (every n-th, and after the last)."""
        n = self.val_every_n_epochs
        return n > 0 and (epoch % n == 0 or epoch >= self.epochs or self.steps_exhausted)

    # -- batches -------------------------------------------------------------------------------
    def batches(self, data: Any, seed: int, split: str = "train") -> DataLoader:
        """``split``'s DataLoader at this position: iterating it gives the batches of the
        current epoch still to do. ``seed`` is the seed of its sampler if it has none."""
        loader = data.provide(split, self.batch_size, shuffle=None if self.shuffle else False, drop_last=self.drop_last)
        return loader.seek(self.epochs_done, self.batches_done, seed=seed)

    __call__ = batches

    # -- state ---------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done, "batches_done": self.batches_done, "steps_done": self.steps_done}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for key in ("epochs_done", "batches_done", "steps_done"):
            if key in state:
                setattr(self, key, int(state[key]))

    def __repr__(self) -> str:
        return (
            f"Looper(epochs={self.epochs}, batch_size={self.batch_size}, at epoch {self.epoch}, "
            f"batch {self.batches_done}, step {self.steps_done})"
        )
