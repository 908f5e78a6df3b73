"""Multi-process training on torch.distributed: the same script under torchrun (2 processes,
gloo on the CPU) reaches the weights of one process with the global batch, records its run
once, ends when a rank is killed, and resumes exactly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import pytest
import torch

from ptdry import DataProvider, DBInterface, Repo
from ptdry.cli.main import main

HERE = os.path.dirname(os.path.abspath(__file__))
JOB = os.path.join(HERE, "_ddp_job.py")
sys.path.insert(0, HERE)

from _ddp_job import plain_trainer, splits  # noqa: E402


def torchrun(uri: str, database: str, out: str, mode: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``tests/_ddp_job.py`` under torchrun with 2 processes (a free port: --standalone)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", JOB, uri, database, out, mode]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE]), "PTDRY_DIST_TIMEOUT": "60"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def database() -> str:
    return f"t_ddp_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def uninterrupted(server_uri, database, tmp_path_factory):
    """The job run once, uninterrupted: ``(run_id, out directory)``."""
    out = tmp_path_factory.mktemp("ddp-run")
    done = torchrun(server_uri, database, str(out), "run")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()[0], out


def test_two_processes_of_batch_32_reach_the_weights_of_one_process_of_batch_64(uninterrupted):
    _, out = uninterrupted
    ddp = torch.load(out / "epoch1.pt")
    torch.set_num_threads(1)
    single = plain_trainer(64)
    metrics = single.fit(DataProvider(**splits()), seed=0)
    assert ddp["steps"] == single.step == 7  # 421 rows: 6 global batches of 64 and one of 37 (19 + 18 rows)
    weights = single.model.net.state_dict()
    for key, value in weights.items():
        assert torch.allclose(ddp["weights"][key], value, atol=1e-5, rtol=0), key
    # validation metrics are added up over the ranks' parts, weighted by rows: the whole split's
    assert ddp["metrics"]["val.loss"] == pytest.approx(metrics["val.loss"], abs=1e-5)
    assert ddp["metrics"]["val.accuracy"] == metrics["val.accuracy"]


def test_only_rank_0_records_a_distributed_run(uninterrupted, server_uri, database):
    run_id, _ = uninterrupted
    db = DBInterface(server_uri, database=database)
    repo = Repo(db)
    docs = list(repo.modules.find({"name": "ddp"}, {"world_size": 1, "device": 1, "status": 1}))
    assert [(d["_id"], d["world_size"], d["device"], d["status"]["state"]) for d in docs] == [(run_id, 2, "cpu", "completed")]
    steps = [r["step"] for r in db.collection("history").find({"run": run_id, "phase": "step"})]
    assert sorted(steps) == list(range(1, 22))  # 3 epochs of 7 global steps, each recorded once
    saved = [a for a in repo.modules.find_one({"_id": run_id})["artifacts"] if a["name"].startswith("checkpoint/")]
    assert len(saved) == len({a["name"] for a in saved}) >= 2  # written by rank 0 alone
    assert {a["meta"]["world_size"] for a in saved} == {2}


def test_show_says_how_many_processes_trained_a_run(uninterrupted, server_uri, database, capsys):
    run_id, _ = uninterrupted
    uri = server_uri.replace("/?", f"/{database}?")  # the job's database, named in the URI
    assert main(["--db", uri, "show", run_id[:8]]) == 0
    host = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("host "))
    assert "device cpu" in host and "processes 2 (torch.distributed)" in host


def test_a_killed_rank_ends_the_job_and_resuming_under_torchrun_is_exact(uninterrupted, server_uri, database, tmp_path):
    _, reference = uninterrupted
    killed = torchrun(server_uri, database, str(tmp_path), "kill:10")  # step 10: in epoch 2, after the checkpoint of step 9
    assert killed.returncode != 0
    assert "SIGKILL" in killed.stderr
    run_id = killed.stdout.split()[0]
    db = DBInterface(server_uri, database=database)
    assert Repo(db).modules.find_one({"_id": run_id})["status"]["state"] in ("failed", "interrupted")
    resumed = torchrun(server_uri, database, str(tmp_path), f"resume:{run_id}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = torch.load(reference / "final.pt"), torch.load(tmp_path / "final.pt")
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    doc = Repo(db).modules.find_one({"_id": run_id})
    assert (doc["status"]["state"], doc["world_size"]) == ("completed", 2)
    steps = [r["step"] for r in db.collection("history").find({"run": run_id, "phase": "step"})]
    assert sorted(steps) == list(range(1, 22))  # steps 10-21 again after the checkpoint of step 9, none twice


def test_without_torchrun_the_survivor_of_a_killed_rank_fails_instead_of_waiting(tmp_path):
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE]), "OMP_NUM_THREADS": "1"}
    base.update(WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), PTDRY_DIST_TIMEOUT="60")
    command = [sys.executable, JOB, "mongomock://ddp", "ddp", str(tmp_path), "kill:2"]
    ranks = [
        subprocess.Popen(command, env={**base, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in (0, 1)
    ]
    outputs = [p.communicate(timeout=120) for p in ranks]
    assert ranks[1].returncode == -9  # it killed itself at step 2
    assert ranks[0].returncode == 1  # rank 0 failed at its next collective, long before the timeout
    assert "Connection closed by peer" in outputs[0][1] or "Connection reset by peer" in outputs[0][1]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "h"}, r"WORLD_SIZE=2 says .* but MASTER_PORT is not set: start the script with torchrun"),
        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, r"RANK=2 is not a rank of WORLD_SIZE=2"),
        ({"WORLD_SIZE": "two"}, r"WORLD_SIZE must be an integer; received 'two'"),
    ],
)
def test_an_incomplete_launcher_environment_is_refused_by_name(environ, message):
    from ptdry.errors import ConfigError
    from ptdry.train.distributed import environment

    with pytest.raises(ConfigError, match=message):
        environment(environ)
