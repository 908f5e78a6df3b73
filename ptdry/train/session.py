"""Session: one experiment run, recorded in the database from start to end, resumable.

``Session(trainer=..., data=..., db=...).run()`` (or ``session()``) stores the whole tree as a
run document with status ``running``, keeps a heartbeat on it, streams the history to the
``history`` collection from a background writer (the loop never waits on the database),
stores checkpoints as artifacts of the run, evaluates on the test split, and ends the
document as ``completed``, ``failed`` (with the error) or ``interrupted``, with the summary
of every metric. :meth:`Session.resume` continues a killed run from its last checkpoint
bit for bit; :meth:`Session.load` gives any past run's tree with a checkpoint loaded.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import threading
from typing import Any, Iterable, Sequence

from ptdry.core.module import Module
from ptdry.core.properties import Float, Instance, Int, Str
from ptdry.core.status import utc_now
from ptdry.context.manager import ContextManager
from ptdry.context.request import ResourceRequest
from ptdry.data.provider import DataProvider, as_provider
from ptdry.db.history_writer import HistoryWriter, read_history, sync_journals
from ptdry.db.interface import DBInterface, db_down_errors
from ptdry.db.repo import Repo
from ptdry.db.uri import mask_uri
from ptdry.errors import ConfigError, NotFoundError
from ptdry.train import distributed
from ptdry.train.callbacks.metric_logger import MetricLogger
from ptdry.train.run_storage import RunStorage
from ptdry.train.trainer import Trainer

__all__ = ["RunResult", "Session", "Terminated"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunResult:
    """What :meth:`Session.run` returns: the run's id and status, the final metrics
    (``"test.accuracy"``, ``"val.loss"``, …) and the summary stored with the run."""

    run_id: str
    status: str
    metrics: dict[str, float]
    summary: dict[str, dict[str, Any]]

    def __getitem__(self, metric: str) -> float:
        return self.metrics[metric]


_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+-]*(/[A-Za-z0-9_][A-Za-z0-9_.=+-]*)*\Z")


def _file_name(path: Any, name: str | None) -> str:
    name = os.path.basename(os.fspath(path)) if name is None else name
    if not isinstance(name, str) or not _FILE_NAME.match(name) or ".." in name.split("/"):
        raise ConfigError(
            f"a run's file name must be relative, of letters, digits and . _ - = + with / between folders "
            f"(like plots/loss.png); received {name!r}"
        )
    return name


class _Heartbeat(threading.Thread):
    """Sets ``status.heartbeat`` (and the loop position) on the run document every few seconds."""

    def __init__(self, session: "Session", repo: Repo, interval: float) -> None:
        super().__init__(name=f"ptdry-heartbeat-{session.dry_id[:8]}", daemon=True)
        self.session, self.repo, self.interval = session, repo, interval
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            trainer = self.session.trainer
            self.session.status.beat()
            try:
                self.repo.modules.update_one(
                    {"_id": self.session.dry_id},
                    {"$set": {"status.heartbeat": utc_now(), "status.step": trainer.step, "status.epoch": trainer.epoch}},
                )
            except db_down_errors() as exc:
                log.debug("heartbeat not written (%s)", type(exc).__name__)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


class Terminated(KeyboardInterrupt):
    """SIGTERM during :meth:`Session.run` (a scheduler preempting the job): handled like
    Ctrl-C — ``on_exception`` callbacks run (a Checkpoint saves), the run ends
    ``interrupted`` with its history and final state stored, then the exception propagates."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"received signal {signum} (SIGTERM)")


def _interrupt_on_sigterm() -> Any:
    """Install the SIGTERM handler (main thread only); returns the previous one."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


class _JournalAtCheckpoint:
    """Runtime wiring (not in the definition or the state): fsync queued history records to
    the journal whenever a checkpoint is saved."""

    def __init__(self, writer: HistoryWriter) -> None:
        self.writer = writer

    def on_checkpoint_save(self, **_: Any) -> None:
        self.writer.journal_now()


class Session(Module):
    """An experiment: a Trainer, its data and the database the run is recorded in.

    Args:
        trainer: the :class:`Trainer` (model, looper, callbacks).
        data: the DataProvider (train / val / test splits), or what
            :func:`~ptdry.data.provider.as_provider` makes one of: a dict of splits, or a
            Dataset, DataLoader, arrays ``(X, y)``, torch or TensorFlow dataset as the train split.
        db: a :class:`DBInterface` or a URI; None: the embedded default.
        name: the run's name (versions count per name); default: the class name.
        seed: seeds Python, NumPy and torch and fixes the data order.
        project: recorded on the run; queries can be scoped to it.
        tags: strings stored with the run.
        heartbeat_interval: seconds between heartbeats on the run document.
        context: a resource request (``{"torch": {"gpu/0": 0.5}}``, ``{"num_cpus": 2}``; see
            ``docs/contexts.md``): the whole run happens inside ``ContextManager(context)``,
            which borrows those resources and applies their limits. None: no context.

    Under ``torchrun`` every process runs the same Session: they train together
    (DistributedDataParallel), rank 0 records the run (with its ``world_size``) and every
    process's :class:`RunResult` has its id (see ``docs/distributed.md``).

    Example:
        >>> result = session.run()          # doctest: +SKIP
        >>> result["test.accuracy"]          # doctest: +SKIP
    """

    trainer = Instance(Trainer, kind="a ptdry Trainer")
    data = Instance(DataProvider, kind="a DataProvider")
    name = Str(nonempty=True, allow_none=True)
    seed = Int()
    heartbeat_interval = Float(above=0.0)

    def __init__(
        self,
        trainer: Trainer,
        data: Any,
        db: DBInterface | str | None = None,
        name: str | None = None,
        seed: int = 0,
        project: str | None = None,
        tags: Sequence[str] = (),
        heartbeat_interval: float = 5.0,
        context: Any = None,
    ) -> None:
        self.trainer = trainer
        self.data = as_provider(data)
        if self.data is not data:  # the definition records the provider made of it
            self._record_argument("data", self.data)
        self.db = db if isinstance(db, DBInterface) else DBInterface(db)
        if isinstance(db, str):  # the definition (stored with the run) never holds a password
            self._record_argument("db", mask_uri(db))
        self.name = name
        self.seed = seed
        self.project = project
        self.tags = [tags] if isinstance(tags, str) else list(tags)
        self.heartbeat_interval = heartbeat_interval
        self.context = None if context is None else ResourceRequest.parse(context)
        # The run's history is the trainer's: the summary and `ptdry runs` read it. It lives
        # in the `history` collection, not in every checkpoint (runs may log millions of
        # points): states record only its length, and load() reads it back.
        self.__dict__["_dry_history"] = trainer.history
        trainer.history_in_state = False

    @property
    def run_id(self) -> str:
        """The run's id in the database (the session's ``dry_id``)."""
        return self.dry_id

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train, evaluate on the test split, and record everything; returns the result.

        The run document is written first (status ``running``); whatever happens, it ends
        ``completed``, ``failed`` (the error is stored and re-raised) or ``interrupted``.
        With a ``context``, all of it happens inside that compute context.

        Raises:
            ContextError: the context's resources cannot be had.
        """
        if self.context is None:
            return self._run()
        with ContextManager(self.context):
            return self._run()

    def _run(self) -> RunResult:
        trainer = self.trainer
        world = distributed.setup()
        if world is not None:  # every rank of a distributed job reports rank 0's run
            self.__dict__["_dry_id"] = distributed.broadcast(self.dry_id)
        trainer.setup()
        if world is not None and not world.is_main:
            return self._run_rank()
        self.__dict__.setdefault("_dry_document", {}).update(
            world_size=1 if world is None else world.size, device=trainer.model.device_name
        )
        repo = Repo(self.db, project=self.project)
        resumed = trainer.looper.started
        self.status.start()
        try:  # the run document first: a database that is down at the start fails fast
            repo.add_object(self, name=self.name, tags=self.tags, history=False)
        except BaseException as exc:
            self.status.fail(exc)
            raise
        storage = RunStorage(repo, self.dry_id)
        trainer.checkpoint_storage = storage
        self._attach_waiting_files(storage)
        writer = HistoryWriter(lambda: repo.db.collection("history"), self.dry_id, start_seq=len(trainer.history))
        logger = self._attach_logger(writer)
        heartbeat = _Heartbeat(self, repo, self.heartbeat_interval)
        heartbeat.start()
        previous_sigterm = _interrupt_on_sigterm()
        try:
            trainer.callbacks.call("on_session_start", trainer=trainer, session=self, resumed=resumed)
            metrics = trainer.fit(self.data, seed=self.seed)
            if self.data.has("test"):
                metrics.update({f"test.{k}": v for k, v in trainer.evaluate(self.data, "test").items()})
            trainer.callbacks.call("on_session_end", trainer=trainer, session=self, metrics=metrics)
        except KeyboardInterrupt:
            self.status.interrupt()
            raise
        except BaseException as exc:
            self.status.fail(exc)
            raise
        else:
            self.status.complete(reason=trainer.status.reason)
        finally:
            _restore_sigterm(previous_sigterm)
            heartbeat.stop()
            synced = writer.close()
            storage.flush()
            trainer.remove_callback(logger)
            trainer.remove_callback("ptdry.session.journal")
            self._finish(repo, synced)
        return RunResult(self.dry_id, self.status.state, metrics, trainer.history.summary())

    __call__ = run

    def _run_rank(self) -> RunResult:
        """A rank other than 0 of a distributed job: trains and evaluates with the others
        (its collectives), and writes nothing — rank 0 records the run."""
        trainer = self.trainer
        self.status.start()
        try:
            trainer.callbacks.call("on_session_start", trainer=trainer, session=self, resumed=trainer.looper.started)
            metrics = trainer.fit(self.data, seed=self.seed)
            if self.data.has("test"):
                metrics.update({f"test.{k}": v for k, v in trainer.evaluate(self.data, "test").items()})
            trainer.callbacks.call("on_session_end", trainer=trainer, session=self, metrics=metrics)
        except KeyboardInterrupt:
            self.status.interrupt()
            raise
        except BaseException as exc:
            self.status.fail(exc)
            raise
        self.status.complete(reason=trainer.status.reason)
        return RunResult(self.dry_id, self.status.state, metrics, trainer.history.summary())

    def _attach_logger(self, writer: HistoryWriter) -> MetricLogger:
        """History → database (MetricLogger), and the journal made durable at each checkpoint,
        so a run killed after a checkpoint has that checkpoint's history on disk."""
        for name in list(self.trainer.callbacks.names()):
            if name.startswith("ptdry.session."):
                self.trainer.remove_callback(name)
        self.trainer.add_callback(_JournalAtCheckpoint(writer), name="ptdry.session.journal")
        return self.trainer.add_callback(MetricLogger(sink=writer), name="ptdry.session.MetricLogger")

    def _finish(self, repo: Repo, synced: bool) -> None:
        """Write the final document (status, summary, final state); never raises for a
        database outage — the run's history is then in the journal for ``ptdry sync``."""
        try:
            repo.add_object(self, name=self.name, tags=self.tags, history=False)
            if not synced:
                repo.modules.update_one({"_id": self.dry_id}, {"$set": {"history_pending": True}})
        except db_down_errors() as exc:
            log.error(
                "run %s finished as %s but the database is unreachable (%s); its history is in the "
                "journal (`ptdry sync`) and its last checkpoint in the local store",
                self.dry_id, self.status.state, type(exc).__name__,
            )  # fmt: skip

    # -- files kept with the run ---------------------------------------------------------------------
    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
        """Keep the file at ``path`` (a plot, predictions, a report) with this run, as ``name``
        (default: the file's name; ``/`` makes folders). Logging a name again replaces the
        file. ``ptdry show ID`` lists the files and ``ptdry get ID NAME`` fetches one.

        The bytes go to the run's artifact store (files under ``$PTDRY_HOME`` for the
        embedded server, GridFS otherwise); called before :meth:`run`, the file is attached
        when the run document is written. Returns the stored record.

        Raises:
            ConfigError: ``name`` is not a relative name like ``plots/loss.png``.
            FileNotFoundError: no file at ``path``.
        """
        name = _file_name(path, name)
        with open(path, "rb") as f:
            data = f.read()
        meta = {"source": os.path.abspath(path), "t": utc_now()}
        world = distributed.current() or distributed.environment()
        if world is not None and not world.is_main:  # rank 0 records the run's files
            return {"name": f"file/{name}", "bytes": len(data), "meta": meta, "rank": world.rank, "stored": False}
        repo = Repo(self.db, project=self.project)
        if repo.modules.find_one({"_id": self.dry_id}, {"_id": 1}) is None:
            self.__dict__.setdefault("_waiting_files", {})[name] = (data, meta)
            return {"name": f"file/{name}", "bytes": len(data), "meta": meta, "waiting": True}
        return RunStorage(repo, self.dry_id).put_file(name, data, meta)

    def _attach_waiting_files(self, storage: RunStorage) -> None:
        for name, (data, meta) in self.__dict__.pop("_waiting_files", {}).items():
            storage.put_file(name, data, meta)

    # -- resuming and loading ----------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        run_id: str,
        which: str | None = "last",
        db: DBInterface | str | None = None,
        *,
        trusted: bool = False,
        allowed: Iterable[Any] = (),
        device: str | None = None,
    ) -> "Session":
        """The tree of past run ``run_id`` with checkpoint ``which`` (``"last"``, ``"best"``, a
        name, or None for the state stored at the end of the run) loaded into its trainer.

        The stored tree may only name allowed classes and functions (ptdry and torch model
        classes, classes of modules you imported, what you registered with ``ptdry.allow``;
        see :mod:`ptdry.core.allowed`); pass ``allowed=[fn, ...]`` for more, or
        ``trusted=True`` if you trust the database.

        Checkpoints load on any device (a run trained on a GPU loads on a CPU machine).
        ``device`` (``"cpu"``, ``"cuda:1"``, ...) becomes the trainer's device and the model
        is moved there at once; None keeps the run's device for training and leaves the
        loaded model on the CPU until then."""
        repo = Repo(db, trusted=trusted, allowed=allowed)
        if repo.modules.find_one({"_id": run_id}, {"_id": 1}) is None:
            raise NotFoundError(f"no run {run_id!r} in {repo.db!r}; see `ptdry runs`")
        session = repo.get_obj_by_id(run_id)
        if not isinstance(session, Session):
            raise ConfigError(f"{run_id!r} is a {type(session).__qualname__}, not a Session run")
        # The run continues where it was found. (Its stored definition holds the URI with
        # the password masked, so a connection rebuilt from it could not log in.)
        session.db = repo.db
        if which is not None:
            storage = RunStorage(repo, run_id)
            session.trainer.load_checkpoint(storage, which)
        session._restore_history(repo)
        if device is not None:
            session.trainer.device = device
            session.trainer.model.to_device(device)
        return session

    def _restore_history(self, repo: Repo) -> None:
        """Read back the history records the loaded state had (journaled ones first)."""
        count = self.trainer.__dict__.get("_history_len")
        if count is None:
            return
        coll = repo.db.collection("history")
        world = distributed.environment()
        if world is None or world.is_main:  # (only rank 0 writes to the database)
            sync_journals(coll, runs=[self.dry_id])
        records = read_history(coll, self.dry_id, count)
        if len(records) != count:
            log.warning(
                "run %s: %d of its first %d history records are in the database; the history "
                "continues from there", self.dry_id, len(records), count,
            )  # fmt: skip
        self.trainer.history.records[:] = records

    @classmethod
    def resume(
        cls,
        run_id: str,
        db: DBInterface | str | None = None,
        which: str = "last",
        *,
        trusted: bool = False,
        allowed: Iterable[Any] = (),
        device: str | None = None,
    ) -> RunResult:
        """Continue run ``run_id`` (e.g. killed mid-training) from its checkpoint ``which``;
        the run keeps its id, and its history continues without duplicates. ``trusted``,
        ``allowed`` and ``device`` are as for :meth:`load`. Under torchrun every rank calls
        it and the job continues exactly where its last checkpoint was."""
        session = cls.load(run_id, which=which, db=db, trusted=trusted, allowed=allowed, device=device)
        return session.run()

    def __repr__(self) -> str:
        return f"Session({self.name or type(self).__name__!r}, run_id={self.dry_id!r}, status={self.status.state!r})"
