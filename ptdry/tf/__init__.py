"""Keras/TensorFlow models in ptdry: ``KerasModel`` (TensorFlow is imported when one is made)."""

from ptdry.tf.keras_model import KerasModel

__all__ = ["KerasModel"]
