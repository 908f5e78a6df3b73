"""Model, Optimizer, Criterion: a network with what trains it, as ptdry Modules.

``Model(net, optimizer, criterion)`` wraps any ``torch.nn.Module`` unchanged — an instance,
or an ``ObjectDef`` recipe that the Model builds (so the definition can rebuild it). Calling
the model is the forward pass; it works alone for inference. :class:`Optimizer` keeps an
optimizer class with its arguments and is bound to the parameters by the Model, so the torch
optimizer (and its state) is part of the Model's ``state_dict()``.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from ptdry.core.module import Module
from ptdry.core.objectdef import ObjectDef
from ptdry.core.properties import Instance
from ptdry.data import structure
from ptdry.errors import ConfigError, NotReadyError, TrainingError, add_note
from ptdry.metrics import Metric, as_numpy, batch_partials, resolve_metrics
from ptdry.train.devices import batch_to
from ptdry.train.param_groups import check_groups, resolve_groups
from ptdry.train.torch_runtime import TorchTraining
from ptdry.train.trainable import Trainable

__all__ = ["Criterion", "Model", "Optimizer"]


class Optimizer(Module):
    """An optimizer class and its arguments, bound to a network's parameters later.

    ``bind(net)`` builds ``optimizer_cls(params, **kwargs)`` as the child
    ``torch_optimizer``, whose state is then part of ``state_dict()``.

    Args:
        optimizer_cls: a ``torch.optim.Optimizer`` subclass (or any class taking the
            parameters first).
        groups: parameter groups by name, e.g. ``[{"params": "backbone", "lr": 1e-4},
            {"params": "head"}]``: each ``"params"`` is a submodule path, a parameter name,
            a glob (``"*.bias"``) or a ``"re:"`` regex (or a list of these), and the other
            keys override ``kwargs`` for that group. Every parameter must be in exactly one
            group. The groups are stored in the definition, so runs can be queried by them
            (``config.trainer.model.optimizer.groups.lr``). See :mod:`ptdry.train.param_groups`.
        **kwargs: its arguments (``lr=1e-3``, ``weight_decay=...``), the defaults of every group.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Linear(4, 1))
        >>> opt = Optimizer(torch.optim.SGD, lr=0.1, groups=[{"params": "0", "lr": 0.01}, {"params": "1"}])
        >>> _ = opt.bind(net)
        >>> opt.lrs, opt.group_names()[1]
        ([0.01, 0.1], ['1.weight', '1.bias'])
    """

    optimizer_cls = Instance(type, kind="an optimizer class such as torch.optim.Adam")

    def __init__(self, optimizer_cls: type, *, groups: Sequence[Mapping[str, Any]] | None = None, **kwargs: Any) -> None:
        self.optimizer_cls = optimizer_cls
        self.groups = None if groups is None else check_groups(groups)
        _check_arguments(optimizer_cls, kwargs, self.groups)
        self.kwargs = dict(kwargs)

    @property
    def bound(self) -> bool:
        """True once :meth:`bind` built the torch optimizer."""
        return "torch_optimizer" in self.__dict__

    def bind(self, target: Any) -> torch.optim.Optimizer:
        """Build the torch optimizer over a network's parameters (or, without ``groups``, any
        iterable of parameters), replacing one built before; returns it.

        Raises:
            ConfigError: ``groups`` do not assign every parameter to exactly one group, or
                name parameters the net does not have.
        """
        if self.groups is not None:
            if not isinstance(target, torch.nn.Module):
                raise ConfigError(
                    "Optimizer(groups=...) names parameters, so it binds to the network: bind(net), "
                    f"not to {type(target).__qualname__}"
                )
            params, names = resolve_groups(target, self.groups)
        elif isinstance(target, torch.nn.Module):
            named = list(target.named_parameters())
            params, names = [p for _, p in named], [[n for n, _ in named]]
        else:
            params, names = target, None
        self.torch_optimizer = self.optimizer_cls(params, **self.kwargs)
        self.__dict__["_group_names"] = names
        return self.torch_optimizer

    def group_names(self) -> list[list[str]]:
        """The parameter names of each group, in group order (after :meth:`bind` to a net)."""
        names = self.__dict__.get("_group_names")
        if names is None:
            raise NotReadyError(f"{self!r} was not bound to a network (bind(net)), so its parameters have no names")
        return [list(n) for n in names]

    def _opt(self) -> torch.optim.Optimizer:
        if not self.bound:
            raise NotReadyError(
                f"{self!r} is not bound to parameters yet; pass it to Model(net, optimizer=...) or call bind(params)"
            )
        return self.torch_optimizer

    def step(self) -> None:
        """One optimizer step."""
        self._opt().step()

    __call__ = step

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._opt().zero_grad(set_to_none=set_to_none)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self._opt().param_groups

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group."""
        return self._opt().param_groups[0]["lr"]

    @property
    def lrs(self) -> list[float]:
        """The learning rate of every parameter group."""
        return [g["lr"] for g in self._opt().param_groups]

    def problems(self) -> list[str]:
        return super().problems() + ([] if self.bound else ["optimizer not bound to parameters"])


class Criterion(Module):
    """A loss: a class built with its arguments (``torch.nn.CrossEntropyLoss``), or a function
    (``torch.nn.functional.cross_entropy``) called with them.

    Example:
        >>> loss = Criterion(torch.nn.MSELoss)
        >>> float(loss(torch.ones(2), torch.zeros(2)))
        1.0
    """

    def __init__(self, loss_cls: Any, **kwargs: Any) -> None:
        if not callable(loss_cls):
            raise ConfigError(f"loss_cls must be a loss class or function; received {loss_cls!r}")
        self.loss_fn = loss_cls(**kwargs) if isinstance(loss_cls, type) else functools.partial(loss_cls, **kwargs)

    def __call__(self, outputs: Any, targets: Any) -> torch.Tensor:
        """The loss of ``outputs`` against ``targets``."""
        return self.loss_fn(outputs, targets)


class Model(TorchTraining, Trainable):
    """A torch network with its optimizer and criterion; calling it is the forward pass.

    Under a Trainer it trains on the Trainer's device, in its precision, with its gradient
    clipping, wrapped in ``DistributedDataParallel`` in a distributed job (see
    :mod:`ptdry.train.torch_runtime`); its ``state_dict()`` is the same whatever of these
    were used.

    Args:
        net: a ``torch.nn.Module`` instance (used unchanged) or an ``ObjectDef`` of one, which
            the Model builds. Only an ObjectDef (or a ptdry Module) can be stored in the
            definition: ``Model(net_instance).definition()`` raises SerializationError.
        optimizer: an :class:`Optimizer`; the Model binds it to ``net.parameters()``.
        criterion: a :class:`Criterion` (or any loss callable) used by :meth:`loss`.
        init_seed: a net built from an ObjectDef is initialized with torch's RNG seeded by
            this number (without touching the global RNG), so equal definitions start from
            equal weights. None: use the global RNG.
        metrics: :mod:`ptdry.metrics` computed on every training batch and recorded as
            ``train.<name>`` (the mean of the epoch's batch values, like ``train.loss``);
            validation metrics are the Trainer's ``metrics``.

    Example:
        >>> m = Model(ObjectDef(torch.nn.Linear, 4, 2), Optimizer(torch.optim.SGD, lr=0.1),
        ...           Criterion(torch.nn.CrossEntropyLoss))
        >>> m(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
        >>> torch.equal(m.net.weight, Model(ObjectDef(torch.nn.Linear, 4, 2)).net.weight)
        True
    """

    framework = "torch"

    def __init__(
        self,
        net: Any,
        optimizer: Optimizer | None = None,
        criterion: Any = None,
        *,
        init_seed: int | None = 0,
        metrics: Any = (),
    ) -> None:
        if isinstance(net, ObjectDef):
            net = _build_net(net, init_seed)
        if not isinstance(net, torch.nn.Module):
            raise ConfigError(
                f"net must be a torch.nn.Module or an ObjectDef of one; received {type(net).__qualname__}"
            )
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise ConfigError(
                f"optimizer must be ptdry's Optimizer(torch.optim.Adam, lr=...); received {optimizer!r}"
            )
        if criterion is not None and not callable(criterion):
            raise ConfigError(f"criterion must be a Criterion or a loss callable; received {criterion!r}")
        self.net = net
        self.optimizer = optimizer
        self.criterion = criterion
        self.metric_fns = resolve_metrics(metrics)
        if optimizer is not None:
            optimizer.bind(net)

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        """The forward pass of the net (NumPy inputs become tensors, see :meth:`as_tensors`)."""
        return self.net(*self.as_tensors(inputs), **kwargs)

    def loss(self, outputs: Any, targets: Any) -> torch.Tensor:
        """The criterion applied to ``outputs`` and ``targets``.

        Raises:
            NotReadyError: the model has no criterion.
        """
        if self.criterion is None:
            raise NotReadyError("this Model has no criterion; pass criterion=Criterion(torch.nn.CrossEntropyLoss)")
        return self.criterion(outputs, self.as_tensors(targets))

    # -- the Trainer's contract (see Trainable) -------------------------------------------------
    def train_step(self, batch: Any, trainer: Any) -> Mapping[str, Any]:
        """Forward and loss (under the precision's autocast), ``trainer.backward(loss)``,
        ``trainer.optimizer_step()``; returns the loss detached from the graph.

        ``batch`` is ``(inputs..., targets)`` of torch tensors or NumPy arrays (see
        :meth:`as_tensors`); override this (or ``Trainer.train_step``) for other shapes of data
        or training.
        """
        *inputs, targets = self.as_tensors(_split(batch, "train_step"))
        runtime = self.__dict__.get("_dry_runtime")
        if runtime is None:
            outputs = self.net(*inputs)
            loss = self.loss(outputs, targets)
            trainer.backward(loss)
        else:  # gradients of batches that accumulate are all-reduced once, with the last
            with runtime.no_sync(getattr(trainer, "accumulating", False)):
                with runtime.precision.autocast():
                    outputs = runtime.train_net(*inputs)
                    loss = self.loss(outputs, targets)
                trainer.backward(loss)
        trainer.optimizer_step()
        loss = loss.detach()
        if not self.metric_fns:
            return {"loss": loss}
        o, t = as_numpy(_full(outputs)), as_numpy(targets)
        return {"loss": loss, **{name: m(o, t) for name, m in self.metric_fns.items()}}

    def eval_step(self, batch: Any, metrics: Mapping[str, Metric]) -> Mapping[str, Any]:
        """The loss (when there is a criterion) and each metric's sums of one batch; outputs
        and targets go to the metrics as NumPy arrays (one copy off the device per batch)."""
        *inputs, targets = self.as_tensors(_split(batch, "eval_step"))
        runtime = self.__dict__.get("_dry_runtime")
        net, autocast = (self.net, contextlib.nullcontext()) if runtime is None else (runtime.eval_net, runtime.precision.autocast())
        with torch.no_grad(), autocast:
            outputs = net(*inputs)
            out: dict[str, Any] = {}
            if self.criterion is not None:
                out["loss"] = self.loss(outputs, targets)
        if metrics:
            out.update(batch_partials(metrics, as_numpy(_full(outputs)), as_numpy(targets)))
        return out

    def as_tensors(self, batch: Any) -> Any:
        """``batch`` with every NumPy array a torch tensor, without copying
        (``torch.from_numpy``), and dtypes made to fit the net: floating point as the net's
        parameters (float64 data trains a float32 net), integers as int64 (class labels as
        losses expect them). Tensors already of those dtypes are passed through unchanged.

        This is where data loaders' NumPy batches become tensors: the loader stays framework
        free and the conversion costs no copy. On a GPU they then go to the device (from
        pinned memory, without blocking).
        """
        d = self.__dict__
        float_dtype = d.get("_dry_float_dtype")
        if float_dtype is None:
            float_dtype = next((p.dtype for p in self.net.parameters() if p.is_floating_point()), torch.float32)
            d["_dry_float_dtype"] = float_dtype
        device = d.get("_dry_device")
        if device is None:
            return _tensors(batch, float_dtype)
        return batch_to(_tensors(batch, float_dtype), device, device.type == "cuda")

    def zero_grad(self) -> None:
        self.optimizer.torch_optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor) -> None:
        runtime = self.__dict__.get("_dry_runtime")
        if runtime is None:
            loss.backward()
        else:
            runtime.precision.backward(loss)

    def optimizer_step(self) -> None:
        """Unscale (float16), clip (``grad_clip_norm`` / ``grad_clip_value``) and step."""
        optimizer = self.optimizer.torch_optimizer
        runtime = self.__dict__.get("_dry_runtime")
        if runtime is None:
            optimizer.step()
            return
        if runtime.clip_norm is not None or runtime.clip_value is not None:
            runtime.precision.unscale(optimizer)
            runtime.clip(self.net.parameters())
        runtime.precision.step(optimizer)

    @property
    def optimizer_object(self) -> Any:
        return self.optimizer.torch_optimizer if self.optimizer is not None else None

    @contextlib.contextmanager
    def evaluating(self) -> Iterator["Model"]:
        """Evaluation mode and ``torch.no_grad()`` for the block; the mode is restored."""
        with super().evaluating(), torch.no_grad():
            yield self

    def training_problems(self) -> list[str]:
        out = []
        if self.optimizer is None:
            out.append("no optimizer: pass Model(net, optimizer=Optimizer(torch.optim.Adam, lr=1e-3))")
        if self.criterion is None:
            out.append("no criterion: pass Model(net, criterion=Criterion(torch.nn.CrossEntropyLoss))")
        return out

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]:
        return self.net.parameters(recurse)

    def train(self, mode: bool = True) -> "Model":
        """Put the net in training (or, with ``mode=False``, evaluation) mode; returns self."""
        self.net.train(mode)
        return self

    def eval(self) -> "Model":
        """Put the net in evaluation mode; returns self."""
        return self.train(False)

    @property
    def training(self) -> bool:
        return self.net.training

    @torch.no_grad()
    def predict_batch(self, *inputs: Any) -> torch.Tensor:
        """The forward pass in evaluation mode without gradients (the mode is restored);
        NumPy inputs are made tensors on the net's device, floats of the net's dtype
        (float64 arrays become float32 ones, as a DataProvider does); under mixed precision
        the outputs are computed in it and given back as float32."""
        was_training = self.net.training
        self.net.eval()
        runtime = self.__dict__.get("_dry_runtime")
        try:
            if runtime is None:
                return self.net(*self.as_tensors(inputs))
            with runtime.precision.autocast():
                return _full(runtime.eval_net(*self.as_tensors(inputs)))
        finally:
            self.net.train(was_training)


def _full(outputs: Any) -> Any:
    """Outputs computed under autocast (float16, bfloat16) as float32, as metrics and NumPy
    take them; anything else as it is."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_full(o) for o in outputs)
    return outputs


def _tensors(value: Any, float_dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, np.ndarray):
        t = torch.from_numpy(value if value.flags.writeable else value.copy())
    elif isinstance(value, (tuple, list)):
        return type(value)(_tensors(v, float_dtype) for v in value)
    elif isinstance(value, dict):
        return {k: _tensors(v, float_dtype) for k, v in value.items()}
    elif isinstance(value, np.generic):
        t = torch.as_tensor(np.asarray(value))
    elif structure.framework(value) == "tf":  # a TensorFlow pipeline feeding a torch net
        return _tensors(value.numpy(), float_dtype)
    else:
        return value
    if t.is_floating_point():
        return t if t.dtype == float_dtype else t.to(float_dtype)
    if t.dtype in _INTEGERS and t.dtype != torch.int64:
        return t.long()
    return t


_INTEGERS = frozenset([torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])


def _split(batch: Any, step: str) -> Any:
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        size = len(batch) if isinstance(batch, (tuple, list)) else type(batch).__qualname__
        raise TrainingError(
            f"Model.{step} needs batches (inputs..., targets); received {size} part(s): override "
            f"Model.{step} (or Trainer.train_step) for data without targets"
        )
    return batch


def _check_arguments(optimizer_cls: type, kwargs: dict[str, Any], groups: list[dict[str, Any]] | None) -> None:
    """Build the optimizer once over dummy parameters (one per group), so bad arguments
    (``lr="0.1"``, a misspelled group option) fail here, where the Optimizer is made, not
    later when a Model binds it."""
    params: Any = [torch.zeros(1, requires_grad=True)]
    if groups is not None:
        params = [{**g, "params": [torch.zeros(1, requires_grad=True)]} for g in groups]
    try:
        built = optimizer_cls(params, **kwargs)
    except Exception as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments"
        if groups is not None:
            given += f", groups={groups!r}"
        add_note(exc, f"{optimizer_cls.__module__}.{optimizer_cls.__qualname__} rejected {given}")
        raise
    known = getattr(built, "defaults", None)
    for i, group in enumerate(groups or ()):
        unknown = sorted(set(group) - {"params"} - set(known or group))
        if unknown:
            raise ConfigError(
                f"groups[{i}] option {unknown[0]!r} is not an argument of {optimizer_cls.__qualname__} "
                f"(its arguments: {', '.join(sorted(known))})"
            )


def _build_net(definition: ObjectDef, init_seed: int | None) -> torch.nn.Module:
    if init_seed is None:
        return definition.build()
    if isinstance(init_seed, bool) or not isinstance(init_seed, int):
        raise ConfigError(f"init_seed must be an integer or None; received {init_seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return definition.build()
