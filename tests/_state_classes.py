"""Importable Modules for tests/test_state_override.py (definitions refer to them by path)."""

from __future__ import annotations

import numpy as np
import torch

from ptdry.core.module import Module
from ptdry.train.trainer import Trainer


class Array(Module):
    """The issue's example: state completely specified by the user."""

    def __init__(self, shape=(32, 32)):
        self.data = np.zeros(shape)

    def state_dict(self):
        s = super().state_dict()
        s["data"] = self.data
        return s

    def load_state_dict(self, state, strict=True):
        state = dict(state)
        self.data = np.asarray(state.pop("data"))
        super().load_state_dict(state, strict=strict)


class Counted(Module):
    """State through the extra_state hooks."""

    def __init__(self):
        self.n = 0
        self.log: list[str] = []

    def extra_state(self):
        return {"n": self.n, "log": list(self.log)}

    def load_extra_state(self, state):
        self.n, self.log = state["n"], list(state["log"])


class Grid(Module):
    """A parent with an overriding child, an extra-state child, and an override of its own."""

    def __init__(self, size=4):
        self.cells = Array(shape=(size,))
        self.counted = Counted()
        self.level = 1

    def state_dict(self):
        s = super().state_dict()
        s["level"] = self.level
        return s

    def load_state_dict(self, state, strict=True):
        state = dict(state)
        self.level = state.pop("level")
        return super().load_state_dict(state, strict=strict)


class Flag(Module):
    def __init__(self):
        self.broken = False

    def extra_state(self):
        return {"broken": self.broken}

    def load_extra_state(self, state):
        self.broken = state["broken"]

    def problems(self):
        return super().problems() + (["broken"] if self.broken else [])


class Hybrid(Module, torch.nn.Module):
    """A Module that is also a torch module, with a plain Module child and an override."""

    def __init__(self, size=3):
        self.lin = torch.nn.Linear(size, size)
        self.counter = Flag()
        self.scale = 2.0

    def forward(self, x):
        return self.lin(x) * self.scale

    def state_dict(self):
        s = super().state_dict()
        s["scale"] = self.scale
        return s

    def load_state_dict(self, state, strict=True):
        state = dict(state)
        self.scale = float(state.pop("scale"))
        return super().load_state_dict(state, strict=strict)


class Holder(Module):
    def __init__(self, model=None):
        self.model = model


class Net(Module):
    """A torch net and its optimizer, sized by ``hidden``."""

    def __init__(self, inputs=4, hidden=3, extra=False):
        layers = [torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)]
        if extra:
            layers.append(torch.nn.Linear(2, 2))
        self.body = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.body.parameters(), lr=0.1)


class TrainerWithArray(Trainer):
    """A Trainer whose subclass adds a child with an overridden state_dict."""

    def __init__(self, model, looper=None, *, progress_bar=None):
        super().__init__(model, looper, progress_bar=progress_bar)
        self.memo = Array(shape=(3,))
