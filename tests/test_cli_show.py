"""``ptdry show``, ``compare``, ``plot`` and ``get`` on real Session runs, and the files a run
keeps (``session.log_artifact``)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from _train_helpers import digits, make_model

from ptdry.cli.main import main
from ptdry.core.callback import Callback
from ptdry.db.repo import Repo
from ptdry.errors import ConfigError
from ptdry.train.callbacks.checkpoint import Checkpoint
from ptdry.train.looper import Looper
from ptdry.train.session import Session
from ptdry.train.trainer import Trainer

MARKER = "a line only this test file holds: 7c1d"


class Explode(Callback):
    def on_step_end(self, step, **_):
        if step == 3:
            raise RuntimeError("the GPU caught fire")


def session(uri, lr=1e-2, callbacks=(), name="show-run"):
    trainer = Trainer(make_model(lr=lr), Looper(epochs=2, batch_size=128), [Checkpoint(), *callbacks], verbose=0)
    return Session(trainer, digits(200, 100, 100), db=uri, name=name)


@pytest.fixture(scope="module")
def uri():
    return f"mongomock://cli-show-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def runs(uri, tmp_path_factory):
    """Two runs, trained once for the module's tests (which only read them)."""
    tmp_path = tmp_path_factory.mktemp("files")
    first = session(uri)
    (tmp_path / "predictions.csv").write_text("id,label\n1,7\n")
    first.log_artifact(tmp_path / "predictions.csv")  # before the run: attached when it starts
    first.run()
    (tmp_path / "loss.png").write_bytes(b"\x89PNG fake")
    first.log_artifact(tmp_path / "loss.png", name="plots/loss.png")
    second = session(uri, lr=3e-2)
    second.run()
    return first.run_id, second.run_id


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_reads_as_a_summary_first(runs, uri, capsys):
    code, out, _ = cli(capsys, "--db", uri, "show", runs[0][:8])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"show-run v1  id {runs[0]}"
    assert lines[1] == "status    completed"
    assert lines[2].startswith("started   ") and "duration " in lines[2]
    assert any(line.startswith("host      ") and "torch threads" in line and "device cpu" in line for line in lines)
    assert "processes" not in out  # one process: nothing to say
    assert any(line.startswith("git       ") for line in lines)
    assert any(line.startswith("versions  python ") and "torch " in line for line in lines)
    assert re.search(r"\n  trainer\.model\.optimizer\.lr +0\.01\n", out)
    assert any(line.split()[:1] == ["val.accuracy"] and len(line.split()) == 5 for line in lines)
    assert "checkpoints (Session.load(id, which=...))" in out and "last, best" in out
    assert f"files (ptdry get {runs[0][:8]} NAME)" in out
    assert "  predictions.csv" in out and "  plots/loss.png" in out


def test_show_of_a_failed_run_gives_the_error(uri, capsys):
    failing = session(uri, callbacks=[Explode()])
    with pytest.raises(RuntimeError):
        failing.run()
    code, out, _ = cli(capsys, "--db", uri, "show", failing.run_id[:8])
    assert code == 0 and "status    failed" in out
    assert "error     RuntimeError: the GPU caught fire" in out
    assert re.search(r"ckpt-e0001-s00000003-exception +3 +1 +exception", out)


def test_show_json_is_the_whole_document(runs, uri, capsys):
    code, out, _ = cli(capsys, "--db", uri, "show", runs[1][:8], "--json")
    doc = json.loads(out)
    assert code == 0 and doc["_id"] == runs[1] and doc["config"]["trainer"]["model"]["optimizer"]["lr"] == 3e-2
    assert doc["status"]["state"] == "completed" and isinstance(doc["created_at"], str)


def test_show_source_prints_the_command_and_the_stored_source_files(runs, uri, capsys):
    code, out, _ = cli(capsys, "--db", uri, "show", runs[0][:8], "--source")
    assert code == 0 and out.startswith("command: ")
    assert "==> _train_helpers.py (module _train_helpers" in out  # the module of the run's MLP
    assert MARKER in out  # this file: imported from the same directory


def test_compare_puts_config_differences_and_metrics_side_by_side(runs, uri, capsys):
    code, out, _ = cli(capsys, "--db", uri, "compare", runs[0][:8], runs[1][:8])
    assert code == 0
    assert out.splitlines()[0].split() == [runs[0][:8], runs[1][:8]]
    config = out.split("config (values that differ)\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in config[1:]] == ["trainer.model.optimizer.lr"]
    assert config[1].split()[1:] == ["0.01", "0.03"]
    metrics = out.split("* marks the best run)\n")[1].splitlines()
    val_loss = next(line.split() for line in metrics if line.split()[0] == "val.loss")
    assert sum(cell.endswith("*") for cell in val_loss[1:]) == 1
    assert cli(capsys, "--db", uri, "compare", runs[0][:8])[0] == 2


def test_plot_overlays_several_runs(runs, uri, capsys, tmp_path):
    out = tmp_path / "curves.png"
    code, text, _ = cli(capsys, "--db", uri, "plot", runs[0][:8], runs[1][:8], "-o", str(out), "--metric", "val.loss")
    assert code == 0 and text.strip() == f"wrote {out} (val.loss)"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "target, message",
    [("missing-dir/curves.png", "cannot write the plot to '.*missing-dir/curves.png': No such file or directory"),
     ("curves.nope", "cannot write the plot to '.*curves.nope': Format 'nope' is not supported")],
)  # fmt: skip
def test_plot_to_an_unwritable_path_is_one_line(runs, uri, capsys, tmp_path, target, message):
    code, _, err = cli(capsys, "--db", uri, "plot", runs[0][:8], "-o", str(tmp_path / target))
    assert code == 1 and err.count("\n") == 1 and re.match(f"ptdry plot: {message}", err), err


def test_plot_an_unknown_metric_is_one_line(runs, uri, capsys, tmp_path):
    code, _, err = cli(capsys, "--db", uri, "plot", runs[0][:8], "--metric", "nope", "-o", str(tmp_path / "c.png"))
    assert code == 1 and err.startswith("ptdry plot: no metric 'nope' in this run; there are: ")


def test_get_fetches_a_file_kept_with_the_run(runs, uri, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "--db", uri, "get", runs[0][:8], "predictions.csv")
    assert code == 0 and (tmp_path / "predictions.csv").read_text() == "id,label\n1,7\n"
    code, _, err = cli(capsys, "--db", uri, "get", runs[0][:8], "predictions.csv")
    assert code == 2 and "exists; pass --force" in err
    code, _, _ = cli(capsys, "--db", uri, "get", runs[0][:8], "plots/loss.png", "-o", str(tmp_path / "l.png"))
    assert code == 0 and (tmp_path / "l.png").read_bytes() == b"\x89PNG fake"
    code, _, err = cli(capsys, "--db", uri, "get", runs[0][:8], "nope.txt")
    assert code == 1 and err == f"ptdry get: run {runs[0][:8]} has no file 'nope.txt'; its files: predictions.csv, plots/loss.png\n"


def test_logging_a_name_again_replaces_the_file(db_name, tmp_path):
    run = session(f"mongomock://{db_name}")
    run.run()
    for text in ("old", "new"):
        (tmp_path / "p.csv").write_text(text)
        run.log_artifact(tmp_path / "p.csv")
    again = Session.load(run.run_id, which=None, db=f"mongomock://{db_name}")
    (tmp_path / "q.csv").write_text("q")
    again.log_artifact(tmp_path / "q.csv")
    files = [a for a in again.db({"_id": run.run_id})[0]["artifacts"] if a["name"].startswith("file/")]
    assert [a["name"] for a in files] == ["file/p.csv", "file/q.csv"]
    assert again.db.db["fs.files"].count_documents({"filename": "file/p.csv"}) == 1  # the old bytes are gone


class LogsAFileEachEpoch(Callback):
    def __init__(self, path):
        self.path = path
        self.records = []

    def on_session_start(self, session, **_):
        self.__dict__["_session"] = session  # runtime wiring, not a child

    def on_epoch_end(self, epoch, **_):
        with open(self.path, "w") as f:
            f.write(f"epoch {epoch}")
        self.records.append(self.__dict__["_session"].log_artifact(self.path))


def test_a_file_logged_during_the_run_goes_through_its_writer(db_name, tmp_path):
    logs = LogsAFileEachEpoch(str(tmp_path / "epoch.txt"))
    run = session(f"mongomock://{db_name}", callbacks=[logs])
    run.run()
    assert [r["store"] for r in logs.records] == ["spool", "spool"]  # a local file: the loop never waits on GridFS
    files = [a for a in run.db({"_id": run.run_id})[0]["artifacts"] if a["name"].startswith("file/")]
    assert [(a["name"], a["store"]) for a in files] == [("file/epoch.txt", "gridfs")]
    assert Repo(run.db).artifact_bytes(files[0]) == b"epoch 2"


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a//b", ""])
def test_a_file_name_must_be_relative(uri, tmp_path, name):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"a run's file name must be relative"):
        session(uri).log_artifact(tmp_path / "f.txt", name=name)


def test_show_and_get_of_an_unknown_id_exit_1_and_a_bad_id_exits_2(runs, uri, capsys):
    code, _, err = cli(capsys, "--db", uri, "show", "nope")
    assert code == 1 and err == "ptdry show: no run with id starting 'nope'; see `ptdry runs`\n"
    assert cli(capsys, "--db", uri, "show", ".*")[0] == 2
