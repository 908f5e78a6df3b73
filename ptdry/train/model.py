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
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch

from ptdry.core.module import Module
from ptdry.core.objectdef import ObjectDef
from ptdry.errors import ConfigError, NotReadyError, TrainingError, add_note
from ptdry.train.trainable import Trainable

__all__ = ["Criterion", "Model", "Optimizer"]


class Optimizer(Module):
    """An optimizer class and its arguments, bound to parameters later.

    ``bind(params)`` builds ``optimizer_cls(params, **kwargs)`` as the child
    ``torch_optimizer``, whose state is then part of ``state_dict()``.

    Args:
        optimizer_cls: a ``torch.optim.Optimizer`` subclass (or any class taking the
            parameters first).
        **kwargs: its arguments (``lr=1e-3``, ``weight_decay=...``).

    Example:
        >>> opt = Optimizer(torch.optim.SGD, lr=0.1)
        >>> _ = opt.bind(torch.nn.Linear(2, 1).parameters())
        >>> opt.lr
        0.1
    """

    def __init__(self, optimizer_cls: type, **kwargs: Any) -> None:
        if not isinstance(optimizer_cls, type):
            raise ConfigError(
                f"optimizer_cls must be an optimizer class such as torch.optim.Adam; received {optimizer_cls!r}"
            )
        _check_arguments(optimizer_cls, kwargs)
        self.optimizer_cls = optimizer_cls
        self.kwargs = dict(kwargs)

    @property
    def bound(self) -> bool:
        """True once :meth:`bind` built the torch optimizer."""
        return "torch_optimizer" in self.__dict__

    def bind(self, params: Iterable[Any]) -> torch.optim.Optimizer:
        """Build the torch optimizer over ``params`` (replacing one built before); returns it."""
        self.torch_optimizer = self.optimizer_cls(params, **self.kwargs)
        return self.torch_optimizer

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


class Model(Trainable):
    """A torch network with its optimizer and criterion; calling it is the forward pass.

    Args:
        net: a ``torch.nn.Module`` instance (used unchanged) or an ``ObjectDef`` of one, which
            the Model builds. Only an ObjectDef (or a ptdry Module) can be stored in the
            definition: ``Model(net_instance).definition()`` raises SerializationError.
        optimizer: an :class:`Optimizer`; the Model binds it to ``net.parameters()``.
        criterion: a :class:`Criterion` (or any loss callable) used by :meth:`loss`.
        init_seed: a net built from an ObjectDef is initialized with torch's RNG seeded by
            this number (without touching the global RNG), so equal definitions start from
            equal weights. None: use the global RNG.

    Example:
        >>> m = Model(ObjectDef(torch.nn.Linear, 4, 2), Optimizer(torch.optim.SGD, lr=0.1),
        ...           Criterion(torch.nn.CrossEntropyLoss))
        >>> m(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
        >>> torch.equal(m.net.weight, Model(ObjectDef(torch.nn.Linear, 4, 2)).net.weight)
        True
    """

    def __init__(
        self,
        net: Any,
        optimizer: Optimizer | None = None,
        criterion: Any = None,
        *,
        init_seed: int | None = 0,
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
        if optimizer is not None:
            optimizer.bind(net.parameters())

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
        """Forward, loss, ``trainer.backward(loss)``, ``trainer.optimizer_step()``.

        ``batch`` is ``(inputs..., targets)`` of torch tensors or NumPy arrays (see
        :meth:`as_tensors`); override this (or ``Trainer.train_step``) for other shapes of data
        or training.
        """
        *inputs, targets = self.as_tensors(_split(batch, "train_step"))
        loss = self.loss(self.net(*inputs), targets)
        trainer.backward(loss)
        trainer.optimizer_step()
        return {"loss": loss}

    def eval_step(self, batch: Any, metrics: Mapping[str, Any]) -> Mapping[str, Any]:
        """The loss (when there is a criterion) and each metric of one batch."""
        *inputs, targets = self.as_tensors(_split(batch, "eval_step"))
        with torch.no_grad():
            outputs = self.net(*inputs)
            out: dict[str, Any] = {}
            if self.criterion is not None:
                out["loss"] = self.criterion(outputs, targets)
            for name, fn in metrics.items():
                out[name] = fn(outputs, targets)
        return out

    def as_tensors(self, batch: Any) -> Any:
        """``batch`` with every NumPy array a torch tensor, without copying
        (``torch.from_numpy``), and dtypes made to fit the net: floating point as the net's
        parameters (float64 data trains a float32 net), integers as int64 (class labels as
        losses expect them). Tensors already of those dtypes are passed through unchanged.

        This is where data loaders' NumPy batches become tensors: the loader stays framework
        free and the conversion costs no copy.
        """
        d = self.__dict__
        float_dtype = d.get("_dry_float_dtype")
        if float_dtype is None:
            float_dtype = next((p.dtype for p in self.net.parameters() if p.is_floating_point()), torch.float32)
            d["_dry_float_dtype"] = float_dtype
        return _tensors(batch, float_dtype)

    def zero_grad(self) -> None:
        self.optimizer.torch_optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def optimizer_step(self) -> None:
        self.optimizer.torch_optimizer.step()

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
    def predict(self, *inputs: Any) -> Any:
        """The forward pass in evaluation mode without gradients (the mode is restored)."""
        was_training = self.net.training
        self.net.eval()
        try:
            return self.net(*self.as_tensors(inputs))
        finally:
            self.net.train(was_training)


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


def _check_arguments(optimizer_cls: type, kwargs: dict[str, Any]) -> None:
    """Build the optimizer once over a dummy parameter, so bad arguments (``lr="0.1"``) fail
    here, where the Optimizer is made, not later when a Model binds it."""
    try:
        optimizer_cls([torch.zeros(1, requires_grad=True)], **kwargs)
    except Exception as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments"
        add_note(exc, f"{optimizer_cls.__module__}.{optimizer_cls.__qualname__} rejected {given}")
        raise


def _build_net(definition: ObjectDef, init_seed: int | None) -> torch.nn.Module:
    if init_seed is None:
        return definition.build()
    if isinstance(init_seed, bool) or not isinstance(init_seed, int):
        raise ConfigError(f"init_seed must be an integer or None; received {init_seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return definition.build()
