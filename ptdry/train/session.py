"""Session: one experiment run, recorded in the database from start to end, resumable.

``Session(trainer=..., data=..., db=...).run()`` (or ``session()``) stores the whole tree as a
run document with status ``running``; from then on every database write of the run — the
heartbeat, the history, checkpoints and their retention, the run's end — goes through its
background writer and journal (:mod:`ptdry.db.run_writer`), so the loop never waits on the
database. It evaluates on the test split and ends the document as ``completed``,
``failed`` (with the error) or ``interrupted``, with the summary of every metric and the
final state; if the database is away then, ``ptdry sync`` (or the next ptdry process that
reaches it) completes the run. :meth:`Session.resume` continues a killed run from its last
checkpoint (or its initial state) bit for bit; :meth:`Session.load` gives any past run's
tree with a checkpoint loaded.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re
import signal
import threading
from typing import Any, Iterable, Mapping, Sequence

from ptdry.core.module import Module
from ptdry.core.properties import Float, Instance, Int, Str
from ptdry.core.status import utc_now
from ptdry.context.manager import ContextManager
from ptdry.context.request import ResourceRequest
from ptdry.data.provider import DataProvider, as_provider
from ptdry.db.history_store import RunHistoryStore
from ptdry.db.interface import DBInterface
from ptdry.db.journal import RunJournal
from ptdry.db.repo import Repo
from ptdry.db.run_ops import sync_journals
from ptdry.db.run_writer import RunWriter
from ptdry.db.uri import mask_uri
from ptdry.errors import ConfigError, NotReadyError, StateDictError, add_note
from ptdry.io.archive import state_to_bytes
from ptdry.train import distributed
from ptdry.train.run_lookup import find_run_id, plan_state, replacer
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


def _portable(exc: BaseException | None) -> BaseException | None:
    """``exc`` as the other ranks of a distributed job can receive it (pickled): itself, or a
    ConfigError with its message when it cannot be pickled."""
    if exc is None:
        return None
    try:
        copy = pickle.loads(pickle.dumps(exc))
    except Exception:
        copy = ConfigError(f"{type(exc).__name__}: {exc}")
    add_note(copy, "(raised by rank 0 of the distributed job; every rank stops)")
    return copy


class Terminated(KeyboardInterrupt):
    """SIGTERM during :meth:`Session.run` (a scheduler preempting the job): handled like
    Ctrl-C — ``on_exception`` callbacks run (a Checkpoint saves), the run ends
    ``interrupted`` with its history and final state stored, then the exception propagates."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"received signal {signum} (SIGTERM)")


class _Sigterm:
    """SIGTERM during a run (main thread only): raises :class:`Terminated` in the loop, and is
    held while the run's end is written (a scheduler's grace period is spent finishing the
    record, not cut short by the default action); a held signal is raised once that is done."""

    def __init__(self) -> None:
        self.installed = threading.current_thread() is threading.main_thread()
        self.previous: Any = None
        self.held = False

    def __enter__(self) -> "_Sigterm":
        if self.installed:
            self.previous = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def hold(self) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self._hold)

    def _hold(self, signum: int, frame: Any) -> None:
        self.held = True

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self.installed:  # None: a handler not installed from Python, restored as the default
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self.previous is None else self.previous)
        if self.held and exc is None:
            raise Terminated(f"received signal {signal.SIGTERM.value} (SIGTERM) while the run's end was written")


class _JournalAtCheckpoint:
    """Runtime wiring (not in the definition or the state): fsync queued history records to
    the journal whenever a checkpoint is saved (also to a storage of the callback's own)."""

    def __init__(self, writer: RunWriter) -> None:
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

    ``finish_timeout`` (a class attribute, 10 s) bounds how long the end of a run waits for
    a database that is away; what is not written by then stays in the run's journal.

    Under ``torchrun`` every process runs the same Session: they train together
    (DistributedDataParallel), rank 0 records the run (with its ``world_size`` and
    ``device``) and every process's :class:`RunResult` has its id (see
    ``docs/distributed.md``).

    Example:
        >>> result = session.run()          # doctest: +SKIP
        >>> result["test.accuracy"]          # doctest: +SKIP
    """

    trainer = Instance(Trainer, kind="a ptdry Trainer")
    data = Instance(DataProvider, kind="a DataProvider")
    name = Str(nonempty=True, allow_none=True)
    seed = Int()
    heartbeat_interval = Float(above=0.0)

    #: Seconds the end of a run waits for the database to take its last writes.
    finish_timeout: float = 10.0

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
        # The run's history is the trainer's: the summary and `ptdry runs` read it. Its records
        # stream to the `history` collection during the run and are read back on demand.
        self.__dict__["_dry_history"] = trainer.history

    @property
    def run_id(self) -> str:
        """The run's id in the database (the session's ``dry_id``)."""
        return self.dry_id

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train, evaluate on the test split, and record everything; returns the result.

        Nothing is written when the tree cannot train (no data, no optimizer...: a
        :class:`NotReadyError`) or when the run is live in another process (a
        :class:`ConfigError`): a stored run is left as it was. Then the run document is
        written (status ``running``); whatever happens, it ends ``completed``, ``failed``
        (the error is stored and re-raised) or ``interrupted``. With a ``context``, all of
        it happens inside that compute context. Under torchrun, rank 0 does all of this and
        the other ranks train with it, writing nothing.

        Raises:
            ContextError: the context's resources cannot be had.
        """
        if self.context is None:
            return self._run()
        with ContextManager(self.context):
            return self._run()

    def _run(self) -> RunResult:
        trainer = self.trainer
        trainer._check_ready(self.data)
        world = distributed.setup()
        if world is None or world.is_main:
            live = RunJournal.is_live(None, self.dry_id)
        if world is not None:  # every rank of a distributed job reports rank 0's run (and refusal)
            run_id, live = distributed.broadcast((self.dry_id, live if world.is_main else None))
            self.__dict__["_dry_id"] = run_id
        if live:
            raise ConfigError(f"run {self.dry_id} is running in another process on this machine; it cannot run here too")
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
            record = repo.add_object(self, name=self.name, tags=self.tags, history=False)
            writer = RunWriter(
                self.db,
                self.dry_id,
                project=repo.project,
                artifacts=repo._artifacts,
                start_seq=len(trainer.history),
                heartbeat=self._heartbeat,
                heartbeat_interval=self.heartbeat_interval,
            )
        except BaseException as exc:
            self.status.fail(exc)
            raise
        # A resumed run's records after its checkpoint are written again, from that point.
        writer.submit({"op": "truncate", "seq": len(trainer.history)})
        storage = RunStorage(repo, self.dry_id, writer=writer, artifacts=record.get("artifacts"))
        trainer.checkpoint_storage = storage
        self._attach_waiting_files(storage)
        store = trainer.history.store
        if not (isinstance(store, RunHistoryStore) and store.run == self.dry_id):
            store = RunHistoryStore(self.db, self.dry_id)
            trainer.history.use_store(store)
        store.attach(writer.write, len(trainer.history))
        self._wire(writer)
        with _Sigterm() as sigterm:
            try:
                metrics = self._train(resumed)
            finally:
                sigterm.hold()
                trainer.remove_callback("ptdry.session.journal")
                store.detach(len(trainer.history))
                self._finish(repo, writer, storage)
        return RunResult(self.dry_id, self.status.state, metrics, trainer.history.summary())

    def _train(self, resumed: bool) -> dict[str, float]:
        """Fit, then test when there is a test split, between the session callbacks; the
        status ends completed, interrupted (Ctrl-C, SIGTERM) or failed. Returns the metrics."""
        trainer = self.trainer
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
        self.status.complete(reason=trainer.status.reason)
        return metrics

    __call__ = run

    def _run_rank(self) -> RunResult:
        """A rank other than 0 of a distributed job: trains and evaluates with the others
        (its collectives), and writes nothing — rank 0 records the run. Its history keeps
        the summaries but no records while it trains; afterwards they are read from the
        database, where rank 0 stored them."""
        trainer = self.trainer
        history = trainer.history
        history.use_store(None)
        self.status.start()
        try:
            metrics = self._train(trainer.looper.started)
        finally:
            history.use_store(RunHistoryStore(self.db, self.dry_id, stored=len(history)))
        return RunResult(self.dry_id, self.status.state, metrics, history.summary())

    def _heartbeat(self) -> dict[str, Any]:
        """The heartbeat's fields (the writer sets them on the run document)."""
        self.status.beat()
        trainer = self.trainer
        return {"status.heartbeat": utc_now(), "status.step": trainer.step, "status.epoch": trainer.epoch}

    def _wire(self, writer: RunWriter) -> None:
        """Runtime callbacks of this run (not in its definition or state)."""
        for name in list(self.trainer.callbacks.names()):
            if name.startswith("ptdry.session."):
                self.trainer.remove_callback(name)
        self.trainer.add_callback(_JournalAtCheckpoint(writer), name="ptdry.session.journal")

    def _finish(self, repo: Repo, writer: RunWriter, storage: RunStorage) -> None:
        """Journal the run's end (documents with status and summary, the final state) and
        give the writer ``finish_timeout`` seconds to write it; what it cannot write stays in
        the journal for ``ptdry sync``. Never waits longer, whatever the database does."""
        try:
            contents = repo.object_contents(self)
            state = storage.put_local(state_to_bytes(self.state_dict()), "state")
            kept = any(m.get("reason") != "exception" for m in storage.list())
            end = {"contents": contents, "state": state, "name": self.name, "tags": self.tags, "keep_initial": not kept}
            writer.submit({"op": "finish", **end})
        finally:
            synced = writer.close(self.finish_timeout)
            # After the run, checkpoints saved by hand go to the database directly.
            self.trainer.checkpoint_storage = RunStorage(repo, self.dry_id)
        if not synced:
            log.error(
                "run %s ended as %s, but the database has not taken all of it yet (%s); `ptdry sync` "
                "completes it (status, summary, history, checkpoints) once the database is back",
                self.dry_id, self.status.state, writer.journal.path,
            )  # fmt: skip

    # -- files kept with the run ---------------------------------------------------------------------
    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
        """Keep the file at ``path`` (a plot, predictions, a report) with this run, as ``name``
        (default: the file's name; ``/`` makes folders). Logging a name again replaces the
        file. ``ptdry show ID`` lists the files and ``ptdry get ID NAME`` fetches one.

        The bytes go to the run's artifact store (files under ``$PTDRY_HOME`` for the
        embedded server, GridFS otherwise); called before :meth:`run`, the file is attached
        when the run document is written; during the run, it goes through the run's
        background writer like a checkpoint (the loop never waits on the database). Returns
        the record. Under torchrun, rank 0 stores the file; on other ranks this reads it and
        returns its record with ``"stored": False``.

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
        live = self.trainer.checkpoint_storage
        if isinstance(live, RunStorage) and live.run_id == self.dry_id and live.writer is not None:
            return live.put_file(name, data, meta)
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
        data: Any = None,
        replace: Mapping[str, Any] | None = None,
        strict: bool = True,
        trusted: bool = False,
        allowed: Iterable[Any] = (),
        device: str | None = None,
    ) -> "Session":
        """The tree of past run ``run_id`` with checkpoint ``which`` loaded into its trainer.

        Args:
            run_id: the run's id, or a unique prefix of it (as ``ptdry runs`` prints).
            which: ``"last"``, ``"best"``, ``"exception"``, a checkpoint name, or None for the
                state stored with the run (at its end; at its start if it never ended).
                ``"last"`` on a run without checkpoints gives that stored state.
            db: the database (default: the embedded one, or ``$PTDRY_DB_URI``).
            data: the data to use instead of the stored one, in any form
                :func:`~ptdry.data.provider.as_provider` takes (needed when a split wrapped a
                dataset object that ptdry could not store, e.g. a big torch ``Dataset``).
            replace: ``{"dotted.path": object}`` parts of the tree to replace before the
                stored state is loaded into it, e.g. ``{"trainer.looper": Looper(epochs=20)}``.
            strict: state keys must fit the tree exactly; False loads those that match.
            trusted, allowed: the stored tree may only name allowed classes and functions
                (ptdry and torch model classes, classes of modules you imported, what you
                registered with ``ptdry.allow``; see :mod:`ptdry.core.allowed`); pass
                ``allowed=[fn, ...]`` for more, or ``trusted=True`` if you trust the database.
            device: ``"cpu"``, ``"cuda:1"``, ... becomes the trainer's device and the model is
                moved there at once; None keeps the run's device for training and leaves the
                loaded model on the CPU until then. Checkpoints load on any device (a run
                trained on a GPU loads on a CPU machine).

        Raises:
            NotFoundError: no such run, or no such checkpoint (``which="best"`` when no best
                checkpoint was kept).
            MultipleFoundError: the id prefix matches several runs.
            StateDictError: the stored state does not fit the tree (see ``strict``).
            ConfigError: no such ``device`` here, or the model cannot be moved there.
        """
        return cls._open(run_id, which, db, data, replace, strict, trusted, allowed, device, resuming=False)

    @classmethod
    def resume(
        cls,
        run_id: str,
        db: DBInterface | str | None = None,
        which: str = "last",
        *,
        data: Any = None,
        replace: Mapping[str, Any] | None = None,
        strict: bool = True,
        trusted: bool = False,
        allowed: Iterable[Any] = (),
        device: str | None = None,
    ) -> RunResult:
        """Continue run ``run_id`` (e.g. killed mid-training) from its checkpoint ``which``
        — or, if it has none, from its initial state; the run keeps its id and its history
        continues without duplicates. The arguments are as for :meth:`load`.

        A resume that cannot start (the run is live elsewhere, data missing, a state that
        does not fit) raises before anything is written: the run stays as it was. Under
        torchrun every rank calls it and the job continues exactly where its checkpoint was.
        """
        return cls.prepare_resume(
            run_id, db, which, data=data, replace=replace, strict=strict, trusted=trusted, allowed=allowed, device=device
        ).run()

    @classmethod
    def prepare_resume(
        cls,
        run_id: str,
        db: DBInterface | str | None = None,
        which: str = "last",
        *,
        data: Any = None,
        replace: Mapping[str, Any] | None = None,
        strict: bool = True,
        trusted: bool = False,
        allowed: Iterable[Any] = (),
        device: str | None = None,
    ) -> "Session":
        """The Session :meth:`resume` runs, ready to continue run ``run_id`` — its checkpoint
        ``which`` loaded, or its initial state when it has none — without running it yet (a
        sweep worker adds its runtime callbacks first). The arguments are as for :meth:`load`.

        Raises:
            NotReadyError: the tree cannot train (e.g. data to pass again); nothing was written.
        """
        session = cls._open(run_id, which, db, data, replace, strict, trusted, allowed, device, resuming=True)
        try:
            session.trainer._check_ready(session.data)
        except NotReadyError as exc:
            add_note(exc, f"Session.resume(..., data=...) takes the data again; run {session.dry_id} is left as it was")
            raise
        return session

    @classmethod
    def _open(
        cls,
        run_id: str,
        which: str | None,
        db: Any,
        data: Any,
        replace: Any,
        strict: bool,
        trusted: bool,
        allowed: Any,
        device: str | None,
        *,
        resuming: bool,
    ) -> "Session":
        repo = Repo(db, trusted=trusted, allowed=allowed)
        run_id = cls._find_run(repo, run_id, resuming)
        doc = repo.modules.find_one({"_id": run_id}, {"artifacts": 1, "status": 1, "cls": 1})
        state, which = plan_state(doc, which, resuming)
        try:
            session = repo.get_obj_by_id(run_id, state=state, prepare=replacer(replace), strict=strict)
            if not isinstance(session, Session):
                raise ConfigError(f"{run_id!r} is a {type(session).__qualname__}, not a Session run")
            if data is not None:
                session.data = as_provider(data)
            if which is not None:
                session.trainer.load_checkpoint(RunStorage(repo, run_id), which, strict=strict)
        except StateDictError as exc:
            add_note(exc, f"Session.{'resume' if resuming else 'load'}(..., strict=False) loads the keys that match")
            raise
        # The run continues where it was found. (Its stored definition holds the URI with
        # the password masked, so a connection rebuilt from it could not log in.)
        session.db = repo.db
        history = session.trainer.history
        history.use_store(RunHistoryStore(repo.db, run_id, stored=len(history)))
        if device is not None:
            session.trainer.device = device
            session.trainer.model.to_device(device)
        return session

    @staticmethod
    def _find_run(repo: Repo, run_id: str, resuming: bool) -> str:
        """The full id of run ``run_id`` (a prefix), with what a killed or cut-off process of
        the run left in its journal written first.

        Only rank 0 of a distributed job touches the journals (the run's is rank 0's). A
        resume is every rank's (torchrun): there the others wait for rank 0's id, or its
        refusal, so that all load the checkpoint its sync made the latest."""
        world = distributed.setup() if resuming else distributed.current()
        if world is not None and not world.is_main:
            if not resuming:
                return find_run_id(repo, run_id)
            found, problem = distributed.broadcast(None)
            if problem is not None:
                raise problem
            return found
        found, problem = None, None
        try:
            found = find_run_id(repo, run_id)
            if resuming and RunJournal.is_live(None, found):
                raise ConfigError(f"run {found} is running in another process on this machine; it cannot be resumed while it runs")
            sync_journals(repo, runs=[found])
        except Exception as exc:
            problem = exc
            raise
        finally:
            if world is not None and resuming:
                distributed.broadcast((found, _portable(problem)))
        return found

    def __repr__(self) -> str:
        return f"Session({self.name or type(self).__name__!r}, run_id={self.dry_id!r}, status={self.status.state!r})"
