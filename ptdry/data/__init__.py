"""Data: datasets of any framework, loaders that resume at any batch, readers, partitions.

- :class:`~ptdry.data.dataset.Dataset` and its vocabulary (``batch``, ``map``, ``shuffle``,
  ``numpy()``/``torch()``/``tf()`` …); sources :class:`~ptdry.data.numpy_dataset.NumpyDataset`,
  :class:`~ptdry.data.torch_dataset.TorchDataset`, :class:`~ptdry.data.tf_dataset.TFDataset`.
- :mod:`~ptdry.data.samplers` and :class:`~ptdry.data.loader.DataLoader`: batches of rows in
  an order that depends only on ``(seed, epoch)``; the position is part of the state.
- :class:`~ptdry.data.reader.DataReader`: files as datasets that a stored tree reads again.
- :class:`~ptdry.data.provider.DataProvider`: train/val/test splits, given or partitioned.

Nothing here imports torch or TensorFlow until a value of theirs is in hand.
"""
