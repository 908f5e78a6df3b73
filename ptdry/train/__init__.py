"""Training: Model, Optimizer, Criterion, Looper, Trainer and the built-in callbacks.

The pieces compose into a tree of Modules (``Trainer → Model → net/optimizer/criterion``)
whose ``state_dict()`` holds everything needed to resume a run exactly. See
``docs/training.md``.
"""
