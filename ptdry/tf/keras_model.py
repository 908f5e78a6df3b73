"""KerasModel: a Keras network with its optimizer and loss, trained by ptdry's Trainer.

``KerasModel(net=ObjectDef(build_fn_or_keras_class, ...), optimizer=..., loss=...)`` is a
:class:`~ptdry.train.trainable.Trainable` like the torch ``Model``: calling it is the forward
pass, ``train_step`` is one ``tf.GradientTape`` step compiled with ``tf.function``, and its
``state_dict()`` holds every variable of the net (by stable layer path) and of the optimizer
as NumPy arrays, which ``load_state_dict`` restores bit for bit. The same Trainer, Session,
callbacks, checkpoints and run documents therefore drive Keras and torch models alike.
TensorFlow is imported when a KerasModel is made, never by ``import ptdry``.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from ptdry.core.objectdef import ObjectDef
from ptdry.core.properties import Bool, Int
from ptdry.errors import ConfigError, TrainingError
from ptdry.metrics import Metric, as_numpy, batch_partials, resolve_metrics
from ptdry.tf.keras_state import check_arrays, named_optimizer_variables, named_variables
from ptdry.train.trainable import Trainable

__all__ = ["KerasModel"]

#: Trainer events that need the gradients apart from the step (see ``train_step``).
_GRADIENT_TRIGGERS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def _keras() -> Any:
    import keras  # here, not at import time: `import ptdry` never loads TensorFlow

    return keras


class KerasModel(Trainable):
    """A Keras network, optimizer and loss; calling it is the forward pass.

    Args:
        net: an ``ObjectDef`` of a function returning a ``keras.Model`` or of a
            ``keras.Model`` subclass (built by the KerasModel, so the definition can rebuild
            it), or a ``keras.Model`` instance (used as is; such a KerasModel cannot be stored
            as a definition). The net must have weights once made: give it a
            ``keras.Input``, or pass ``input_shape``.
        optimizer: an ``ObjectDef`` of a Keras optimizer class
            (``ObjectDef(keras.optimizers.Adam, learning_rate=1e-3)``) or a Keras name
            (``"adam"``); built over the net's trainable variables at once, so its state
            exists before the first step.
        loss: an ``ObjectDef`` of a Keras loss class
            (``ObjectDef(keras.losses.SparseCategoricalCrossentropy, from_logits=True)``), a
            Keras name (``"mse"``) or a loss function ``fn(targets, outputs)``.
        metrics: :mod:`ptdry.metrics` computed on every training batch and recorded as
            ``train.<name>``; validation metrics are the Trainer's ``metrics``.
        init_seed: the net is built with Python's generator seeded by this number (Keras
            draws its initializers' seeds from it) and then restored, so equal definitions
            start from equal weights. None: use the global generators.
        input_shape: the shape of one sample, to build a net that has no ``keras.Input``.
        jit_compile: compile the steps with XLA.

    Example:
        >>> import keras, numpy as np
        >>> from ptdry import ObjectDef
        >>> model = KerasModel(ObjectDef(keras.layers.Dense, 2), optimizer="sgd",
        ...                    loss="mse", input_shape=(3,))
        >>> tuple(model(np.zeros((4, 3), np.float32)).shape)
        (4, 2)
        >>> sorted(model.state_dict())
        ['net.bias', 'net.kernel', 'optimizer.iteration', 'optimizer.learning_rate']
    """

    framework = "tensorflow"
    init_seed = Int(min=0, allow_none=True)
    jit_compile = Bool()

    def __init__(
        self,
        net: Any,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = (),
        *,
        init_seed: int | None = 0,
        input_shape: tuple[int, ...] | None = None,
        jit_compile: bool = False,
    ) -> None:
        keras = _keras()
        self.init_seed = init_seed
        self.jit_compile = jit_compile
        if isinstance(net, ObjectDef):
            net = self._build_net(net, input_shape)
        elif isinstance(net, keras.layers.Layer):
            _build(net, input_shape)
        if not isinstance(net, keras.layers.Layer):
            raise ConfigError(
                f"net must be a keras.Model or an ObjectDef of a function or class making one; "
                f"received {type(net).__qualname__}"
            )
        if not net.built or not net.weights:
            raise ConfigError(
                f"net {type(net).__name__} has no weights yet: start it with a keras.Input(shape=...) "
                "or pass KerasModel(..., input_shape=(features,))"
            )
        d = self.__dict__
        d["net"], d["optimizer"], d["loss_fn"] = net, _optimizer(optimizer), _loss(loss)
        if d["optimizer"] is not None:
            d["optimizer"].build(net.trainable_variables)
        self.metric_fns = resolve_metrics(metrics)
        d["_training"], d["_fns"], d["_pending"], d["gradients"] = True, {}, None, None

    def _build_net(self, definition: ObjectDef, input_shape: tuple[int, ...] | None) -> Any:
        def make() -> Any:
            net = definition.build()
            _build(net, input_shape)
            return net

        if self.init_seed is None:
            return make()
        saved = random.getstate()
        random.seed(self.init_seed)
        try:
            return make()
        finally:
            random.setstate(saved)

    # -- inference -------------------------------------------------------------------------------
    def __call__(self, *inputs: Any, training: bool = False) -> Any:
        """The forward pass of the net (inference mode unless ``training=True``)."""
        return self.net(_inputs(inputs), training=training)

    def predict_batch(self, *inputs: Any) -> Any:
        """The forward pass in inference mode (compiled), for :meth:`predict`."""
        x = _inputs(inputs)
        return self._fn("forward", x)(x)

    # -- the Trainer's contract (see Trainable) ------------------------------------------------------
    def train_step(self, batch: Any, trainer: Any) -> Mapping[str, Any]:
        """One optimization step: forward, loss, gradients and their application in one
        compiled ``tf.function``.

        When a callback listens to ``on_before_backward``, ``on_after_backward`` or
        ``on_before_optimizer_step``, the step runs as two compiled functions instead, with
        ``trainer.backward(loss)`` and ``trainer.optimizer_step()`` between them: the
        gradients are computed with the loss (a Keras tape cannot run later), exposed as
        :attr:`gradients` from ``on_after_backward`` on (callbacks may replace them, e.g.
        clipped), and applied by ``optimizer_step``.
        """
        inputs, targets = _split(batch, "train_step")
        if _listens(trainer):
            loss, grads, outputs = self._fn("grads", inputs, targets)(inputs, targets)
            self.__dict__["_pending"] = list(grads)
            trainer.backward(loss)
            trainer.optimizer_step()
        else:
            loss, outputs = self._fn("train", inputs, targets)(inputs, targets)
        out: dict[str, Any] = {"loss": loss.numpy()}
        if self.metric_fns:
            o, t = as_numpy(outputs), as_numpy(targets)
            out.update({name: m(o, t) for name, m in self.metric_fns.items()})
        return out

    def eval_step(self, batch: Any, metrics: Mapping[str, Metric]) -> Mapping[str, Any]:
        """The loss (when there is one) and each metric's sums of one batch, over NumPy outputs."""
        inputs, targets = _split(batch, "eval_step")
        out: dict[str, Any] = {}
        if self.loss_fn is not None:
            loss, outputs = self._fn("eval", inputs, targets)(inputs, targets)
            out["loss"] = loss.numpy()
        else:
            outputs = self._fn("forward", inputs)(inputs)
        if metrics:
            out.update(batch_partials(metrics, as_numpy(outputs), as_numpy(targets)))
        return out

    def zero_grad(self) -> None:
        self.__dict__["gradients"] = None

    def backward(self, loss: Any) -> None:
        d = self.__dict__
        if d["_pending"] is None:
            raise TrainingError(
                "KerasModel computes gradients together with the loss inside train_step; "
                "call trainer.backward(loss) only from KerasModel.train_step"
            )
        d["gradients"], d["_pending"] = d["_pending"], None

    def optimizer_step(self) -> None:
        grads = self.__dict__["gradients"]
        if grads is None:
            raise TrainingError("no gradients to apply: trainer.backward(loss) comes before trainer.optimizer_step()")
        self._fn("apply")(list(grads))
        self.__dict__["gradients"] = None

    @property
    def optimizer_object(self) -> Any:
        return self.optimizer

    def train(self, mode: bool = True) -> "KerasModel":
        """Training mode (dropout on in the steps) or, with ``mode=False``, inference; returns self."""
        self.__dict__["_training"] = bool(mode)
        return self

    def eval(self) -> "KerasModel":
        return self.train(False)

    @property
    def training(self) -> bool:
        return self.__dict__["_training"]

    def training_problems(self) -> list[str]:
        out = []
        if self.optimizer is None:
            out.append('no optimizer: pass KerasModel(net, optimizer=ObjectDef(keras.optimizers.Adam, learning_rate=1e-3))')
        if self.loss_fn is None:
            out.append("no loss: pass KerasModel(net, loss=ObjectDef(keras.losses.SparseCategoricalCrossentropy, from_logits=True))")
        return out

    # -- compiled functions ----------------------------------------------------------------------
    def _fn(self, kind: str, *args: Any) -> Any:
        """The compiled function of ``kind`` for arguments shaped like ``args`` (traced once
        per shape of one sample: the batch dimension is left open)."""
        signature = _signature(args)
        key = (kind, repr(signature))
        fns = self.__dict__["_fns"]
        fn = fns.get(key)
        if fn is None:
            fn = fns[key] = _compile(self, kind, signature)
        return fn

    # -- state -----------------------------------------------------------------------------------
    def _variables(self) -> dict[str, Any]:
        weights = dict(named_variables(self.net, "net."))
        out = dict(weights)
        if self.optimizer is not None:
            out.update(named_optimizer_variables(self.optimizer, weights, "optimizer."))
        return out

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        """Every variable of the net (``net.<layer path>.<name>``) and of the optimizer
        (``optimizer.<weight path>.<slot>``, ``optimizer.iteration``) as NumPy arrays."""
        out = super().state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)
        for key, var in self._variables().items():
            out[prefix + key] = var.numpy()
        return out

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Restore :meth:`state_dict` output exactly (bitwise), all or nothing.

        Raises:
            StateDictError: missing, unexpected or mismatched keys, all listed; nothing was loaded.
        """
        variables = self._variables()
        mine = {k: v for k, v in state.items() if k.startswith(("net.", "optimizer."))}
        rest = {k: v for k, v in state.items() if k not in mine}
        check_arrays(type(self).__name__, variables, mine, strict)
        super().load_state_dict(rest, strict=strict)
        for key, value in mine.items():
            if key in variables:
                variables[key].assign(as_numpy(value))
        return None

    def __repr__(self) -> str:
        opt = type(self.optimizer).__name__ if self.optimizer is not None else None
        return f"KerasModel(net={type(self.net).__name__}, optimizer={opt}, id={self.dry_id[:8]})"


def _build(net: Any, input_shape: tuple[int, ...] | None) -> None:
    """Create the weights of a net without them: one inference call on a zero batch (as a
    subclassed model's weights exist only once it was called)."""
    if input_shape is None or not hasattr(net, "built") or (net.built and net.weights):
        return
    import numpy as np

    net(np.zeros((1, *input_shape), dtype="float32"), training=False)


def _listens(trainer: Any) -> bool:
    handlers = getattr(getattr(trainer, "callbacks", None), "handlers", None)
    return handlers is not None and any(handlers(t) for t in _GRADIENT_TRIGGERS)


def _split(batch: Any, step: str) -> tuple[Any, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        size = len(batch) if isinstance(batch, (tuple, list)) else type(batch).__qualname__
        raise TrainingError(
            f"KerasModel.{step} needs batches (inputs..., targets); received {size} part(s): override "
            f"KerasModel.{step} (or Trainer.train_step) for data without targets"
        )
    return _inputs(batch[:-1]), _tensor(batch[-1])


def _tensor(value: Any) -> Any:
    import tensorflow as tf

    return value if isinstance(value, tf.Tensor) else tf.convert_to_tensor(as_numpy(value))


def _inputs(inputs: tuple) -> Any:
    """One input as a tensor, several as a tuple of tensors (as Keras calls a model)."""
    if len(inputs) == 1:
        return _tensor(inputs[0])
    return tuple(_tensor(x) for x in inputs)


def _signature(args: tuple) -> Any:
    """``tf.TensorSpec``s of ``args`` with the batch dimension open (None)."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda t: tf.TensorSpec((None, *t.shape[1:]), t.dtype), args)


def _compile(model: KerasModel, kind: str, signature: Any) -> Any:
    """The ``tf.function`` of one kind of step for inputs of ``signature``."""
    import tensorflow as tf

    net, optimizer, loss_fn = model.net, model.optimizer, model.loss_fn

    def loss_of(targets: Any, outputs: Any) -> Any:
        loss = tf.reduce_mean(loss_fn(targets, outputs))
        if net.losses:  # regularization terms the layers added in this call
            loss = loss + tf.add_n(net.losses)
        return loss

    def train(inputs: Any, targets: Any) -> Any:
        with tf.GradientTape() as tape:
            outputs = net(inputs, training=True)
            loss = loss_of(targets, outputs)
        variables = net.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, outputs

    def grads(inputs: Any, targets: Any) -> Any:
        with tf.GradientTape() as tape:
            outputs = net(inputs, training=True)
            loss = loss_of(targets, outputs)
        return loss, tape.gradient(loss, net.trainable_variables), outputs

    def apply(gradients: Any) -> None:
        optimizer.apply_gradients(zip(gradients, net.trainable_variables))

    def evaluate(inputs: Any, targets: Any) -> Any:
        outputs = net(inputs, training=False)
        return loss_of(targets, outputs), outputs

    def forward(inputs: Any) -> Any:
        return net(inputs, training=False)

    fn = {"train": train, "grads": grads, "apply": apply, "eval": evaluate, "forward": forward}[kind]
    if kind == "apply":  # the gradients of the trainable variables, as they are
        signature = ([tf.TensorSpec(v.shape, v.dtype) for v in net.trainable_variables],)
    return tf.function(fn, input_signature=signature, jit_compile=model.jit_compile, autograph=False)


def _optimizer(spec: Any) -> Any:
    keras = _keras()
    if spec is None or isinstance(spec, keras.optimizers.Optimizer):
        return spec
    if isinstance(spec, ObjectDef):
        opt = spec.build()
    elif isinstance(spec, str):
        try:
            opt = keras.optimizers.get(spec)
        except ValueError as exc:
            raise ConfigError(f"unknown Keras optimizer {spec!r}; use a name such as 'adam' or ObjectDef(keras.optimizers.Adam, ...)") from exc
    else:
        raise ConfigError(
            f"optimizer must be ObjectDef(keras.optimizers.Adam, learning_rate=...), a Keras optimizer name "
            f"or a Keras optimizer; received {spec!r}"
        )
    if not isinstance(opt, keras.optimizers.Optimizer):
        raise ConfigError(f"optimizer {spec!r} made a {type(opt).__qualname__}, not a Keras optimizer")
    return opt


def _loss(spec: Any) -> Any:
    keras = _keras()
    if spec is None:
        return None
    if isinstance(spec, ObjectDef):
        spec = spec.build()
    elif isinstance(spec, str):
        try:
            spec = keras.losses.get(spec)
        except ValueError as exc:
            raise ConfigError(f"unknown Keras loss {spec!r}; use a name such as 'mse' or ObjectDef(keras.losses.MeanSquaredError)") from exc
    if not callable(spec):
        raise ConfigError(f"loss must be a Keras loss, its name, an ObjectDef of one or a function fn(targets, outputs); received {spec!r}")
    return spec

