"""Session.load / resume that always work: runs killed before their first checkpoint, data
passed again, short ids, ``strict=``, ``which="best"`` that never returns another checkpoint,
classes defined in a training script, and one trainer state format with or without a
Session."""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import subprocess
import sys

import pytest
import torch

from ptdry import (
    Callback,
    Checkpoint,
    ConfigError,
    Criterion,
    DataProvider,
    DBInterface,
    Looper,
    MemoryStorage,
    Model,
    MultipleFoundError,
    NotFoundError,
    NotReadyError,
    ObjectDef,
    Optimizer,
    Session,
    StateDictError,
    Terminated,
    TorchDataset,
    UntrustedArchiveError,
)
from ptdry.db.history_store import RunHistoryStore
from ptdry.db.repo import Repo
from ptdry.train.run_storage import RunStorage

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _session_job import make_session, splits  # noqa: E402

pytestmark = pytest.mark.slow
JOB = pathlib.Path(__file__).parent / "_session_job.py"


def _history(db: DBInterface, run_id: str) -> list[tuple]:
    docs = db.collection("history").find({"run": run_id}).sort("seq", 1)
    return [(d["phase"], d["step"], d["epoch"], d["metrics"]) for d in docs]


def _mock(db_name: str) -> DBInterface:
    return DBInterface(f"mongomock://{db_name}")


@pytest.mark.server
def test_a_run_killed_before_its_first_checkpoint_resumes_from_its_initial_state_bitwise(server_uri, db_name):
    db = DBInterface(server_uri, database=db_name)
    env = {**os.environ, "PYTHONPATH": str(JOB.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    killed = subprocess.run(
        [sys.executable, str(JOB), server_uri, db_name, "2"], capture_output=True, text=True, env=env, timeout=120
    )  # checkpoints come every 4 steps: none was taken
    assert killed.returncode == -9, killed.stderr
    run_id = killed.stdout.split()[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the killed job
    try:
        resumed = Session.resume(run_id, db=db)
        straight = make_session(db, name="straight")
        straight.run()
    finally:
        torch.set_num_threads(threads)
    assert resumed.status == "completed"
    again = Session.load(run_id, which=None, db=db)
    for (name, a), b in zip(again.trainer.model.net.named_parameters(), straight.trainer.model.net.parameters()):
        assert torch.equal(a, b), name
    assert _history(db, run_id) == _history(db, straight.dry_id)


def test_a_finished_run_without_checkpoints_keeps_its_initial_state_to_restart_from(db_name):
    db = _mock(db_name)
    session = make_session(db, epochs=1, checkpoint=Checkpoint(every_n_epochs=None))  # saves on exception only
    session.run()
    doc = db.collection("modules").find_one({"_id": session.dry_id})
    assert sorted(a["name"] for a in doc["artifacts"]) == ["state", "state/initial"]
    restarted = Session.resume(session.dry_id, db=db)
    assert restarted.status == "completed" and restarted.summary == session.trainer.history.summary()


class _Preempt(Callback):
    def on_step_end(self, step, **_):
        if step == 5:
            raise Terminated("preempted at step 5")


def _dataset_session(db, *, preempt=False):
    parts = splits()
    x, y = parts["train"]
    train = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
    session = make_session(db, epochs=2)
    session.data = DataProvider(train=TorchDataset(train, store_limit=0), val=parts["val"])  # not kept in the state
    if preempt:
        session.trainer.add_callback(_Preempt())
    return session


def test_a_run_on_a_torch_dataset_resumes_with_its_data_passed_again(db_name):
    db = _mock(db_name)
    session = _dataset_session(db, preempt=True)
    with pytest.raises(Terminated):
        session.run()
    with pytest.raises(NotReadyError, match="wrapped a dataset object .* that ptdry could not store; pass that dataset again") as info:
        Session.resume(session.dry_id, db=db)
    assert "Session.resume(..., data=...) takes the data again" in " ".join(info.value.__notes__)
    doc = db.collection("modules").find_one({"_id": session.dry_id})
    assert doc["status"]["state"] == "interrupted"  # the failed attempt left the run as it was
    result = Session.resume(session.dry_id, db=db, data=_dataset_session(db).data)
    assert result.status == "completed"
    assert Session.load(session.dry_id, None, db=db, data=_dataset_session(db).data).trainer.looper.epochs_done == 2


def test_resume_can_replace_a_part_of_the_tree_and_keeps_its_state(db_name):
    db = _mock(db_name)
    session = make_session(db, epochs=1)
    session.run()
    result = Session.resume(session.dry_id, db=db, replace={"trainer.looper": Looper(epochs=2, batch_size=32)})
    loaded = Session.load(session.dry_id, which=None, db=db)
    assert result.status == "completed" and loaded.trainer.looper.epochs_done == 2 and loaded.trainer.looper.epochs == 2
    with pytest.raises(ConfigError, match=r"replace: 'trainer.nope' is not a part of the stored tree \(trainer has \["):
        Session.load(session.dry_id, db=db, replace={"trainer.nope": 1})


def test_which_best_never_returns_another_checkpoint(db_name):
    db = _mock(db_name)
    session = make_session(db, epochs=2, checkpoint=Checkpoint(save_top_k=0))  # keeps the latest only
    session.run()
    with pytest.raises(NotFoundError, match=r"no best checkpoint was kept .*Train with Checkpoint\(monitor='val.loss'\)"):
        Session.load(session.dry_id, which="best", db=db)
    ckpt = Checkpoint(save_top_k=1, monitor="val.nope")
    blind = make_session(db, epochs=1, checkpoint=ckpt)
    blind.run()
    with pytest.raises(NotFoundError, match="no checkpoint recorded a finite value of val.nope"):
        Session.load(blind.dry_id, which="best", db=db)


def test_which_best_loads_the_best_the_default_checkpoint_keeps(db_name):
    db = _mock(db_name)
    session = make_session(db, epochs=3, checkpoint=Checkpoint())  # the latest and the best by val.loss
    session.run()
    kept = RunStorage(Repo(db), session.dry_id).list()
    best = min(kept, key=lambda m: m["value"])
    loaded = Session.load(session.dry_id, which="best", db=db)
    assert loaded.trainer.looper.epochs_done == best["epoch"]


def test_load_takes_the_short_ids_ptdry_runs_prints(db_name):
    db = _mock(db_name)
    session = make_session(db, epochs=1)
    session.run()
    assert Session.load(session.dry_id[:8], db=db).dry_id == session.dry_id
    db.collection("modules").insert_many([{"_id": f"zz-{v}", "parent": None, "name": "zz", "version": v} for v in (1, 2)])
    with pytest.raises(MultipleFoundError, match=r"run id prefix 'zz' matches several runs \(zz-1, zz-2\); give more"):
        Session.load("zz", db=db)
    with pytest.raises(NotFoundError, match="no run 'nope' in .*: no run's id is or starts with it"):
        Session.resume("nope", db=db)


class Counter(Callback):
    """Counts epochs; its ``version`` 2 adds a state key (code changed between runs)."""

    version = 1

    def __init__(self):
        self.epochs = 0

    def on_epoch_end(self, **_):
        self.epochs += 1

    def extra_state(self):
        return {"epochs": self.epochs, **({"best": 0.0} if Counter.version == 2 else {})}

    def load_extra_state(self, state):
        self.epochs = state["epochs"]


def test_a_state_that_no_longer_fits_loads_with_strict_false(db_name, monkeypatch):
    db = _mock(db_name)
    session = make_session(db, epochs=2, callbacks=[Counter()])
    session.run()
    monkeypatch.setattr(Counter, "version", 2)
    with pytest.raises(StateDictError, match="missing keys .*callbacks.Counter.best") as info:
        Session.load(session.dry_id, db=db)
    assert "Session.load(..., strict=False) loads the keys that match" in " ".join(info.value.__notes__)
    loaded = Session.load(session.dry_id, db=db, strict=False)  # the last checkpoint: step 28, before epoch 2 ended
    assert loaded.trainer.callbacks["Counter"].epochs == 1 and loaded.trainer.looper.steps_done == 28


def test_a_class_of_the_training_script_is_warned_about_and_its_load_error_says_what_to_do(db_name, caplog, monkeypatch):
    import __main__

    class ScriptNet(torch.nn.Module):  # what `python train.py` defines: module __main__
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x)

    ScriptNet.__module__, ScriptNet.__qualname__ = "__main__", "ScriptNet"
    monkeypatch.setattr(__main__, "ScriptNet", ScriptNet, raising=False)
    db = _mock(db_name)
    session = make_session(db, epochs=1)
    optimizer, criterion = Optimizer(torch.optim.Adam, lr=3e-3), Criterion(torch.nn.CrossEntropyLoss)
    session.trainer.model = Model(ObjectDef(ScriptNet), optimizer, criterion)
    with caplog.at_level(logging.WARNING):
        session.run()
    assert "ScriptNet defined in the running script (as '__main__:ScriptNet')" in caplog.text
    assert "Move ScriptNet into a module you import" in caplog.text
    monkeypatch.delattr(__main__, "ScriptNet")  # another script: its __main__ has no ScriptNet
    with pytest.raises(UntrustedArchiveError, match=r"ScriptNet was defined in the script that stored .* Move ScriptNet into a"):
        Session.load(session.dry_id, db=db)


def test_a_trainer_state_has_the_same_keys_with_or_without_a_session(db_name):
    session = make_session(_mock(db_name), epochs=1)
    bare = make_session(_mock(db_name + "b"), epochs=1).trainer
    bare.checkpoint_storage = MemoryStorage()
    session.run()
    data = DataProvider(**splits())
    bare.fit(data, seed=0)
    bare.evaluate(data)  # as the Session does
    keys = set(session.trainer.state_dict())
    assert keys == set(bare.state_dict())
    assert {"history.length", "history.summaries"} <= keys and not any(k in keys for k in ("history", "history_len"))
    assert session.trainer.state_dict()["history.summaries"] == bare.state_dict()["history.summaries"]


def test_a_session_history_is_streamed_and_read_back_on_demand(db_name):
    db = _mock(db_name)
    session = make_session(db, epochs=2)
    session.run()
    history = session.trainer.history
    assert isinstance(history.store, RunHistoryStore) and len(history.recent()) <= 100
    assert [(s.name, s.step, s.epoch, dict(s.values)) for s in history] == _history(db, session.dry_id)
    loaded = Session.load(session.dry_id, which=None, db=db).trainer.history
    assert loaded.series("val.loss") == history.series("val.loss") and loaded.summary() == history.summary()
    evaluated = session.trainer.evaluate(session.data, "val")  # after the run: kept in memory after the stored ones
    assert history.last("val.loss") == evaluated["loss"] == history.records[-1]["val.loss"]
    assert len(history.records) == len(history) == len(_history(db, session.dry_id)) + 1



class _SigtermWhileFinishing(Session):
    """A scheduler's SIGTERM arriving just as the run's end is being written."""

    def _finish(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        super()._finish(*args, **kwargs)


def test_a_sigterm_while_the_runs_end_is_written_waits_for_the_record_then_is_raised(db_name):
    db = _mock(db_name)
    session = make_session(db, epochs=1)
    session.__class__ = _SigtermWhileFinishing
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated, match="while the run's end was written"):
        session.run()
    assert signal.getsignal(signal.SIGTERM) is before
    doc = db.collection("modules").find_one({"_id": session.dry_id})
    assert doc["status"]["state"] == "completed" and doc["summary"]  # the record was finished first
    assert "state" in {a["name"] for a in doc["artifacts"]}
