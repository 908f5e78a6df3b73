"""A Session's run when its database goes away: training never waits; a run that ends during
the outage is completed by ``ptdry sync``; a hung (SIGSTOPped) server hangs nothing.

Each test starts its own embedded server (its own ``$PTDRY_HOME``), so stopping it disturbs
no other test."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from ptdry import Checkpoint, DBInterface, Session
from ptdry.cli.main import main as cli
from ptdry.db.journal import RunJournal
from ptdry.db.repo import flat_summary
from ptdry.db.server import EmbeddedServer

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _session_job import make_session  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.server]
JOB = pathlib.Path(__file__).parent / "_session_job.py"


@pytest.fixture
def own_server(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PTDRY_HOME", str(home))
    server = EmbeddedServer(home)
    server.start()
    yield server, home
    pid = (server._read_state() or {}).get("pid")
    if pid:  # a test that failed while the server was stopped
        try:
            os.kill(int(pid), signal.SIGCONT)
        except ProcessLookupError:
            pass
    server.stop()


class At:
    """Runtime wiring (not in the stored definition): calls ``actions[step]()`` at that step."""

    def __init__(self, **actions):
        self.actions = {int(k[1:]): v for k, v in actions.items()}

    def on_step_end(self, step, **_):
        if step in self.actions:
            self.actions[step]()


def _artifact_files(home: pathlib.Path) -> set[str]:
    return {p.name for p in (home / "artifacts").glob("??/*") if p.is_file()}  # blobs, not reference markers


def test_a_run_that_ends_while_the_database_is_down_is_completed_by_ptdry_sync(own_server, capsys):
    server, home = own_server
    db = DBInterface(timeout=1.0)
    session = make_session(db, epochs=3, checkpoint=Checkpoint(every_n_steps=4, every_n_epochs=None, save_top_k=0, save_last=2))
    session.finish_timeout = 1.0
    session.trainer.add_callback(At(s3=server.stop))  # down from step 3 until after the run
    result = session.run()
    assert result.status == "completed" and "test.accuracy" in result.metrics
    assert (home / "journal" / f"{session.dry_id}.jsonl").exists()
    for _ in range(300):  # the writer's thread lets go of the journal once its last attempt fails
        if not RunJournal.is_live(home / "journal", session.dry_id):
            break
        time.sleep(0.1)

    server.start()
    stale = db.collection("modules").find_one({"_id": session.dry_id})
    assert stale["status"]["state"] == "running" and stale["summary"] == {}
    assert cli(["sync"]) == 0
    assert f"{session.dry_id}: " in capsys.readouterr().out
    doc = db.collection("modules").find_one({"_id": session.dry_id})
    assert doc["status"]["state"] == "completed"
    assert {"val.loss", "test.accuracy"} <= set(flat_summary(doc["summary"]))
    checkpoints = [a for a in doc["artifacts"] if a["name"].startswith("checkpoint/")]
    assert [a["meta"]["step"] for a in checkpoints] == [36, 40]  # retention kept the last 2 of 10
    assert db.collection("history").count_documents({"run": session.dry_id}) == len(session.trainer.history)
    assert _artifact_files(home) == {a["ref"] for a in doc["artifacts"]}  # removed checkpoints' files are gone
    assert not list((home / "journal").glob("*"))
    final = Session.load(session.dry_id, which=None, db=db)
    assert final.trainer.looper.finished and final.status.state == "completed"
    assert final.trainer.history.summary() == session.trainer.history.summary()


def test_a_hung_server_does_not_hang_the_run(own_server):
    server, home = own_server
    pid = int(server.status()["pid"])
    db = DBInterface(timeout=1.0)
    session = make_session(db, epochs=3)
    session.trainer.add_callback(At(s3=lambda: os.kill(pid, signal.SIGSTOP), s30=lambda: os.kill(pid, signal.SIGCONT)))
    result = session.run()
    assert result.status == "completed"
    doc = db.collection("modules").find_one({"_id": session.dry_id})
    assert doc["status"]["state"] == "completed"
    assert db.collection("history").count_documents({"run": session.dry_id}) == len(session.trainer.history)
    assert not list((home / "journal").glob("*.jsonl"))


def test_the_next_run_on_the_database_completes_a_run_left_behind(own_server):
    server, home = own_server
    env = {**os.environ, "PYTHONPATH": str(JOB.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cut_off = subprocess.run(
        [sys.executable, str(JOB), "-", "ptdry", "5", "stopdb"], capture_output=True, text=True, env=env, timeout=120
    )  # a process whose database goes away at step 5 for good
    assert cut_off.returncode == 0, cut_off.stderr
    run_id = cut_off.stdout.split()[0]
    server.start()
    db = DBInterface(timeout=1.0)
    assert db.collection("modules").find_one({"_id": run_id})["status"]["state"] == "running"
    make_session(db, epochs=1, name="next").run()  # its writer applies what the other process left
    doc = db.collection("modules").find_one({"_id": run_id})
    assert doc["status"]["state"] == "completed" and doc["summary"]
    assert not list((home / "journal").glob("*.jsonl"))
