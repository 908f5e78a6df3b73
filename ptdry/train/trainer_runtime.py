"""The Trainer's runtime (a mixin of :class:`~ptdry.train.trainer.Trainer`): the settings it
hands to its model, the distributed job it is part of, and where a batch stands in its step.

``setup()`` (called by ``fit``) joins the job torchrun describes (:mod:`ptdry.train.distributed`)
and asks the model for the device, precision, clipping and compilation of
:class:`~ptdry.train.settings.TrainingSettings`; ``world_size``, ``global_rank`` and
``is_global_zero`` are the names Lightning users know.
"""

from __future__ import annotations

from ptdry.errors import ConfigError
from ptdry.train import distributed
from ptdry.train.settings import TrainingSettings

__all__ = ["RuntimeTrainer"]


class RuntimeTrainer:
    """Runtime settings and distributed position of :class:`~ptdry.train.trainer.Trainer`."""

    @property
    def accumulating(self) -> bool:
        """True while the batch in progress only adds to the gradients (a later batch of its
        window steps the optimizer); models skip DDP's gradient all-reduce then."""
        return self._run.accumulating

    def settings(self, world: distributed.World | None = None) -> TrainingSettings:
        """What this trainer asks of its model (device, precision, clipping, accumulation,
        compilation) in the distributed ``world`` (None: a single process)."""
        return TrainingSettings(
            device=self.device,
            precision=self.precision,
            grad_clip_norm=self.grad_clip_norm,
            grad_clip_value=self.grad_clip_value,
            accumulate_grad_batches=self.accumulate_grad_batches,
            compile=self.compile,
            world=world,
        )

    def setup(self) -> None:
        """Join the distributed job the environment describes (torchrun), and have the model
        move to its device and take its precision; ``fit`` does this when it starts.

        Raises:
            ConfigError: a device, precision or setting the model cannot have here.
        """
        if self.grad_clip_norm is not None and self.grad_clip_value is not None:
            raise ConfigError(
                f"give grad_clip_norm= or grad_clip_value=, not both; they are {self.grad_clip_norm!r} and {self.grad_clip_value!r}"
            )
        settings = self.settings(distributed.setup())
        self.model.setup_training(settings)
        self.__dict__["_world"] = settings.world

    @property
    def world_size(self) -> int:
        """The number of processes training together (1 outside a distributed job)."""
        world = distributed.current()
        return 1 if world is None else world.size

    @property
    def global_rank(self) -> int:
        """This process's rank in a distributed job (0 outside one)."""
        world = distributed.current()
        return 0 if world is None else world.rank

    @property
    def is_global_zero(self) -> bool:
        """True in the process that records the run (rank 0, or the only one)."""
        return self.global_rank == 0
