"""What a KerasModel does with a Trainer's settings (a mixin of :class:`~ptdry.tf.keras_model.KerasModel`).

- ``device``: ``"auto"`` leaves placement to TensorFlow (its first GPU when it has one);
  ``"cpu"`` and ``"cuda"`` / ``"cuda:N"`` run every step under ``tf.device("/CPU:0")`` /
  ``tf.device("/GPU:N")``. TensorFlow has no ``"mps"`` device (with tensorflow-metal the
  Apple GPU is its ``GPU:0``: use ``"auto"``).
- ``grad_clip_norm`` / ``grad_clip_value``: applied to the gradients inside the compiled
  step (``tf.clip_by_global_norm`` / ``tf.clip_by_value``).
- ``precision`` other than ``"32"``, ``accumulate_grad_batches > 1``, ``compile=True`` and
  distributed jobs are refused with what to use instead: Keras's mixed-precision policy
  (set before the net is built), the optimizer's ``gradient_accumulation_steps``,
  ``KerasModel(jit_compile=True)``, ``tf.distribute``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ptdry.errors import ConfigError
from ptdry.train.settings import TrainingSettings

__all__ = ["KerasTraining"]

_REFUSED = {
    "precision": "build the net under keras.mixed_precision.set_global_policy('mixed_bfloat16') instead "
    "(Keras layers take their dtype policy when they are made)",
    "accumulate_grad_batches": "give the Keras optimizer gradient_accumulation_steps=N instead",
    "compile": "use KerasModel(..., jit_compile=True) (XLA) instead",
    "world": "torch.distributed (torchrun) trains torch models; use tf.distribute for Keras",
}


def tf_device(spec: str) -> str | None:
    """TensorFlow's name of the device ``spec`` names (None for ``"auto"``).

    Raises:
        ConfigError: ``"mps"``, or a GPU TensorFlow does not see.
    """
    if spec == "auto":
        return None
    if spec == "cpu":
        return "/CPU:0"
    if spec == "mps":
        raise ConfigError(
            "device='mps' is torch's name for the Apple GPU; TensorFlow has no such device (with tensorflow-metal "
            "the Apple GPU is TensorFlow's GPU:0): use device='auto'"
        )
    import tensorflow as tf

    index = int(spec.partition(":")[2] or 0)
    gpus = tf.config.list_logical_devices("GPU")
    if index >= len(gpus):
        raise ConfigError(f"device={spec!r} but TensorFlow sees {len(gpus)} GPU(s); use device='auto' or 'cpu'")
    return f"/GPU:{index}"


class KerasTraining:
    """Device and gradient clipping of a KerasModel; everything else is refused by name."""

    def setup_training(self, settings: TrainingSettings) -> None:
        """Run the steps on ``settings.device`` and clip gradients as asked.

        Raises:
            ConfigError: a setting Keras models do not take from the Trainer (the message
                says what to use instead).
        """
        asked = settings.requested()
        refused = [f"{k}={asked[k]!r}: {hint}" for k, hint in _REFUSED.items() if k in asked]
        if refused:
            raise ConfigError(f"{type(self).__name__} cannot train with " + "; ".join(refused))
        device = tf_device(settings.device)
        clip = (settings.grad_clip_norm, settings.grad_clip_value)
        d = self.__dict__
        if (device, clip) != (d.get("_dry_tf_device"), d.get("_dry_clip", (None, None))):
            d["_dry_tf_device"], d["_dry_clip"] = device, clip
            d["_fns"] = {}  # compiled again: clipping is part of the step

    def to_device(self, device: str) -> None:
        """Run the steps on ``device`` from now on (see :func:`tf_device`).

        Raises:
            ConfigError: no such device for TensorFlow.
        """
        self.__dict__["_dry_tf_device"] = tf_device(device)

    @property
    def device_name(self) -> str:
        device = self.__dict__.get("_dry_tf_device")
        if device is None:
            import tensorflow as tf

            return "cuda:0" if tf.config.list_logical_devices("GPU") else "cpu"
        return "cpu" if device == "/CPU:0" else "cuda:" + device.rpartition(":")[2]

    def _device_scope(self) -> Any:
        device = self.__dict__.get("_dry_tf_device")
        if device is None:
            return contextlib.nullcontext()
        import tensorflow as tf

        return tf.device(device)


def clipped(gradients: Any, clip: tuple[float | None, float | None]) -> Any:
    """``gradients`` clipped by global norm or by value (inside a ``tf.function``)."""
    import tensorflow as tf

    norm, value = clip
    if norm is not None:
        return tf.clip_by_global_norm(gradients, norm)[0]
    if value is not None:
        return [None if g is None else tf.clip_by_value(g, -value, value) for g in gradients]
    return gradients
