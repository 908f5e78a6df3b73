"""Small Keras networks for examples and tests, nameable in stored definitions."""

from __future__ import annotations

from typing import Any

from ptdry.errors import ConfigError

__all__ = ["keras_mlp"]


def keras_mlp(*sizes: int, dropout: float = 0.0, activation: str = "relu") -> Any:
    """A ``keras.Sequential`` multilayer perceptron giving logits, the Keras twin of
    :class:`ptdry.train.nets.MLP`: ``keras_mlp(64, 128, 10)`` is 64 → 128 → 10 with the
    activation (and dropout, when given) between the Dense layers.

    Example:
        >>> net = keras_mlp(64, 32, 10, dropout=0.1)
        >>> net.count_params()
        2410

    Raises:
        ConfigError: fewer than two sizes, or a size below 1.
    """
    if len(sizes) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ConfigError(f"keras_mlp needs two or more positive layer sizes (inputs, ..., outputs); received {sizes}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1); received {dropout!r}")
    import keras

    layers: list[Any] = [keras.Input((sizes[0],))]
    for i, n_out in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        layers.append(keras.layers.Dense(n_out, activation=None if last else activation))
        if dropout and not last:
            layers.append(keras.layers.Dropout(dropout))
    return keras.Sequential(layers)


keras_mlp._dry_allowed = True  # type: ignore[attr-defined]  # stored definitions may name it
