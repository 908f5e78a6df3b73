"""Provenance and rerun end to end: a training script in its own directory (with its own
module and a class of its own) runs in a subprocess; ``ptdry rerun --check`` rebuilds it from
the database alone — from the current files, then from the stored sources once the files
changed — and finds the same weights bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ptdry.db.repo import Repo

MODULE = textwrap.dedent(
    """
    import torch


    class Net(torch.nn.Module):
        def __init__(self, hidden=16):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))

        def forward(self, x):
            return self.layers(x)
    """
)

SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from mynet import Net
    from ptdry import Callback, Criterion, DataProvider, Looper, Model, ObjectDef, Optimizer, Session, Trainer


    class Noise(Callback):
        \"\"\"Defined in the script itself: a rerun must rebuild it without running the script's main block.\"\"\"

        def __init__(self, scale=0.01):
            self.scale = scale

        def on_epoch_end(self, trainer, **_):
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.add_(self.scale * torch.randn_like(p))


    if __name__ == "__main__":
        X, y = load_digits(return_X_y=True)
        X, y = X[:400] / 16.0, y[:400]
        data = DataProvider(train=(X[:300], y[:300]), val=(X[300:], y[300:]))
        model = Model(ObjectDef(Net, 16), Optimizer(torch.optim.Adam, lr=1e-2), Criterion(torch.nn.CrossEntropyLoss))
        trainer = Trainer(model, Looper(epochs=2, batch_size=64), callbacks=[Noise()], verbose=0)
        print(Session(trainer, data, db=sys.argv[1], name="rerun-e2e", seed=3).run().run_id)
    """
)


def run(args, cwd, check=True):
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=os.environ)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def ptdry(uri, *args, cwd):
    return run(["-m", "ptdry.cli.main", "--db", uri, *args], cwd, check=False)


@pytest.mark.server
@pytest.mark.slow
def test_a_stored_run_reruns_from_the_database_alone_bit_for_bit(tmp_path, server_uri):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "mynet.py").write_text(MODULE)
    (project / "train.py").write_text(SCRIPT)
    run_id = run(["train.py", server_uri], project).stdout.strip().splitlines()[-1]

    doc = Repo(server_uri).modules.find_one({"_id": run_id})
    assert {s["file"] for s in doc["sources"]} == {"mynet.py", "train.py"}
    assert doc["command"]["argv"] == ["train.py", server_uri] and doc["torch_threads"] >= 1

    refused = ptdry(server_uri, "rerun", run_id[:8], cwd=elsewhere)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "needs code to be rebuilt — mynet, __main__ (the run's script) — from your current files" in refused.stderr
    assert "pass trusted=True (ptdry rerun --trusted)" in refused.stderr

    same = ptdry(server_uri, "rerun", run_id[:8], "--check", "--trusted", cwd=elsewhere)
    assert same.returncode == 0, same.stderr
    assert "code: the current files (as stored with the run)" in same.stdout
    assert "check: identical — the final weights equal the original's bit for bit" in same.stdout

    (project / "mynet.py").write_text(MODULE.replace("return self.layers(x)", "return 2 * self.layers(x)"))  # the code moved on
    stored = ptdry(server_uri, "rerun", run_id[:8], "--check", "--trusted", cwd=elsewhere)
    assert stored.returncode == 0, stored.stderr
    assert "code: the sources stored with the run; changed since the run: mynet.py" in stored.stdout
    assert "check: identical" in stored.stdout

    current = ptdry(server_uri, "rerun", run_id[:8], "--check", "--trusted", "--sources", "current", cwd=elsewhere)
    assert current.returncode == 1, current.stderr  # the changed forward pass trains other weights
    assert "code: the current files; changed since the run: mynet.py" in current.stdout
    assert "check: DIFFERENT — 4 of 4 tensors differ (largest difference " in current.stdout
    reruns = list(Repo(server_uri).modules.find({"rerun_of": run_id}, {"version": 1}))
    assert len(reruns) == 3 and sorted(r["version"] for r in reruns)[0] == doc["version"] + 1

    shown = ptdry(server_uri, "show", run_id[:8], "--source", cwd=elsewhere)
    assert "==> mynet.py (module mynet" in shown.stdout and "def __init__(self, hidden=16):" in shown.stdout
    assert "==> train.py (module __main__" in shown.stdout
