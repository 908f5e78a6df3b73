"""Compute contexts: which framework may use which GPUs (or fractions of them) and how many
CPU threads, granted from a :class:`~ptdry.context.pool.ResourcePool` and applied either in
this process (:class:`~ptdry.context.manager.ContextManager`) or in a fresh subprocess
(:func:`~ptdry.context.spawn.compute_context`). See ``docs/contexts.md``.
"""
