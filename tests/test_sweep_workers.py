"""Sweeps across processes on the real server: local worker processes, and `ptdry worker`
processes of which one is SIGKILLed mid-trial (the trial is re-queued and its run resumed)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

from ptdry import DBInterface, Sweep

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _sweep_job import make_session  # noqa: E402

pytestmark = [pytest.mark.server, pytest.mark.slow]
HERE = pathlib.Path(__file__).resolve().parent
LR = "trainer.model.optimizer.lr"


def test_a_grid_of_6_trials_with_3_local_workers_runs_each_trial_exactly_once(server_uri, db_name):
    db = DBInterface(server_uri, database=db_name)
    sweep = Sweep(make_session(db, epochs=2), {LR: [0.05, 0.1, 0.5], "seed": range(2)}, monitor="val.accuracy", name="six")
    trials = sweep.run(workers=3, heartbeat_interval=0.5, stale_after=30)
    assert [t.state for t in trials] == ["completed"] * 6
    assert [t.attempts for t in trials] == [1] * 6 and [t.requeued for t in trials] == [0] * 6
    assert len({t.worker.rsplit("/", 1)[0] for t in trials}) == 1  # the workers of this run()
    runs = list(db.collection("modules").find({"links.sweep.id": sweep.dry_id, "parent": None}))
    assert len(runs) == 6 and {r["_id"] for r in runs} == {t.run_id for t in trials}
    assert all(r["status"]["state"] == "completed" for r in runs)


def test_two_ptdry_workers_with_one_killed_mid_trial_complete_the_trial_once_resumed(server_uri, db_name):
    db = DBInterface(server_uri, database=db_name)
    sweep = Sweep(make_session(db), {LR: [0.05, 0.1, 0.2]}, monitor="val.accuracy", name="kill").save()
    cmd = [
        sys.executable, "-m", "ptdry", "worker", "kill", "--db", server_uri, "--database", db_name,
        "--import", "_sweep_job", "--heartbeat", "0.2", "--stale-after", "1.5", "--threads", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    doomed = subprocess.Popen(cmd, env={**env, "PTDRY_TEST_KILL_AT": "5"}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60  # the survivor starts once the doomed worker holds a trial
    while sweep.store.counts()["running"] == 0 and doomed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    survivor = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, doomed_log = doomed.communicate(timeout=120)
    out, survivor_log = survivor.communicate(timeout=120)
    assert doomed.returncode == -9, doomed_log[-2000:]  # killed at step 5, after the checkpoint at step 4
    assert survivor.returncode == 0, survivor_log[-2000:]
    assert "ran" in out and "3 completed" in out

    killed = int(re.search(r"trial (\d+) of sweep kill: starting run (\w+)", doomed_log).group(1))
    started_run = re.search(r"trial \d+ of sweep kill: starting run (\w+)", doomed_log).group(1)
    trials = sweep.trials()
    assert [t.state for t in trials] == ["completed"] * 3
    trial = trials[killed]
    assert trial.run_id.startswith(started_run)  # the same run, resumed, not a second one
    assert (trial.attempts, trial.requeued) == (2, 1)
    assert [(t.attempts, t.requeued) for t in trials if t.number != killed] == [(1, 0), (1, 0)]
    assert f"resuming run {started_run}" in survivor_log and "loaded checkpoint ckpt-e0000-s00000004" in survivor_log
    run = db.collection("modules").find_one({"_id": trial.run_id})
    assert run["status"]["state"] == "completed" and run["links"]["sweep"]["trial"] == killed
    assert db.collection("modules").count_documents({"links.sweep.id": sweep.dry_id, "parent": None}) == 3
    seqs = [d["seq"] for d in db.collection("history").find({"run": trial.run_id}).sort("seq", 1)]
    assert seqs == list(range(len(seqs)))  # the history continues without duplicates
