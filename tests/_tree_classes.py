"""Module classes importable by name, for tests that rebuild definitions in a subprocess.

A three-level tree: ``Experiment`` → ``Trainer`` (an ``MLP`` network that is both a ptdry
Module and a ``torch.nn.Module``, plus an Adam optimizer built from an ``ObjectDef`` recipe)
and ``Blobs`` (a small data Module keeping its arrays in state).
"""

from __future__ import annotations

import numpy as np
import torch

from ptdry import Module, ObjectDef


class MLP(Module, torch.nn.Module):
    """A two-layer perceptron; a ptdry Module that is a torch network."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, dropout: float = 0.0):
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_in, n_hidden),
            torch.nn.Tanh(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(n_hidden, n_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Blobs(Module):
    """Gaussian blobs made from a seed; the arrays live in state, not in the definition."""

    def __init__(self, n: int = 32, n_features: int = 4, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, n_features)).astype(np.float32)
        self.y = (self.x.sum(axis=1, keepdims=True) > 0).astype(np.float32)

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.x), torch.from_numpy(self.y)

    def extra_state(self) -> dict:
        return {"x": self.x, "y": self.y}

    def load_extra_state(self, state: dict) -> None:
        self.x = state.get("x", self.x)
        self.y = state.get("y", self.y)


class Trainer(Module):
    """Holds a network and builds its optimizer from a recipe over the network's parameters."""

    def __init__(self, net: MLP, optimizer: ObjectDef = ObjectDef(torch.optim.Adam, lr=1e-2)):
        self.net = net
        self.optimizer = optimizer.cls(net.parameters(), *optimizer.args, **optimizer.kwargs)
        self.steps = 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(self.net(x), y)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        return loss.item()

    def extra_state(self) -> dict:
        return {"steps": self.steps}

    def load_extra_state(self, state: dict) -> None:
        self.steps = state.get("steps", self.steps)


class Experiment(Module):
    """The root: runs training steps of ``trainer`` on ``data``."""

    def __init__(self, trainer: Trainer, data: Blobs, name: str = "exp", tags: tuple = ()):
        self.trainer = trainer
        self.data = data

    def __call__(self, steps: int = 1) -> float:
        loss = float("nan")
        for _ in range(steps):
            loss = self.trainer(*self.data())
        return loss


def make_tree(seed: int = 0) -> Experiment:
    """A fresh tree with deterministic initial weights."""
    torch.manual_seed(seed)
    net = MLP(4, 8, 1, dropout=0.0)
    trainer = Trainer(net, optimizer=ObjectDef(torch.optim.Adam, lr=0.05, betas=(0.8, 0.99)))
    return Experiment(trainer, Blobs(n=16, seed=seed), name="subprocess-check", tags=("a", "b"))


class Leaf(Module):
    """Hyperparameters of several kinds, for category-hash checks across processes."""

    def __init__(self, rate: float = 0.1, size: int = 3, names: tuple = ("a", "b"), extra: dict | None = None):
        pass


class Pair(Module):
    def __init__(self, left: Module, right: Module):
        self.left, self.right = left, right
