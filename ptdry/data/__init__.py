"""Data: hand out batches of arrays, tensors or datasets in a reproducible order.

:class:`~ptdry.data.provider.DataProvider` holds the splits (train/val/test) and keeps the
data in its state; :class:`~ptdry.data.loader.Batches` iterates one split in an order that is
a pure function of ``(seed, epoch)``, so a resumed run sees exactly the remaining batches.
"""
