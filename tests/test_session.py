"""Session end to end: the run document, history in the database, failure status, DB outage,
SIGKILL + exact resume, loading a past run's checkpoint."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import torch

from ptdry import Callback, Checkpoint, DBInterface, Session
from ptdry.cli.main import main as cli
from ptdry.db.repo import flat_summary
from ptdry.db.server import EmbeddedServer

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _session_job import make_session  # noqa: E402

pytestmark = pytest.mark.slow
JOB = pathlib.Path(__file__).parent / "_session_job.py"


def _history(db: DBInterface, run_id: str) -> list[tuple]:
    docs = db.collection("history").find({"run": run_id}).sort("seq", 1)
    return [(d["seq"], d["phase"], d["step"], d["epoch"], d["metrics"]) for d in docs]


def test_a_session_records_its_run_from_start_to_end(any_db):
    session = make_session(any_db, epochs=2)
    result = session.run()
    assert result.status == "completed" and result.run_id == session.dry_id
    assert 0.2 < result["test.accuracy"] <= 1.0  # chance is 0.1; 2 short epochs
    doc = any_db.collection("modules").find_one({"_id": session.dry_id})
    assert doc["status"]["state"] == "completed" and doc["status"]["heartbeat"] is not None
    assert doc["name"] == "e2e" and doc["version"] == 1 and doc["parent"] is None
    assert doc["config"]["trainer"]["model"]["optimizer"]["lr"] == 3e-3
    assert {"val.loss", "train.loss", "test.accuracy"} <= set(flat_summary(doc["summary"]))
    assert doc["summary"]["val"]["accuracy"]["best"] >= doc["summary"]["val"]["accuracy"]["last"]
    history = _history(any_db, session.dry_id)
    assert len(history) == len(session.trainer.history) and [h[0] for h in history] == list(range(len(history)))
    names = [a["name"] for a in doc["artifacts"]]
    assert "state" in names and sum(n.startswith("checkpoint/") for n in names) == 2  # save_last=2


def test_a_finished_run_is_listed_by_ptdry_runs(db_name, capsys):
    uri = f"mongomock://{db_name}"
    db = DBInterface(uri)
    make_session(db, epochs=1).run()
    assert cli(["--db", uri, "runs", "--where", "status = completed and trainer.model.optimizer.lr < 1e-2"]) == 0
    out = capsys.readouterr().out
    assert "e2e" in out and "completed" in out


class Boom(Callback):
    def on_step_end(self, step, **_):
        if step == 6:
            raise RuntimeError("boom at step 6")


def test_a_failing_callback_fails_the_run_with_its_name_and_a_checkpoint(db_name):
    db = DBInterface(f"mongomock://{db_name}")
    session = make_session(db, epochs=2, callbacks=[Boom()])
    with pytest.raises(RuntimeError, match="boom at step 6") as info:
        session.run()
    assert "Boom" in " ".join(getattr(info.value, "__notes__", []))
    doc = db.collection("modules").find_one({"_id": session.dry_id})
    assert doc["status"]["state"] == "failed"
    assert doc["status"]["error"]["type"] == "RuntimeError" and "boom" in doc["status"]["error"]["message"]
    reasons = [a["meta"].get("reason") for a in doc["artifacts"] if a["name"].startswith("checkpoint/")]
    assert "exception" in reasons


def test_loading_the_best_checkpoint_of_a_past_run_is_one_call(db_name):
    db = DBInterface(f"mongomock://{db_name}")
    ckpt = Checkpoint(every_n_epochs=1, save_last=1, save_top_k=1, monitor="val.accuracy")
    session = make_session(db, epochs=3, checkpoint=ckpt)
    session.run()
    best = Session.load(session.dry_id, which="best", db=db)
    assert isinstance(best, Session) and best.dry_id == session.dry_id
    assert best.trainer.looper.epochs_done in (1, 2, 3)
    last = Session.load(session.dry_id, which="last", db=db)
    for a, b in zip(last.trainer.model.parameters(), session.trainer.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.server
def test_sigkill_and_resume_give_bitwise_identical_weights_and_history(server_uri, db_name):
    db = DBInterface(server_uri, database=db_name)
    env = {**os.environ, "PYTHONPATH": str(JOB.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    killed = subprocess.run(
        [sys.executable, str(JOB), server_uri, db_name, "23"], capture_output=True, text=True, env=env, timeout=120
    )
    assert killed.returncode == -9, killed.stderr
    run_id = killed.stdout.split()[0]
    doc = db.collection("modules").find_one({"_id": run_id})
    assert doc["status"]["state"] == "running"  # nobody could mark it: it shows as dead later

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the killed job: the thread count is part of exactness
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
    values = lambda h: [x[1:] for x in h]  # noqa: E731
    assert values(_history(db, run_id)) == values(_history(db, straight.dry_id))


@pytest.mark.server
def test_sigterm_ends_the_run_interrupted_with_a_checkpoint_and_it_resumes(server_uri, db_name):
    db = DBInterface(server_uri, database=db_name)
    env = {**os.environ, "PYTHONPATH": str(JOB.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, str(JOB), server_uri, db_name, "10", "SIGTERM"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode != 0 and "Terminated" in done.stderr
    run_id = done.stdout.split()[0]
    doc = db.collection("modules").find_one({"_id": run_id})
    assert doc["status"]["state"] == "interrupted"
    reasons = [a["meta"].get("reason") for a in doc["artifacts"] if a["name"].startswith("checkpoint/")]
    assert "exception" in reasons
    assert Session.resume(run_id, db=db).status == "completed"


@pytest.mark.server
def test_training_survives_a_database_outage_and_loses_no_history(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PTDRY_HOME", str(home))
    server = EmbeddedServer(home)
    server.start()

    class Outage:
        """Stops the server at step 3 and starts it again at step 30 (runtime wiring: added
        with add_callback, not part of the stored definition)."""

        def on_step_end(self, step, **_):
            if step == 3:
                server.stop()
            elif step == 30:
                server.start()

    try:
        db = DBInterface(timeout=1.0)
        session = make_session(db, epochs=3)
        session.trainer.add_callback(Outage())
        result = session.run()
        assert result.status == "completed"
        history = _history(db, session.dry_id)
        assert [h[0] for h in history] == list(range(len(session.trainer.history)))
        doc = db.collection("modules").find_one({"_id": session.dry_id})
        assert doc["status"]["state"] == "completed"
        assert not list((home / "journal").glob("*.jsonl"))  # everything reached the database
    finally:
        server.stop()


def test_a_database_down_at_the_start_fails_fast_and_trains_nothing():
    from ptdry import ServerUnavailableError

    session = make_session(DBInterface("mongodb://127.0.0.1:9/", timeout=0.5), epochs=1)
    with pytest.raises(ServerUnavailableError, match="127.0.0.1:9"):
        session.run()
    assert session.status.state == "failed" and session.trainer.looper.steps_done == 0


def test_a_run_on_a_server_with_credentials_stores_no_password_and_loads_back(db_name):
    db = DBInterface(f"mongomock://alice:secret@{db_name}")
    session = make_session(db, epochs=1)
    session.run()
    doc = db.collection("modules").find_one({"_id": session.dry_id})
    assert "secret" not in repr(doc) and "alice:***@" in repr(doc["definition"])
    loaded = Session.load(session.dry_id, db=db)
    assert loaded.db is db and loaded.trainer.looper.steps_done == 12  # the last checkpoint


def test_a_session_runs_inside_its_compute_context(db_name):
    from ptdry.context.manager import active_context
    from ptdry.errors import ContextError

    seen = []

    class Probe:
        def on_train_start(self, **_):
            seen.append(active_context().to_dict())

    db = DBInterface(f"mongomock://{db_name}")
    base = make_session(db, epochs=1)
    session = Session(base.trainer, base.data, db=db, context={"num_cpus": 1})
    session.trainer.add_callback(Probe())
    session.run()
    assert seen and seen[0]["num_cpus"] == 1
    assert active_context() is None  # left when the run ended
    assert Session.load(session.dry_id, which=None, db=db).context.to_dict() == {"num_cpus": 1}
    base = make_session(db, epochs=1)
    with pytest.raises(ContextError, match=r"cannot grant the resource request \{\"num_cpus\": 10000\}"):
        Session(base.trainer, base.data, db=db, context={"num_cpus": 10_000}).run()
