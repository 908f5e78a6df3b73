"""TorchRuntime: how a torch Model trains under a Trainer's settings.

Made by ``Model.setup_training(settings)`` when ``fit`` starts: it moves the net, the
optimizer state and the criterion to the device, picks autocast and the gradient scaler,
wraps the net in ``DistributedDataParallel`` in a distributed job and compiles it with
``torch.compile`` when asked. The wrappers are runtime objects, never children of the
Model, so ``state_dict()`` keys are those of the plain net whatever the runtime: a run
trained with DDP (or compiled) loads in a single process and the other way round.

Evaluation uses the plain net (compiled when asked), never the DDP wrapper: ranks may then
evaluate different numbers of batches without a collective per batch.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterable

import torch

from ptdry.train.devices import move_optimizer_state, resolve_device
from ptdry.train.precision import Precision
from ptdry.train.settings import TrainingSettings

__all__ = ["TorchRuntime", "move_model"]

log = logging.getLogger(__name__)


def move_model(model: Any, device: torch.device) -> None:
    """Put ``model``'s net, its optimizer's state and its criterion's tensors on ``device``."""
    model.net.to(device)
    optimizer = model.optimizer_object
    if optimizer is not None:
        move_optimizer_state(optimizer, device)
    criterion = getattr(model.criterion, "loss_fn", model.criterion)
    if isinstance(criterion, torch.nn.Module):
        criterion.to(device)
    model.__dict__["_dry_device"] = None if device.type == "cpu" else device


class TorchRuntime:
    """Device, precision, DDP and compilation of one Model for one set of settings.

    Args:
        model: the torch :class:`~ptdry.train.model.Model`.
        settings: the Trainer's :class:`~ptdry.train.settings.TrainingSettings`.

    Raises:
        ConfigError: the device or precision is not available here.
    """

    def __init__(self, model: Any, settings: TrainingSettings) -> None:
        self.settings = settings
        world = settings.world
        self.device = resolve_device(settings.device, world)
        self.precision = Precision(settings.precision, self.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        move_model(model, self.device)
        net = model.net
        self.ddp: Any = None
        train_net = net
        if world is not None:
            from torch.nn.parallel import DistributedDataParallel

            cuda = self.device.type == "cuda"
            self.ddp = train_net = DistributedDataParallel(net, device_ids=[self.device.index] if cuda else None)
        self.eval_net = net
        if settings.compile:
            self.eval_net = torch.compile(net)
            train_net = self.eval_net if self.ddp is None else torch.compile(self.ddp)
        self.train_net = train_net
        self.clip_norm, self.clip_value = settings.grad_clip_norm, settings.grad_clip_value
        #: Values of a step stay on the device until they are logged (each read waits for the device).
        self.defers_reads = self.device.type != "cpu"
        log.debug("model on %s, precision %s%s", self.device, settings.precision, ", DDP" if self.ddp is not None else "")

    def no_sync(self, accumulating: bool) -> Any:
        """DDP's ``no_sync()`` while gradients accumulate (they are all-reduced once, with
        the window's last batch); otherwise nothing."""
        if accumulating and self.ddp is not None:
            return self.ddp.no_sync()
        return contextlib.nullcontext()

    def clip(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Clip the gradients as the settings ask (after unscaling)."""
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, self.clip_norm)
        elif self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(parameters, self.clip_value)


class TorchTraining:
    """The runtime half of the Trainable contract for the torch Model (a mixin of
    :class:`~ptdry.train.model.Model`): settings in, device and scaler state out."""

    def _runtime(self) -> TorchRuntime | None:
        return self.__dict__.get("_dry_runtime")

    def setup_training(self, settings: TrainingSettings) -> None:
        """Move to the device, pick the precision, wrap in DDP / compile as ``settings``
        ask (a no-op when they did not change since the last call).

        Raises:
            ConfigError: the device or precision is not available here.
        """
        current = self._runtime()
        if current is not None and current.settings == settings:
            return
        pending = self.loss_scaler_state()
        runtime = TorchRuntime(self, settings)
        runtime.precision.load_state_dict(pending)
        d = self.__dict__
        d["_dry_runtime"], d["_dry_scaler_pending"] = runtime, None

    def to_device(self, device: str) -> None:
        """Move the net, the optimizer state and the criterion to ``device`` now (e.g.
        ``"cpu"`` to predict with a run trained on a GPU); the next ``fit`` moves them to
        the Trainer's device again.

        Raises:
            ConfigError: no such device here.
        """
        from ptdry.train.distributed import current

        pending = self.loss_scaler_state()
        move_model(self, resolve_device(device, current()))
        self.__dict__["_dry_runtime"], self.__dict__["_dry_scaler_pending"] = None, pending

    @property
    def device(self) -> torch.device:
        """The device of the net's parameters (the CPU for a net without any)."""
        first = next(iter(self.net.parameters()), None)
        return first.device if first is not None else torch.device("cpu")

    @property
    def device_name(self) -> str:
        return str(self.device)

    @property
    def defers_reads(self) -> bool:
        runtime = self._runtime()
        return runtime is not None and runtime.defers_reads

    def read_values(self, values: Any) -> dict[str, float]:
        """The values as floats, device tensors read in one transfer."""
        tensors = [k for k, v in values.items() if isinstance(v, torch.Tensor) and v.device.type != "cpu"]
        out = {k: v.item() if hasattr(v, "item") else float(v) for k, v in values.items() if k not in tensors}
        if tensors:
            read = torch.stack([values[k].detach().double().reshape(()) for k in tensors]).tolist()
            out.update(zip(tensors, read))
        return {k: out[k] for k in values}

    def loss_scaler_state(self) -> Any:
        runtime = self._runtime()
        if runtime is not None and runtime.precision.scaler is not None:
            return runtime.precision.state_dict()
        return self.__dict__.get("_dry_scaler_pending")

    def load_loss_scaler_state(self, state: Any) -> None:
        runtime = self._runtime()
        if runtime is not None and runtime.precision.scaler is not None:
            runtime.precision.load_state_dict(state)
        else:  # applied when training starts
            self.__dict__["_dry_scaler_pending"] = state

    def unscale_gradients(self) -> None:
        runtime = self._runtime()
        if runtime is not None:
            runtime.precision.unscale(self.optimizer.torch_optimizer)
