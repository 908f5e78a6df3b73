"""Trainer: the training loop — steps, epochs, validation, callbacks, history, exact resume.

``Trainer(model, looper, callbacks).fit(data, seed)`` trains. Each step runs the overridable
:meth:`Trainer.train_step`; every event fires a trigger on the callbacks (see
:mod:`ptdry.train.triggers`); values go to the trainer's History. ``state_dict()`` holds
everything a run needs to continue exactly where it was: model, optimizer, callbacks, loop
position, the three global RNG states, the history's position and summaries, and the seed.

Device, precision, gradient clipping and compilation are settings the Trainer hands to the
model (``Trainable.setup_training``), so this file never imports a framework; gradient
accumulation and the distributed job's agreements are in :mod:`ptdry.train.epoch_loop`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable, Mapping

from ptdry.core.module import Module
from ptdry.core.properties import Bool, Choice, Float, Instance, Int
from ptdry.core.statistic import Statistic
from ptdry.data.provider import as_provider
from ptdry.errors import ConfigError, NotReadyError, add_note
from ptdry.metrics import Accumulator, resolve_metrics
from ptdry.train.callbacks.epoch_printer import EpochPrinter
from ptdry.train.callbacks.nan_detector import NaNDetector
from ptdry.train.callbacks.progress_bar import ProgressBar
from ptdry.train import distributed
from ptdry.train.epoch_loop import EpochLoop
from ptdry.train.looper import Looper
from ptdry.train.settings import PRECISIONS, Device
from ptdry.train.trainer_runtime import RuntimeTrainer
from ptdry.train.trainable import Trainable
from ptdry.train.resume import ResumableTrainer
from ptdry.train.rng import enable_determinism, seed_everything
from ptdry.train.triggers import unknown_triggers, unwrap

__all__ = ["Trainer"]

log = logging.getLogger(__name__)


class _Run:
    """Mutable per-run values kept off the Module (whose ``__setattr__`` is slower)."""

    __slots__ = (
        "in_epoch", "acc_count", "acc_sums", "deferred", "stop_reason", "window_start", "accumulating", "loss_factor",
    )  # fmt: skip

    def __init__(self) -> None:
        self.in_epoch = False
        self.acc_count = 0
        self.acc_sums: dict[str, Any] = {}
        self.deferred: list[Callable[[], Any]] = []
        self.stop_reason: str | None = None
        self.window_start = True  # the batch in progress starts a step: gradients are zeroed
        self.accumulating = False  # its gradients wait for more batches before the step
        self.loss_factor = 1.0  # its loss is multiplied by this before backward


def _interactive() -> bool:
    """Stdout and stderr are terminals, or this is a notebook kernel (tqdm.auto draws there)."""
    if "ipykernel" in sys.modules:
        return True
    return all(bool(getattr(s, "isatty", lambda: False)()) for s in (sys.stdout, sys.stderr))


def _resolve_verbose(verbose: int | str, progress_bar: bool | None) -> int:
    """0, 1 or 2 from ``verbose`` and the former ``progress_bar`` switch."""
    if progress_bar is not None:
        if verbose != "auto":
            raise ConfigError(f"give verbose= or progress_bar=, not both; received verbose={verbose!r}, progress_bar={progress_bar!r}")
        return 1 if progress_bar else 0
    if verbose == "auto":
        return 1 if _interactive() else 2
    return int(verbose)


class Trainer(ResumableTrainer, RuntimeTrainer, EpochLoop, Module):
    """Trains a :class:`Model` on a DataProvider's splits, calling callbacks on every event.

    Args:
        model: the Model (with optimizer and criterion).
        looper: epochs, batch size, validation frequency; default ``Looper()``.
        callbacks: callbacks in the order they are called (filters such as ``Every(cb,
            steps=10)`` included).
        metrics: computed on validation and test splits besides the loss, over NumPy
            outputs (:mod:`ptdry.metrics`): names (``"accuracy"``, ``"f1"``, ...), Metric
            objects (``TopKAccuracy(k=3)``) or functions ``fn(outputs, targets) -> batch mean``
            taking NumPy arrays. Exact over the split (not a mean of batch values).
        verbose: what to show while training: ``0`` nothing, ``1`` a progress bar,
            ``2`` one line per epoch (:class:`EpochPrinter`); ``"auto"``: a bar when stdout
            and stderr are terminals (or in a notebook), else one line per epoch — so logs of
            nohup, SLURM or CI jobs get readable lines.
        progress_bar: the former switch: ``True`` is ``verbose=1``, ``False`` is ``verbose=0``.
        detect_nan: add ``NaNDetector(action="raise")`` unless a NaNDetector is given.
        log_every_n_steps: record the per-step values (``step.loss``) every n steps.
        deterministic: make the model's framework pick deterministic kernels when ``fit``
            starts (torch's ``use_deterministic_algorithms``, TensorFlow's
            ``enable_op_determinism``; process-wide, it stays on). With equal thread counts
            a resumed CPU run is then bitwise identical to one never stopped, in TensorFlow
            too (torch's CPU kernels are deterministic anyway).
        device: where the model trains: ``"auto"`` (CUDA, else Apple's MPS, else the CPU),
            ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. The model, its optimizer state and
            every batch are moved there when ``fit`` starts; checkpoints load on any device.
            In a distributed job ``"auto"`` and ``"cuda"`` mean this process's GPU
            (``cuda:LOCAL_RANK``).
        precision: ``"32"``, ``"bf16-mixed"`` (autocast in bfloat16) or ``"16-mixed"``
            (autocast in float16 with a gradient scaler, whose state is checkpointed).
        grad_clip_norm: clip the gradients' global L2 norm to this before each optimizer step.
        grad_clip_value: clip each gradient element to ``[-value, value]`` instead.
        accumulate_grad_batches: add up the gradients of this many batches before each
            optimizer step (each loss divided by the window's batch count); a step is an
            optimizer step (see :mod:`ptdry.train.epoch_loop`).
        compile: compile the model's forward pass with ``torch.compile`` (the first steps
            take longer while it compiles).

    Run under ``torchrun``, the same Trainer trains with DistributedDataParallel, each
    process on its part of every batch (see ``docs/distributed.md``).

    Example:
        >>> import torch
        >>> from ptdry import ObjectDef
        >>> from ptdry.data.provider import DataProvider
        >>> from ptdry.train.model import Criterion, Model, Optimizer
        >>> g = torch.Generator().manual_seed(0); X = torch.randn(64, 4, generator=g)
        >>> data = DataProvider(train=(X, (X[:, 0] > 0).long()), val=(X, (X[:, 0] > 0).long()))
        >>> model = Model(ObjectDef(torch.nn.Linear, 4, 2), Optimizer(torch.optim.SGD, lr=0.5),
        ...               Criterion(torch.nn.CrossEntropyLoss))
        >>> trainer = Trainer(model, Looper(epochs=5, batch_size=16), progress_bar=False)
        >>> trainer.fit(data, seed=0)["val.accuracy"] > 0.9
        True
    """

    model = Instance(Trainable, kind="a ptdry Model(net, optimizer, criterion) or another Trainable")
    verbose = Choice(["auto", 0, 1, 2])
    looper = Instance(Looper, kind="a Looper(epochs=..., batch_size=...)")
    log_every_n_steps = Int(min=1)
    deterministic = Bool()
    device = Device()
    precision = Choice(list(PRECISIONS))
    grad_clip_norm = Float(above=0.0, allow_none=True)
    grad_clip_value = Float(above=0.0, allow_none=True)
    accumulate_grad_batches = Int(min=1)
    compile = Bool()

    def __init__(
        self,
        model: Model,
        looper: Looper | None = None,
        callbacks: Any = (),
        metrics: Any = ("accuracy",),
        *,
        verbose: int | str = "auto",
        progress_bar: bool | None = None,
        detect_nan: bool = True,
        log_every_n_steps: int = 1,
        deterministic: bool = False,
        device: str = "auto",
        precision: str = "32",
        grad_clip_norm: float | None = None,
        grad_clip_value: float | None = None,
        accumulate_grad_batches: int = 1,
        compile: bool = False,
    ) -> None:
        if not isinstance(callbacks, (list, tuple)):
            raise ConfigError(f"callbacks must be a list of callbacks; received {type(callbacks).__qualname__}")
        if grad_clip_norm is not None and grad_clip_value is not None:
            raise ConfigError(
                f"give grad_clip_norm= or grad_clip_value=, not both; received grad_clip_norm={grad_clip_norm!r}, "
                f"grad_clip_value={grad_clip_value!r}"
            )
        self.model = model
        self.looper = looper if looper is not None else Looper()
        self.metric_fns = resolve_metrics(metrics)
        self.log_every_n_steps = log_every_n_steps
        self.deterministic = deterministic
        self.device = device
        self.precision = precision
        self.grad_clip_norm = grad_clip_norm
        self.grad_clip_value = grad_clip_value
        self.accumulate_grad_batches = accumulate_grad_batches
        self.compile = compile
        self.metrics: dict[str, float] = {}
        self.seed: int | None = None
        d = self.__dict__
        d["_run"], d["_cbs"], d["_hist"] = _Run(), self.callbacks, self.history
        d["_pending_rng"], d["_checkpoint_storage"], d["_world"] = None, None, None
        if detect_nan and not any(isinstance(unwrap(cb), NaNDetector) for cb in callbacks):
            self.add_callback(NaNDetector())
        for cb in callbacks:
            self.add_callback(cb)
        self.verbose = verbose
        shown = _resolve_verbose(verbose, progress_bar)
        if any(isinstance(unwrap(cb), (ProgressBar, EpochPrinter)) for cb in callbacks):
            shown = 0  # the user chose how progress is shown
        if shown == 1:
            self.add_callback(ProgressBar())
        elif shown == 2:
            self.add_callback(EpochPrinter())

    # -- callbacks -----------------------------------------------------------------------------
    def add_callback(self, callback: Any, name: str | None = None) -> Any:
        """Register ``callback`` (after the others) and call its ``on_setup(trainer=self)``.

        The name is ``name``, else the callback's class name (a filter's: the wrapped
        callback's), with ``_2``, ``_3``... added when taken. Returns the callback.
        """
        base = name or getattr(callback, "callback_name", type(callback).__name__)
        unique, n = base, 1
        while unique in self._cbs.names():
            n += 1
            unique = f"{base}_{n}"
        unknown = unknown_triggers(callback)
        if unknown:
            log.warning("callback %s defines %s, which no trainer calls (a typo?)", unique, unknown)
        self._cbs.register(callback, name=unique)
        setup = getattr(callback, "on_setup", None)
        if callable(setup):
            setup(trainer=self)
        return callback

    def remove_callback(self, callback: Any) -> None:
        """Unregister a callback (the object or its name)."""
        self._cbs.remove(callback)

    def _fire(self, trigger: str, **values: Any) -> None:
        if self._cbs.handlers(trigger):
            self._cbs.call(trigger, trainer=self, **values)
        run = self._run
        while run.deferred:
            run.deferred.pop(0)()

    def defer(self, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` once every callback of the current trigger has run (a checkpoint
        taken then holds every callback's updated state)."""
        self._run.deferred.append(fn)

    # -- stopping ------------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end after the current step (the epoch still ends normally)."""
        self._run.stop_reason = reason
        log.info("training stops: %s", reason)

    @property
    def should_stop(self) -> bool:
        return self._run.stop_reason is not None

    @property
    def stop_reason(self) -> str | None:
        return self._run.stop_reason

    # -- position ------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """Global optimizer steps done."""
        return self.looper.steps_done

    @property
    def epoch(self) -> int:
        """The epoch in progress, or the last one done between epochs (counted from 1)."""
        return self.looper.epoch if self._run.in_epoch else self.looper.epochs_done

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, data: Any, seed: int | None = None, *, resume_state: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Train on ``data``'s train split (validating on val), from the start or from where
        the loaded state left off.

        Args:
            data: a DataProvider, or what :func:`~ptdry.data.provider.as_provider` makes one
            of (a DataLoader, a Dataset or ``(X, y)`` arrays as the train split).
            seed: seeds Python, NumPy and torch at the start of a fresh run and fixes the data
                order; default 0. A resumed run keeps its saved seed.
            resume_state: a state from :meth:`state_dict` (e.g. a checkpoint) to load first.

        Returns:
            The latest value of every metric (``{"val.loss": ..., "train.loss": ...}``).

        Raises:
            NotReadyError: the model lacks an optimizer/criterion or the data a train split.
            ConfigError: ``seed`` differs from the seed of the run being resumed.
        """
        if resume_state is not None:
            self.load_state_dict(resume_state)
        data = as_provider(data) if not hasattr(data, "provide") else data
        self._check_ready(data)
        self.setup()
        looper, run, d = self.looper, self._run, self.__dict__
        if self.deterministic:
            enable_determinism(self.model.framework)
        resumed = looper.started
        if resumed:
            if seed is not None and self.seed is not None and seed != self.seed:
                raise ConfigError(f"this run was started with seed={self.seed}; it cannot resume with seed={seed}")
            self.seed = self.seed if self.seed is not None else (0 if seed is None else seed)
            if d["_pending_rng"] is not None:
                self._restore_rng(d["_pending_rng"])
        else:
            self.seed = 0 if seed is None else seed
            seed_everything(self.seed)
            run.stop_reason = None
            self.metrics.clear()
        d["_pending_rng"] = None
        self.status.start()
        try:
            self._fire("on_train_start", step=looper.steps_done, epoch=looper.epoch, epochs=looper.epochs, resumed=resumed)
            while not looper.finished and not self._should_stop():
                self._run_epoch(data)
            reason = run.stop_reason or ("max_steps" if looper.steps_exhausted else "completed")
            self._fire("on_train_end", step=looper.steps_done, epoch=looper.epochs_done, metrics=dict(self.metrics), reason=reason)
        except BaseException as exc:
            self._handle_exception(exc)
            raise
        run.stop_reason = None
        self.status.complete(reason)
        return dict(self.metrics)

    __call__ = fit

    def _check_ready(self, data: Any) -> None:
        problems = self.problems()
        if not hasattr(data, "provide"):
            problems.append(f"data must be a DataProvider; received {type(data).__qualname__}")
        else:
            problems += [f"data: {p}" for p in data.problems()]
            if not data.has("train"):
                problems.append("data has no train split")
        if problems:
            raise NotReadyError("Trainer cannot fit:\n" + "\n".join(f"  - {p}" for p in problems))

    def problems(self) -> list[str]:
        return super().problems() + [f"model has {p}" for p in self.model.training_problems()]

    # -- one step (override these) -------------------------------------------------------------
    def train_step(self, batch: Any) -> Mapping[str, Any]:
        """One optimization step on ``batch``; returns the values to record (``{"loss": ...}``).

        By default the model's own ``train_step`` (forward, loss, :meth:`backward`,
        :meth:`optimizer_step`). Override it for custom training, calling :meth:`backward` and
        :meth:`optimizer_step` so their triggers still fire. Values may be framework scalars
        or floats; ``"loss"`` is what NaNDetector and the progress bar look at.
        """
        return self.model.train_step(batch, self)

    def backward(self, loss: Any) -> None:
        """Zero the gradients (at a step's first batch), fire on_before_backward, backward of
        the loss times the batch's factor (accumulation, distributed shares), fire
        on_after_backward. Callbacks see the loss as computed."""
        run = self._run
        if run.window_start:
            self.model.zero_grad()
        cbs, step, epoch = self._cbs, self.looper.steps_done + 1, self.looper.epoch
        if cbs.handlers("on_before_backward"):
            self._fire("on_before_backward", step=step, epoch=epoch, loss=loss)
        factor = run.loss_factor
        self.model.backward(loss if factor == 1.0 else loss * factor)
        if cbs.handlers("on_after_backward"):
            self._fire("on_after_backward", step=step, epoch=epoch, loss=loss)

    def optimizer_step(self) -> None:
        """Unless the batch's gradients accumulate for a later step: unscale them (float16),
        fire on_before_optimizer_step, then clip and apply them."""
        if self._run.accumulating:
            return
        self.model.unscale_gradients()
        if self._cbs.handlers("on_before_optimizer_step"):
            optimizer = self.model.optimizer_object
            self._fire("on_before_optimizer_step", step=self.looper.steps_done + 1, epoch=self.looper.epoch, optimizer=optimizer)
        self.model.optimizer_step()

    def eval_step(self, batch: Any) -> Mapping[str, Any]:
        """Loss (a batch mean) and metrics (:class:`~ptdry.metrics.Partial` sums, or batch
        means) of one validation/test batch; override freely."""
        return self.model.eval_step(batch, self.metric_fns)

    # -- evaluation ----------------------------------------------------------------------------
    def validate(self, data: Any, split: str = "val") -> dict[str, float]:
        """Loss and metrics on ``split`` (eval mode, no gradients), recorded in the history as
        ``"<split>.<metric>"``; fires on_validation_start/end. Returns ``{metric: value}``.

        In a distributed job each rank evaluates its part of the split and the sums are
        added over ranks (weighted by rows), so every rank gets the value of the whole split;
        call it on every rank."""
        step, epoch = self.looper.steps_done, self.epoch
        self._fire("on_validation_start", step=step, epoch=epoch, split=split)
        acc = Accumulator()
        data = as_provider(data) if not hasattr(data, "provide") else data
        world = distributed.current()
        loader = data.provide(split, self.looper.batch_size).shard(*((world.rank, world.size) if world else (0, 1)))
        with self.model.evaluating():
            for batch in loader.batches():
                acc.add(self.eval_step(batch), len(batch[0]))
        if world is not None:  # every rank evaluated its part: add up the sums, exactly
            acc = Accumulator.merged(distributed.gather(acc))
        values = acc.results()
        stat = self.log(split, values, step=step, epoch=epoch)
        self._fire("on_validation_end", step=step, epoch=epoch, split=split, metrics=dict(stat))
        return values

    def evaluate(self, data: Any, split: str = "test") -> dict[str, float]:
        """:meth:`validate` on the test split (by default)."""
        return self.validate(data, split)

    # -- history -------------------------------------------------------------------------------
    def log(self, name: str, values: Mapping[str, Any], *, step: int | None = None, epoch: int | None = None) -> Statistic:
        """Record ``values`` as ``Statistic(name, values)`` in the history (which summarizes it
        and hands it to its store), update :attr:`metrics` and fire on_log. Step and epoch
        default to the current ones."""
        stat = Statistic(
            name, values, step=self.looper.steps_done if step is None else step, epoch=self.epoch if epoch is None else epoch
        )
        self._hist.append(stat)
        metrics = self.metrics
        for k, v in stat.values.items():
            metrics[f"{name}.{k}"] = v
        if self._cbs.handlers("on_log"):
            self._cbs.call("on_log", trainer=self, statistic=stat)
        return stat

    # -- failure -------------------------------------------------------------------------------
    def _handle_exception(self, exc: BaseException) -> None:
        run = self._run
        run.deferred.clear()
        run.accumulating, run.loss_factor, run.window_start = False, 1.0, True
        for name, fn in self._cbs.handlers("on_exception"):
            try:
                fn(trainer=self, step=self.looper.steps_done, epoch=self.epoch, exception=exc)
            except Exception as inner:  # the original error is what the caller must see
                log.exception("callback %s failed in on_exception", name)
                add_note(exc, f"callback {name!r} also failed in on_exception: {inner!r}")
        run.in_epoch = False
        if self.status.state == "running":
            if isinstance(exc, KeyboardInterrupt):
                self.status.interrupt()
            else:
                self.status.fail(exc)
