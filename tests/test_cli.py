"""The ``ptdry`` command: runs, show, plot, sync, db — exit codes and messages."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from ptdry import Module, Statistic
from ptdry.cli.main import main
from ptdry.db.interface import DBInterface
from ptdry.db.journal import RunJournal, db_key
from ptdry.db.run_writer import RunWriter
from ptdry.db.repo import Repo


class Run(Module):
    def __init__(self, lr=1e-3, epochs=3):
        self.lr = lr


@pytest.fixture
def uri(db_name):
    return f"mongomock://{db_name}"


@pytest.fixture
def repo(uri):
    repo = Repo(uri)
    for lr, state in [(1e-4, "completed"), (1e-2, "completed"), (5e-4, "failed")]:
        run = Run(lr=lr)
        run.history.log("val", {"accuracy": 0.5 + lr}, step=10, epoch=1)
        rec = repo.add_object(run, name="cli-run")
        repo.modules.update_one({"_id": rec.id}, {"$set": {"status.state": state}})
    return repo


def test_runs_lists_every_root_run(repo, uri, capsys):
    assert main(["--db", uri, "runs"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["id", "name", "ver", "status", "created"]
    assert len(out) == 4 and all("cli-run" in line for line in out[1:])


def test_runs_where_expression_selects_in_the_server(repo, uri, capsys):
    assert main(["--db", uri, "runs", "--where", "lr < 1e-3 and status = completed"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 1 and "completed" in rows[0]


def test_runs_where_accepts_a_json_filter(repo, uri, capsys):
    assert main(["--db", uri, "runs", "--where", json.dumps({"status.state": "failed"})]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 1 and "failed" in rows[0]


def test_a_stale_running_run_shows_as_dead(repo, uri, capsys):
    old = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=5)
    repo.modules.update_many({"version": 1}, {"$set": {"status.state": "running", "status.heartbeat": old}})
    assert main(["--db", uri, "runs", "--sort", "version"]) == 0
    assert "dead" in capsys.readouterr().out.splitlines()[1]


def test_runs_sort_by_a_summary_metric_descending(repo, uri, capsys):
    assert main(["--db", uri, "runs", "--sort=-summary.val.accuracy.best"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [r.split()[2] for r in rows] == ["2", "3", "1"]  # lr 1e-2, 5e-4, 1e-4


def test_bad_where_is_a_usage_error_with_one_line_on_stderr(repo, uri, capsys):
    code = main(["--db", uri, "runs", "--where", "lr <"])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.count("\n") == 1 and err.startswith("ptdry runs:")


def test_javascript_filters_are_refused(repo, uri, capsys):
    assert main(["--db", uri, "runs", "--where", '{"$where": "sleep(1000)"}']) == 1
    assert "$where" in capsys.readouterr().err


def test_unknown_command_exits_2(capsys):
    assert main(["fly"]) == 2


def test_show_prints_config_status_and_summary(repo, uri, capsys):
    rec = repo.find({"version": 2})[0]
    assert main(["--db", uri, "show", rec.id[:10]]) == 0
    out = capsys.readouterr().out
    assert rec.id in out and '"lr": 0.01' in out and "val.accuracy" in out


def test_show_unknown_id_exits_1(repo, uri, capsys):
    assert main(["--db", uri, "show", "nope"]) == 1
    assert "no run with id starting 'nope'" in capsys.readouterr().err


def test_show_rejects_an_id_with_regex_characters(repo, uri, capsys):
    assert main(["--db", uri, "show", ".*"]) == 2


def test_plot_writes_a_png_of_the_history(repo, uri, tmp_path, capsys):
    rec = repo.find({"version": 1})[0]
    writer = RunWriter(repo.db, rec.id, journal_dir=tmp_path, start_seq=100)
    for step in range(20):
        writer.write(Statistic("train", {"loss": 1 / (step + 1)}, step=step, epoch=step // 10))
    assert writer.close()
    out = tmp_path / "curves.png"
    assert main(["--db", uri, "plot", rec.id, "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["--db", uri, "plot", rec.id, "--metric", "nope", "-o", str(out)]) == 1
    assert "no metric 'nope'" in capsys.readouterr().err


def test_sync_applies_a_journal_left_behind_once(repo, uri, tmp_path, capsys):
    from ptdry.db.history_store import history_document

    rec = repo.find({"version": 1})[0]
    journal = RunJournal.open(tmp_path, rec.id, db_key(repo.db))  # what a process cut off from the database leaves
    journal.append([history_document(rec.id, i, Statistic("train", {"loss": 0.1}, step=i)) for i in range(5)], fsync=True)
    journal.release()
    other = RunJournal.open(tmp_path, "elsewhere", db_key(DBInterface("mongodb://db.example:27017/")))
    other.release()
    assert main(["--db", uri, "sync", "--journal-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{rec.id}: 5 history records, 0 checkpoints" in out
    assert "elsewhere: belongs to mongodb://db.example:27017/ ptdry" in out
    coll = repo.db.collection("history")
    assert coll.count_documents({"run": rec.id}) == 5
    (tmp_path / "elsewhere.jsonl").unlink()
    assert main(["--db", uri, "sync", "--journal-dir", str(tmp_path)]) == 0
    assert "nothing to sync" in capsys.readouterr().out
    assert coll.count_documents({"run": rec.id}) == 5


@pytest.mark.server
def test_console_script_db_status_start_stop(tmp_path):
    env = {**__import__("os").environ, "PTDRY_HOME": str(tmp_path / "home")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "ptdry.cli.main", *a], env=env, capture_output=True, text=True)  # noqa: E731
    try:
        assert "not running" in run("db", "status").stdout
        started = run("db", "start")
        assert started.returncode == 0 and "mongodb://127.0.0.1:" in started.stdout
        assert "running: pid" in run("db", "status").stdout
        assert run("--db", "mongodb://x", "db", "status").returncode == 2
    finally:
        assert "stopped" in run("db", "stop").stdout
