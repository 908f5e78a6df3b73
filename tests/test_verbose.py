"""Readable progress: a bar on a terminal, one line per epoch in logs, ``verbose=`` for both."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from _train_helpers import make_model

from ptdry.data.provider import DataProvider
from ptdry.errors import ConfigError
from ptdry.train.callbacks.early_stopping import EarlyStopping
from ptdry.train.callbacks.epoch_printer import EpochPrinter
from ptdry.train.callbacks.progress_bar import ProgressBar
from ptdry.train.looper import Looper
from ptdry.train.trainer import Trainer


def tiny(test=False):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(16, 64, generator=g), torch.randint(0, 10, (16,), generator=g)
    return DataProvider(train=(X[:8], y[:8]), val=(X[8:12], y[8:12]), test=(X[12:], y[12:]) if test else None)


def trainer(**kwargs):
    return Trainer(make_model(), Looper(epochs=3, batch_size=4), **kwargs)


def test_without_a_terminal_auto_prints_one_line_per_epoch(capsys):
    t = trainer()  # pytest captures stdout: not a terminal
    assert t.callbacks.names() == ["NaNDetector", "EpochPrinter"]
    t.fit(tiny(), seed=0)
    t.evaluate(tiny(test=True))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[:2] for line in lines[:3]] == [["epoch 1/3", "2 steps"], ["epoch 2/3", "2 steps"], ["epoch 3/3", "2 steps"]]
    assert all(" - train.loss " in line and " - val.loss " in line and " - val.accuracy " in line for line in lines[:3])
    assert lines[3].startswith("test - test.loss ") and " - test.accuracy " in lines[3] and len(lines) == 4


def test_on_a_terminal_auto_shows_the_progress_bar(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert trainer().callbacks.names() == ["NaNDetector", "ProgressBar"]


@pytest.mark.parametrize("verbose, shown", [(0, []), (1, ["ProgressBar"]), (2, ["EpochPrinter"])])
def test_verbose_chooses_explicitly(verbose, shown, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert trainer(verbose=verbose).callbacks.names() == ["NaNDetector", *shown]
    assert trainer(verbose=verbose).definition().kwargs["verbose"] == verbose


def test_progress_bar_false_is_verbose_zero_and_both_together_are_refused():
    assert trainer(progress_bar=False).callbacks.names() == ["NaNDetector"]
    assert trainer(callbacks=[ProgressBar()], verbose=2).callbacks.names() == ["NaNDetector", "ProgressBar"]
    with pytest.raises(ConfigError, match=r"give verbose= or progress_bar=, not both; received verbose=2, progress_bar=False"):
        trainer(verbose=2, progress_bar=False)
    with pytest.raises(ConfigError, match=r"Trainer\.verbose must be one of \['auto', 0, 1, 2\]: not an option; received 3"):
        trainer(verbose=3)


def test_an_early_stop_is_printed_after_the_epoch_lines(capsys):
    class Flat(Trainer):
        def validate(self, data, split="val"):
            self.log(split, {"loss": 1.0})
            return {"loss": 1.0}

    Flat(make_model(), Looper(epochs=5, batch_size=4), [EarlyStopping(patience=1)], verbose=2).fit(tiny(), seed=0)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2] == "stopped: early stopping: val.loss did not improve for 1 checks (best 1 at epoch 1)"


def test_a_job_writing_to_a_log_file_gets_one_readable_line_per_epoch(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import torch
        from ptdry import Criterion, DataProvider, Looper, Model, ObjectDef, Optimizer, Trainer
        X = torch.randn(32, 4, generator=torch.Generator().manual_seed(0)); y = (X[:, 0] > 0).long()
        model = Model(ObjectDef(torch.nn.Linear, 4, 2), Optimizer(torch.optim.SGD, lr=0.1), Criterion(torch.nn.CrossEntropyLoss))
        Trainer(model, Looper(epochs=4, batch_size=8)).fit(DataProvider(train=(X, y), val=(X, y)), seed=0)
    """))
    with open(tmp_path / "job.log", "w") as log:
        subprocess.run([sys.executable, str(script)], stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)
    text = (tmp_path / "job.log").read_text()
    assert "\r" not in text and "it/s" not in text  # no progress bar in the log
    lines = text.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/4", "epoch 2/4", "epoch 3/4", "epoch 4/4"]


def test_the_printer_is_runtime_wiring_not_part_of_the_definition():
    import io

    printer = EpochPrinter(stream=io.StringIO())
    assert printer.definition().kwargs["stream"] is None
