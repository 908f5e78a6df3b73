"""Keras runs end to end: a KerasModel trained by the Trainer inside a Session, stored, loaded,
and SIGKILLed then resumed to bitwise-identical weights (real TensorFlow)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from ptdry import Checkpoint, DBInterface, KerasModel, Session
from ptdry.db.repo import flat_summary

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _session_job import make_session as make_torch_session  # noqa: E402
from _tf_session_job import make_session  # noqa: E402

pytestmark = pytest.mark.slow
JOB = pathlib.Path(__file__).parent / "_tf_session_job.py"


def _history(db: DBInterface, run_id: str) -> list[tuple]:
    docs = db.collection("history").find({"run": run_id}).sort("seq", 1)
    return [(d["phase"], d["step"], d["epoch"], d["metrics"]) for d in docs]


def test_a_keras_session_is_stored_like_a_torch_one_and_loads_back(db_name):
    db = DBInterface(f"mongomock://{db_name}")
    ckpt = Checkpoint(every_n_epochs=1, save_last=1, save_top_k=1, monitor="val.accuracy")
    session = make_session(db, epochs=2, checkpoint=ckpt)
    result = session.run()
    assert result.status == "completed" and 0.3 < result["test.accuracy"] <= 1.0  # chance is 0.1
    torch_run = make_torch_session(db, epochs=1)
    torch_run.run()
    docs = {d["_id"]: d for d in db.collection("modules").find({"_id": {"$in": [session.dry_id, torch_run.dry_id]}})}
    keras_doc, torch_doc = docs[session.dry_id], docs[torch_run.dry_id]
    assert set(flat_summary(keras_doc["summary"])) >= set(flat_summary(torch_doc["summary"]))
    assert "train.accuracy" in flat_summary(keras_doc["summary"])  # KerasModel(metrics=["accuracy"])
    assert keras_doc["config"]["trainer"]["model"]["optimizer"]["learning_rate"] == 3e-3
    phases = {h[0] for h in _history(db, session.dry_id)}
    assert phases == {h[0] for h in _history(db, torch_run.dry_id)} == {"step", "train", "val", "test"}

    loaded = Session.load(session.dry_id, which="last", db=db)
    model = loaded.trainer.model
    assert isinstance(model, KerasModel) and loaded.trainer.looper.epochs_done == 2
    for key, value in session.trainer.model.state_dict().items():
        assert np.array_equal(model.state_dict()[key], value), key
    best = Session.load(session.dry_id, which="best", db=db)
    assert best.trainer.looper.epochs_done in (1, 2)


@pytest.mark.server
def test_a_sigkilled_keras_run_resumes_to_bitwise_identical_weights_and_history(server_uri, db_name):
    db = DBInterface(server_uri, database=db_name)
    env = {**os.environ, "PYTHONPATH": str(JOB.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    killed = subprocess.run(
        [sys.executable, str(JOB), "run", server_uri, db_name, "23"], capture_output=True, text=True, env=env, timeout=180
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_id = killed.stdout.split()[0]
    assert db.collection("modules").find_one({"_id": run_id})["status"]["state"] == "running"

    # The resumed run and a run never stopped, in one process with the killed one's threads.
    done = subprocess.run(
        [sys.executable, str(JOB), "resume", server_uri, db_name, run_id], capture_output=True, text=True, env=env, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    straight_id = done.stdout.split()[-1]
    resumed = Session.load(run_id, which=None, db=db)
    straight = Session.load(straight_id, which=None, db=db)
    assert resumed.status.state == "completed" and resumed.trainer.looper.steps_done == 3 * 14
    a, b = resumed.trainer.model.state_dict(), straight.trainer.model.state_dict()
    assert sorted(a) == sorted(b) and any(k.endswith("seed_generator") for k in a)  # dropout's RNG is state
    for key in a:
        assert a[key].tobytes() == b[key].tobytes(), key
    assert _history(db, run_id) == _history(db, straight_id)
