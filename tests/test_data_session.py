"""Data in the training tree: a Session takes every form of data, stores it, rebuilds it from
readers and sources without being given it again, and resumes mid-epoch bitwise — with a
RandomSampler, with worker processes, and reading an HDF5 file."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from ptdry import DataLoader, DataProvider, DataReader, DBInterface, NumpyDataset, RandomSampler, Session, TorchDataset

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _data_session_job import digits, make_session, write_hdf5  # noqa: E402
from _session_job import make_session as digits_session  # noqa: E402

JOB = pathlib.Path(__file__).parent / "_data_session_job.py"


def _forms(tmp_path):
    x, y = digits(120)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    return {
        "arrays": (x, y),
        "dataset": NumpyDataset((x, y)),
        "loader": DataLoader((x, y), batch_size=32, sampler=RandomSampler(seed=1)),
        "splits": {"train": (x[:80], y[:80]), "val": NumpyDataset((x[80:], y[80:]))},
        "partition": DataProvider(NumpyDataset((x, y)), partition=(75, 25, 0)),
        "torch": TorchDataset(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))),
        "reader": DataProvider(DataReader(keys=["x", "y"]).read(tmp_path / "d.npz"), partition=(75, 25, 0), seed=None),
    }


@pytest.mark.parametrize("form", ["arrays", "dataset", "loader", "splits", "partition", "torch", "reader"])
def test_a_session_takes_every_form_of_data_and_a_stored_run_rebuilds_it(tmp_path, form, db_name):
    db = DBInterface(f"mongomock://{db_name}", database=db_name)
    session = digits_session(db, epochs=1, name=f"form-{form}")
    session = Session(trainer=session.trainer, data=_forms(tmp_path)[form], db=db, seed=0, name=f"form-{form}")
    result = session.run()
    assert result.status == "completed" and "train.loss" in result.metrics
    loaded = Session.load(result.run_id, which=None, db=db)  # no data passed
    assert loaded.data.problems() == [] and loaded.data.has("train")
    ref = [np.asarray(b[1]).tolist() for b in session.data.provide("train", 32, shuffle=False).batches()]
    got = [np.asarray(b[1]).tolist() for b in loaded.data.provide("train", 32, shuffle=False).batches()]
    assert got == ref


@pytest.mark.slow
@pytest.mark.server
@pytest.mark.parametrize("mode", ["random_sampler", "workers", "hdf5"])
def test_a_run_killed_mid_epoch_resumes_bitwise(mode, server_uri, db_name, tmp_path):
    db = DBInterface(server_uri, database=db_name)
    h5path = str(tmp_path / "digits.h5")
    write_hdf5(h5path)
    env = {**os.environ, "PYTHONPATH": str(JOB.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    killed = subprocess.run(
        [sys.executable, str(JOB), server_uri, db_name, mode, "19", h5path],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert killed.returncode == -9, killed.stderr
    run_id = killed.stdout.split()[0]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the killed job
    try:
        stored = Session.load(run_id, db=db)  # its last checkpoint: step 16, in the middle of epoch 2
        assert stored.trainer.looper.epochs_done == 1 and 0 < stored.trainer.looper.batches_done
        resumed = Session.resume(run_id, db=db)  # the data is rebuilt, not passed
        straight = make_session(db, mode, h5path, name="straight")
        straight.run()
        if mode == "workers":
            in_process = make_session(db, mode, h5path, name="no-workers", num_workers=0)
            in_process.run()
    finally:
        torch.set_num_threads(threads)
    assert resumed.status == "completed"
    final = Session.load(run_id, which=None, db=db)
    for (name, a), b in zip(final.trainer.model.net.named_parameters(), straight.trainer.model.net.parameters()):
        assert torch.equal(a, b), name
    assert resumed.metrics == straight.trainer.metrics
    if mode == "workers":
        for a, b in zip(in_process.trainer.model.net.parameters(), straight.trainer.model.net.parameters()):
            assert torch.equal(a, b)


def _digit_rows():
    x, y = digits(96)
    for i in range(len(y)):
        yield x[i], y[i]


def test_a_trainer_trains_on_a_stream_of_unknown_length_and_resumes_in_it():
    from _train_helpers import CrashAt

    from ptdry import Criterion, Looper, Model, ObjectDef, Optimizer, Trainer
    from ptdry.train.nets import MLP

    def trainer():
        model = Model(ObjectDef(MLP, 64, 16, 10), Optimizer(torch.optim.SGD, lr=0.1), Criterion(torch.nn.CrossEntropyLoss))
        return Trainer(model, Looper(epochs=2, batch_size=32), progress_bar=False)

    stream = NumpyDataset(_digit_rows)  # iterable: no length, read anew each epoch
    straight = trainer()
    straight.fit(stream, seed=0)
    assert straight.looper.steps_done == 6

    crashing = trainer()
    crash = crashing.add_callback(CrashAt(4))  # in the middle of epoch 2
    with pytest.raises(RuntimeError, match="simulated crash after step 4"):
        crashing.fit(stream, seed=0)
    resumed = trainer()
    resumed.load_state_dict(crash.state)
    resumed.fit(stream)
    assert resumed.looper.steps_done == 6
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), straight.model.parameters()))
