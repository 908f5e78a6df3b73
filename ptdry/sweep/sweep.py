"""Sweep: a Session definition plus a search space over its paths, run as stored trials.

A sweep is a Module stored in ``modules`` like any other (its definition holds the session's
definition, the space and the strategy; its state holds the session's data). Saving it
writes one document per trial to the ``trials`` collection; workers — ``sweep.run(workers=4)``
in local processes, or ``ptdry worker NAME`` on any machine — claim them from the database
and run each as a normal Session run, linked back to the sweep (``links.sweep`` on the run:
``ptdry runs --where "sweep = NAME"``).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from ptdry.core.allowed import ImportPolicy
from ptdry.core.classpath import class_path
from ptdry.core.dataref import DataRef
from ptdry.core.history import metric_mode
from ptdry.core.module import Module
from ptdry.core.objectdef import ObjectDef, iter_defs
from ptdry.core.properties import Choice, Int, Str
from ptdry.db.interface import DBInterface
from ptdry.db.repo import Record, Repo
from ptdry.db.selector import Selector
from ptdry.errors import ConfigError, NotFoundError
from ptdry.sweep.optuna_strategy import OptunaStrategy, optuna_classes, optuna_recipe
from ptdry.sweep.space import Space
from ptdry.sweep.trials import Trial, TrialStore
from ptdry.train.session import Session

__all__ = ["Sweep"]

log = logging.getLogger(__name__)

STRATEGIES = ("grid", "random")


class Sweep(Module):
    """Trials of one Session definition over a search space, coordinated through the database.

    Args:
        session: the :class:`Session` to vary (its data travel with the sweep), or an
            ``ObjectDef`` of one whose definition builds its own data.
        space: dotted paths of the session's definition mapped to a list or ``range`` of
            values, or to ``uniform``/``loguniform``/``randint``/``choice(...)``.
        strategy: ``"grid"`` (every combination, the first path varying slowest),
            ``"random"`` (``trials`` points sampled with ``seed``), or an Optuna sampler as a
            class or ``ObjectDef(optuna.samplers.TPESampler, seed=0)`` (needs ``ptdry[sweep]``).
        trials: how many trials; a grid's default is all its points (fewer: the first ones).
        monitor: the metric whose value in the run's summary is the trial's value.
        mode: ``"min"`` or ``"max"``; default from the metric's name (accuracy: max, loss: min).
        value: ``"best"`` (the run's best value of ``monitor``, as its best checkpoint keeps)
            or ``"last"``.
        pruner: an Optuna pruner (class or ``ObjectDef``) that stops unpromising trials from
            their per-epoch values of ``monitor``; the run ends early, the trial ``pruned``.
        seed: seeds the random strategy, and Optuna samplers defined without a seed.
        name: the sweep's name (``ptdry worker NAME``, ``--where "sweep = NAME"``); default:
            the session's name followed by ``-sweep``.
        db: where the sweep and its trials' runs are stored; default: the session's database.
        project: recorded on the sweep.

    Raises:
        ConfigError: a path of ``space`` is not in the session's definition (the message
            lists what is there), a grid has a continuous distribution, ``trials`` is
            missing or larger than the grid, or an argument is of the wrong kind.

    Example:
        >>> sweep = Sweep(session, {"trainer.model.optimizer.lr": [1e-3, 1e-2], "seed": range(2)},
        ...               monitor="val.accuracy")                  # doctest: +SKIP
        >>> sweep.run(workers=2)                                   # doctest: +SKIP
        >>> sweep.best().params                                    # doctest: +SKIP
    """

    monitor = Str(nonempty=True)
    mode = Choice(["min", "max"], allow_none=True)
    value = Choice(["best", "last"])
    n_trials = Int(min=1, allow_none=True)
    seed = Int()
    name = Str(nonempty=True, allow_none=True)

    def __init__(
        self,
        session: Any,
        space: Mapping[str, Any],
        strategy: Any = "grid",
        trials: int | None = None,
        monitor: str = "val.loss",
        *,
        mode: str | None = None,
        value: str = "best",
        pruner: Any = None,
        seed: int = 0,
        name: str | None = None,
        db: DBInterface | str | None = None,
        project: str | None = None,
    ) -> None:
        definition, data, session_db = _session_parts(session)
        self.session_def = definition
        self.__dict__["_data"] = data
        self.__dict__["_policy"] = ImportPolicy.of(False, named_callables(definition))
        self.space = Space(space)
        self._record_argument("session", definition)
        self._record_argument("space", self.space.recorded())
        self.monitor, self.mode, self.value, self.n_trials, self.seed = monitor, mode, value, trials, seed
        self.name = name if name is not None else f"{definition.kwargs.get('name') or 'session'}-sweep"
        self.project = project
        self.strategy, self.sampler = _strategy(strategy)
        self.pruner = None if pruner is None else optuna_recipe(pruner, "pruner")
        if pruner is not None and self.pruner is None:
            raise ConfigError(f"pruner must be an Optuna pruner class or ObjectDef of one; received {pruner!r}")
        if db is None:
            db = session_db if session_db is not None else DBInterface()
        self.db = db if isinstance(db, DBInterface) else DBInterface(db)
        definition.replace(self.space.example())  # every path exists (else the error names it)
        if self.strategy == "grid":
            size = self.space.grid_size()
            if size is None:
                self.space.grid()  # raises, naming the continuous path
            if trials is not None and trials > size:
                raise ConfigError(f"trials={trials} but the grid has {size} points; leave trials=None to run them all")
        elif trials is None:
            raise ConfigError(f"strategy {self.strategy!r} needs trials=N (how many points to try)")

    # -- the search ------------------------------------------------------------------------
    @property
    def direction(self) -> str:
        """``"minimize"`` or ``"maximize"`` (from ``mode``, else the monitored metric's name)."""
        return "maximize" if (self.mode or metric_mode(self.monitor)) == "max" else "minimize"

    def points(self) -> list[dict[str, Any] | None]:
        """Each trial's point in the space, in trial order (None: asked of Optuna when claimed)."""
        if self.strategy == "grid":
            points = self.space.grid()
            return points[: self.n_trials] if self.n_trials is not None else points
        if self.strategy == "random":
            return self.space.random(self.n_trials, self.seed)
        return [None] * self.n_trials

    def optuna(self) -> OptunaStrategy | None:
        """What asks Optuna's sampler and pruner, if the sweep uses either."""
        if self.sampler is None and self.pruner is None:
            return None
        return OptunaStrategy(self.space, self.sampler, self.pruner, self.direction, self.seed)

    def trial_session(self, params: Mapping[str, Any]) -> Session:
        """A new Session (fresh ids) of the definition with ``params`` set, holding the
        sweep's data and recording its run in the sweep's database."""
        session = self.session_def.replace(dict(params)).build()
        modules = dict(session.named_modules())
        for path, base in self.__dict__["_data"]:
            target = modules.get(path)
            if type(target) is not type(base):
                raise ConfigError(
                    f"the trial's session has no {type(base).__name__} at {path!r} to load the sweep's data into"
                )
            target.load_state_dict(base.state_dict())
        session.db = self.db
        return session

    # -- storing and running ----------------------------------------------------------------
    @property
    def store(self) -> TrialStore:
        """The sweep's trials in its database."""
        store = self.__dict__.get("_store")
        if store is None or store.db is not self.db:
            store = self.__dict__["_store"] = TrialStore(self.db, self.dry_id)
        return store

    def save(self) -> "Sweep":
        """Store the sweep and its pending trials (again: nothing new), so that workers
        anywhere can run them: ``ptdry worker NAME --db URI``. Returns the sweep."""
        repo = Repo(self.db, project=self.project)
        repo.add_object(self, name=self.name, history=False)
        for field in ("links.sweep.id", "links.sweep.name"):  # a sweep's runs are found by these
            repo.modules.create_index([(field, 1)], name=field.replace(".", "_"))
        self.store.create(self.points())
        return self

    def run(self, workers: int = 1, *, heartbeat_interval: float = 5.0, stale_after: float = 60.0) -> list[Trial]:
        """Save the sweep and run its trials until none is pending or running; returns them.

        ``workers=1`` runs the trials in this process; more start that many local processes
        (spawned, each with its share of the CPU threads), sharing the database with any
        ``ptdry worker`` elsewhere. A trial whose worker stops beating for ``stale_after``
        seconds is re-queued and its run resumed from its last checkpoint.
        """
        from ptdry.sweep.local import run_local
        from ptdry.sweep.worker import Worker

        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1; received {workers!r}")
        self.save()
        self._set_status("start")
        try:
            if workers == 1:
                Worker(self, heartbeat_interval=heartbeat_interval, stale_after=stale_after).run()
            else:
                run_local(self, workers, heartbeat_interval=heartbeat_interval, stale_after=stale_after)
        except BaseException as exc:
            self._set_status("interrupt" if isinstance(exc, KeyboardInterrupt) else "fail", exc)
            raise
        self._set_status("complete")
        return self.trials()

    __call__ = run

    def _set_status(self, change: str, exc: BaseException | None = None) -> None:
        getattr(self.status, change)(*([exc] if change == "fail" else []))
        Repo(self.db).modules.update_one({"_id": self.dry_id}, {"$set": {"status": self.status.to_document()}})

    # -- results ---------------------------------------------------------------------------
    def trials(self) -> list[Trial]:
        """Every trial, by number."""
        policy = self.__dict__["_policy"]
        return [Trial.from_document(d, policy) for d in self.store.documents()]

    def counts(self) -> dict[str, int]:
        """How many trials are in each state (``pending``, ``running``, ``completed``, …)."""
        return self.store.counts()

    def best(self) -> Trial:
        """The completed trial with the best value (lowest or highest, by ``mode``);
        ``Session.load(sweep.best().run_id)`` gives its run.

        Raises:
            NotFoundError: no trial has completed with a value yet.
        """
        done = [t for t in self.trials() if t.state == "completed" and t.value is not None]
        if not done:
            raise NotFoundError(f"sweep {self.name!r} has no completed trial yet; trials by state: {self.counts()}")
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda t: t.value)

    def selector(self) -> Selector:
        """Selects the runs of this sweep's trials (combine it: ``sweep.selector() & Selector(...)``)."""
        return Selector(Session) & {"links.sweep.id": self.dry_id}

    def runs(self, selector: Any = None) -> list[Record]:
        """Records of the trials' runs (optionally narrowed by a Selector or filter)."""
        sel = self.selector() if selector is None else self.selector() & selector
        return Repo(self.db).find(sel, sort=[("links.sweep.trial", 1)])

    @classmethod
    def load(
        cls, sweep: str, db: DBInterface | str | None = None, *, trusted: bool = False, allowed: Iterable[Any] = ()
    ) -> "Sweep":
        """The stored sweep named ``sweep`` (its latest version) or with that id (or id prefix).

        Its definition may name ptdry's and torch's classes, classes of modules already
        imported, Optuna's samplers and pruners, and what ``allowed`` lists or ``ptdry.allow``
        registered; ``trusted=True`` lifts that (see :mod:`ptdry.core.allowed`).

        Raises:
            NotFoundError: no stored sweep has that name or id; the message lists some.
        """
        repo = Repo(db, trusted=trusted, allowed=allowed)
        doc = find_sweep(repo, sweep)
        kwargs = doc["definition"].get("kwargs", {})
        if "optuna" in repr([kwargs.get("strategy"), kwargs.get("pruner")]):  # (import Optuna only then)
            allowed = [*allowed, *optuna_classes()]
            repo = Repo(repo.db, trusted=trusted, allowed=allowed)
        obj = repo.get_obj_by_id(doc["_id"])
        obj.db = repo.db
        obj.__dict__["_policy"] = ImportPolicy.of(trusted, [*allowed, *obj.callables()])
        return obj

    def callables(self) -> list[Any]:
        """Every class and function the session's definition names: what a process loading
        the sweep, or resuming one of its runs, must allow."""
        return named_callables(self.session_def)

    # -- state: the session's data ------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        out = {}
        for path, module in self.__dict__["_data"]:
            out.update({f"data.{path}.{k}": v for k, v in module.state_dict().items()})
        return out

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for path, module in self.__dict__["_data"]:
            prefix = f"data.{path}."
            module.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})

    def __repr__(self) -> str:
        return f"Sweep({self.name!r}, strategy={self.strategy!r}, monitor={self.monitor!r}, id={self.dry_id!r})"


def find_sweep(repo: Repo, sweep: str) -> dict[str, Any]:
    """The document of the sweep named ``sweep`` (latest version) or with that id (prefix)."""
    import re

    if not isinstance(sweep, str) or not sweep:
        raise ConfigError(f"a sweep is given by its name or id; received {sweep!r}")
    is_sweep = {"mro": class_path(Sweep)}
    docs = list(repo.modules.find({**is_sweep, "$or": [{"_id": sweep}, {"name": sweep}]}).sort("version", -1).limit(1))
    if not docs and re.fullmatch(r"[0-9a-f-]+", sweep):
        docs = list(repo.modules.find({**is_sweep, "_id": {"$regex": f"^{re.escape(sweep)}"}}).limit(2))
        if len(docs) > 1:
            raise ConfigError(f"sweep id prefix {sweep!r} is ambiguous; give more characters")
    if not docs:
        names = sorted({d["name"] for d in repo.modules.find(is_sweep, {"name": 1}).limit(50)})
        raise NotFoundError(
            f"no sweep named {sweep!r} (or with that id) in {repo.db!r}; stored sweeps: {names or 'none'}"
        )
    return docs[0]


def _session_parts(session: Any) -> tuple[ObjectDef, list[tuple[str, Module]], DBInterface | None]:
    """The session's definition without ids, its data modules ``[(path, module)]`` and its db."""
    if isinstance(session, Session):
        data = [
            (path, m)
            for path, m in session.named_modules()
            if isinstance(m, Module) and getattr(type(m), "dry_data_args", ())
        ]
        return session.definition().without_ids(), data, session.db
    if isinstance(session, ObjectDef) and isinstance(session.cls, type) and issubclass(session.cls, Session):
        for d in iter_defs(session):
            for key, value in d.kwargs.items():
                if isinstance(value, DataRef):
                    raise ConfigError(
                        f"the definition's {getattr(d.cls, '__name__', d.cls)}.{key} holds only a fingerprint "
                        "of its data; pass the Session itself (Sweep(session, ...)) so that the sweep stores its data"
                    )
        return session.without_ids(), [], None
    raise ConfigError(
        f"Sweep needs a Session (or an ObjectDef of one) to vary; received {type(session).__qualname__}"
    )


def _strategy(strategy: Any) -> tuple[str, ObjectDef | None]:
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be 'grid', 'random' or an Optuna sampler; received {strategy!r}")
        return strategy, None
    recipe = optuna_recipe(strategy, "sampler")
    if recipe is None:
        raise ConfigError(
            "strategy must be 'grid', 'random' or an Optuna sampler (a class, or "
            f"ObjectDef(optuna.samplers.TPESampler, seed=0)); received {strategy!r}"
        )
    return "optuna", recipe


def named_callables(definition: ObjectDef) -> list[Any]:
    """Every class and function a definition names (what loading it needs to allow)."""
    found: dict[int, Any] = {}

    def visit(value: Any) -> None:
        if isinstance(value, ObjectDef):
            return
        if isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
            found[id(value)] = value

    for d in iter_defs(definition):
        found[id(d.cls)] = d.cls
        visit(list(d.args))
        visit(d.kwargs)
    return list(found.values())
