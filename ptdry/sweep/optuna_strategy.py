"""Optuna samplers and pruners driving a sweep whose trials live in ptdry's database.

No Optuna storage is shared between workers: whenever a worker needs Optuna — to *ask* the
point of the trial it just claimed, or to ask the pruner about the epoch its trial just
finished — it rebuilds an in-memory study from the trials in the database (their points,
values, per-epoch values and Optuna system attributes) with
``optuna.trial.create_trial`` + ``study.add_trial``, asks, and writes the answer back.
So any worker on any machine can ask, and the database stays the one coordinator.

Samplers and pruners are given as classes or ``ObjectDef(optuna.samplers.TPESampler,
seed=0)``, so that every worker builds the same one. A sampler's seed is derived per trial
number from the given seed (default: the sweep's), so rebuilding it never repeats a point
and a sweep run by one worker is reproducible.
"""

from __future__ import annotations

import logging
from typing import Any

from ptdry.core import serialize
from ptdry.core.objectdef import ObjectDef
from ptdry.errors import ConfigError
from ptdry.sweep.space import Categorical, Space

__all__ = ["OptunaStrategy", "optuna_classes", "optuna_recipe"]

log = logging.getLogger(__name__)

_STATES = {"completed": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL", "running": "RUNNING"}


def optuna_recipe(spec: Any, kind: str) -> ObjectDef | None:
    """``spec`` (an Optuna sampler/pruner class or an ObjectDef of one) as an ObjectDef, or
    None if it is not an Optuna object. ``kind`` is ``"sampler"`` or ``"pruner"``.

    Raises:
        ConfigError: ``spec`` is an Optuna instance (whose arguments cannot be recovered), or
            a class or definition of the wrong kind.
    """
    cls = spec.cls if isinstance(spec, ObjectDef) else spec
    module = getattr(cls if isinstance(cls, type) else type(cls), "__module__", "") or ""
    if not module.startswith("optuna"):
        return None
    import optuna

    base = optuna.samplers.BaseSampler if kind == "sampler" else optuna.pruners.BasePruner
    if not isinstance(cls, type):
        name = type(spec).__name__
        raise ConfigError(
            f"{kind} = {name}(...) instance: its constructor arguments cannot be recovered, so workers could not "
            f"build the same {kind}; pass ObjectDef(optuna.{kind}s.{name}, ...) with the same arguments "
            f"(e.g. ObjectDef(optuna.{kind}s.{name}, seed=0)) or the class itself"
        )
    if not issubclass(cls, base):
        raise ConfigError(f"{kind} must be an Optuna {kind} (a {base.__name__} subclass); received {cls.__qualname__}")
    return spec if isinstance(spec, ObjectDef) else ObjectDef(spec)


def optuna_classes() -> list[type]:
    """Optuna's own samplers and pruners: what a stored sweep may name without ``trusted``."""
    try:
        import optuna
    except ImportError:
        return []
    out = []
    for module, base in ((optuna.samplers, optuna.samplers.BaseSampler), (optuna.pruners, optuna.pruners.BasePruner)):
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and issubclass(obj, base):
                out.append(obj)
    return out


class OptunaStrategy:
    """Asks points and pruning decisions of Optuna from the trials stored so far.

    Args:
        space: the sweep's :class:`~ptdry.sweep.space.Space`.
        sampler: an ObjectDef of an Optuna sampler (None: pruning only).
        pruner: an ObjectDef of an Optuna pruner, or None.
        direction: ``"minimize"`` or ``"maximize"``.
        seed: the seed a sampler defined without one gets.
    """

    def __init__(
        self, space: Space, sampler: ObjectDef | None, pruner: ObjectDef | None, direction: str, seed: int
    ) -> None:
        self.space, self.sampler, self.pruner = space, sampler, pruner
        self.direction, self.seed = direction, seed

    def _study(self, docs: list[dict[str, Any]], number: int, *, with_params: bool) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = None
        if self.sampler is not None:
            sampler = self._sampler_for(number)
        pruner = self.pruner.build() if self.pruner is not None else optuna.pruners.NopPruner()
        study = optuna.create_study(direction=self.direction, sampler=sampler, pruner=pruner)
        dists = self.distributions() if with_params else {}
        for doc in docs:
            if doc["number"] == number or doc["state"] not in _STATES:
                continue
            internal = doc.get("internal")
            if with_params and internal is None:
                continue  # not asked through Optuna (yet)
            study.add_trial(self._frozen(doc, internal if with_params else {}, dists))
        return study

    def _sampler_for(self, number: int) -> Any:
        recipe = self.sampler
        if _takes_seed(recipe.cls):
            base = recipe.kwargs.get("seed", self.seed)
            if base is not None:  # a distinct, reproducible seed for each trial's rebuilt sampler
                recipe = recipe.replace({"seed": (int(base) * 1_000_003 + number) % 2**32})
        return recipe.build()

    def _frozen(self, doc: dict[str, Any], params: dict[str, Any], dists: dict[str, Any]) -> Any:
        from optuna.trial import TrialState, create_trial

        state = getattr(TrialState, _STATES[doc["state"]])
        value = doc.get("value") if state == TrialState.COMPLETE else None
        if state == TrialState.COMPLETE and value is None:
            state = TrialState.FAIL
        return create_trial(
            state=state,
            value=value,
            params=params,
            distributions={k: dists[k] for k in params},
            system_attrs=serialize.decode(doc.get("system_attrs") or {}),
            intermediate_values={int(k): v for k, v in (doc.get("intermediate") or {}).items()},
        )

    def distributions(self) -> dict[str, Any]:
        return {path: self.space.distribution(path).to_optuna() for path in self.space.entries}

    def ask(self, docs: list[dict[str, Any]], number: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """``(params, internal params, system attributes)`` of trial ``number``, asked of the
        sampler knowing every other trial in ``docs``."""
        study = self._study(docs, number, with_params=True)
        trial = study.ask(self.distributions())
        internal = dict(trial.params)
        params = {}
        for path, value in internal.items():
            dist = self.space.distribution(path)
            params[path] = dist.values[value] if isinstance(dist, Categorical) else value
        frozen = study.get_trials(deepcopy=False)[-1]
        return params, internal, dict(frozen.system_attrs)

    def should_prune(self, docs: list[dict[str, Any]], doc: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Whether the pruner stops trial ``doc`` (running, with its per-epoch values so far),
        and the system attributes the pruner set on it."""
        study = self._study(docs, doc["number"], with_params=False)
        study.add_trial(self._frozen({**doc, "state": "running"}, {}, {}))
        frozen = study.get_trials(deepcopy=False)[-1]
        prune = bool(study.pruner.prune(study, frozen))
        frozen = study.get_trials(deepcopy=False)[-1]
        return prune, dict(frozen.system_attrs)


def _takes_seed(cls: Any) -> bool:
    import inspect

    try:
        return "seed" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
