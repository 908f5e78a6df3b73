"""The ``ptdry`` command: runs (headers --where understands), rm, tag, export, sync, db —
exit codes and one-line errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys

import pytest

from ptdry import Module, Statistic
from ptdry.cli.main import main
from ptdry.db.runs_table import column_name, field_path
from ptdry.db.interface import DBInterface
from ptdry.db.journal import RunJournal, db_key
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


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err, command):
    return err.count("\n") == 1 and err.startswith(f"ptdry {command}: ")


def table(out):
    """``(header, rows)`` of a printed table (columns are two or more spaces apart)."""
    lines = out.splitlines()
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines]
    return cells[0], cells[1:]


# -- runs -------------------------------------------------------------------------------------
def test_runs_lists_every_root_run(repo, uri, capsys):
    code, out, _ = run_cli(capsys, "--db", uri, "runs")
    header, rows = table(out)
    assert code == 0 and header[:5] == ["id", "name", "version", "status", "created"]
    assert len(rows) == 3 and all(r[1] == "cli-run" for r in rows)


def test_every_column_header_is_a_field_where_and_sort_understand(repo, uri, capsys):
    header, rows = table(run_cli(capsys, "--db", uri, "runs")[1])
    assert "lr" in header and "val.accuracy" in header
    for name in header:
        assert column_name(field_path(name)) == name
    shown = {r[0]: float(r[header.index("val.accuracy")]) for r in rows}
    code, out, _ = run_cli(capsys, "--db", uri, "runs", "--where", "val.accuracy > 0.5004", "--sort=-val.accuracy")
    _, selected = table(out)
    assert code == 0 and [r[0] for r in selected] == [i for i, v in sorted(shown.items(), key=lambda kv: -kv[1]) if v > 0.5004]
    assert len(selected) == 2


def test_runs_where_expression_selects_in_the_server(repo, uri, capsys):
    code, out, _ = run_cli(capsys, "--db", uri, "runs", "--where", "lr < 1e-3 and status = completed")
    _, rows = table(out)
    assert code == 0 and len(rows) == 1 and rows[0][3] == "completed"


def test_runs_where_accepts_a_json_filter(repo, uri, capsys):
    _, out, _ = run_cli(capsys, "--db", uri, "runs", "--where", json.dumps({"status.state": "failed"}))
    _, rows = table(out)
    assert len(rows) == 1 and rows[0][3] == "failed"


def test_status_dead_and_running_select_what_the_table_shows(repo, uri, capsys):
    old = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=5)
    fresh = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    repo.modules.update_one({"version": 1}, {"$set": {"status.state": "running", "status.heartbeat": old}})
    repo.modules.update_one({"version": 2}, {"$set": {"status.state": "running", "status.heartbeat": fresh}})
    _, rows = table(run_cli(capsys, "--db", uri, "runs", "--sort", "version")[1])
    assert [r[3] for r in rows] == ["dead", "running", "failed"]
    for where, versions in [
        ("status = dead", ["1"]),
        ("status = running", ["2"]),
        ("status != dead", ["2", "3"]),
        ("status in [dead, failed]", ["1", "3"]),
        ("not status = running", ["1", "3"]),
    ]:
        code, out, _ = run_cli(capsys, "--db", uri, "runs", "--where", where, "--sort", "version")
        assert code == 0 and [r[2] for r in table(out)[1]] == versions, where


def test_runs_sort_by_a_summary_metric_descending(repo, uri, capsys):
    _, rows = table(run_cli(capsys, "--db", uri, "runs", "--sort=-summary.val.accuracy.best")[1])
    assert [r[2] for r in rows] == ["2", "3", "1"]  # lr 1e-2, 5e-4, 1e-4


def test_db_is_accepted_after_the_subcommand_too(repo, uri, capsys):
    code, out, _ = run_cli(capsys, "runs", "--db", uri, "--limit", "1")
    assert code == 0 and len(table(out)[1]) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--where", "lr <"], r"expected a value after '<'"),
        (["--where", "lr < 1e-3x"], r"'<' compares numbers or dates, and '1e-3x' is not a valid number or date"),
        (["--where", "lr = 1.2.3"], r"'1\.2\.3' is not a valid number"),
        (["--where", "created > 2024-13-01"], r"'2024-13-01' is not a valid date"),
        (["--where", '{"$where": "sleep(1000)"}'], r"\$where"),
        (["--sort", "nope"], r"--sort 'nope': no selected run has the field 'config\.nope'"),
        (["--sort", "$where"], r"--sort takes a field name"),
        (["--limit", "-1"], r"--limit must be >= 0; received -1"),
    ],
)
def test_bad_input_to_runs_is_one_line_and_exit_2(repo, uri, capsys, argv, message):
    code, _, err = run_cli(capsys, "--db", uri, "runs", *argv)
    assert code == 2 and one_line_error(err, "runs") and re.search(message, err), err


def test_unknown_command_exits_2(capsys):
    assert main(["fly"]) == 2


# -- database URIs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri, code, message",
    [
        ("foo://x", 2, "unsupported database URI 'foo://x'"),
        ("mongodb://localhost:99999", 2, "cannot use the database URI mongodb://localhost:99999: Port must be an integer"),
        ("mongodb://alice:s3cret:x@host/", 2, "cannot use the database URI mongodb://alice:***@host/"),
        ("mongodb+srv://no-such-cluster.invalid/", 1, "cannot use the database at mongodb+srv://no-such-cluster.invalid/"),
    ],
)
def test_a_bad_database_uri_is_one_line_without_a_traceback(capsys, uri, code, message):
    got, _, err = run_cli(capsys, "--db", uri, "runs")
    assert got == code and one_line_error(err, "runs") and message in err and "s3cret" not in err


# -- tag, rm, export --------------------------------------------------------------------------
def test_tag_adds_and_removes_tags_that_where_then_selects(repo, uri, capsys):
    rec = repo.find({"version": 2})[0]
    code, out, _ = run_cli(capsys, "--db", uri, "tag", rec.id[:8], "baseline", "good")
    assert code == 0 and out.strip() == f"{rec.id[:8]} tags: baseline, good"
    assert [r[2] for r in table(run_cli(capsys, "--db", uri, "runs", "--where", "tags = baseline")[1])[1]] == ["2"]
    assert run_cli(capsys, "--db", uri, "tag", rec.id[:8], "good", "--remove")[1].strip() == f"{rec.id[:8]} tags: baseline"


def test_rm_deletes_runs_with_their_history(repo, uri, capsys):
    rec = repo.find({"version": 1})[0]
    code, out, _ = run_cli(capsys, "--db", uri, "rm", rec.id[:8], "--yes")
    assert code == 0 and "deleted 1 run(s)" in out
    assert repo.modules.count_documents({"_id": rec.id}) == 0
    assert repo.db.collection("history").count_documents({"run": rec.id}) == 0
    code, out, _ = run_cli(capsys, "--db", uri, "rm", "--where", "status = failed", "-y")
    assert code == 0 and [r["version"] for r in repo.find({"parent": None})] == [2]


def test_rm_without_yes_and_no_terminal_deletes_nothing(repo, uri, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    rec = repo.find({"version": 1})[0]
    code, _, err = run_cli(capsys, "--db", uri, "rm", rec.id[:8])
    assert code == 2 and one_line_error(err, "rm") and "pass --yes" in err
    assert repo.modules.count_documents({"_id": rec.id}) == 1
    code, _, err = run_cli(capsys, "--db", uri, "rm")
    assert code == 2 and "give run ids or --where EXPR" in err


def test_export_csv_has_a_row_per_run_with_config_and_metrics(repo, uri, capsys, tmp_path):
    code, out, _ = run_cli(capsys, "--db", uri, "export", "--format", "csv", "--sort", "version")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["version"] for r in rows] == ["1", "2", "3"]
    assert [float(r["lr"]) for r in rows] == [1e-4, 1e-2, 5e-4]
    assert float(rows[1]["val.accuracy"]) == pytest.approx(0.51) and float(rows[1]["val.accuracy.last"]) == pytest.approx(0.51)
    target = tmp_path / "runs.json"
    assert run_cli(capsys, "--db", uri, "export", "--format", "json", "--where", "status = failed", "-o", str(target))[0] == 0
    docs = json.loads(target.read_text())
    assert len(docs) == 1 and docs[0]["status"]["state"] == "failed" and docs[0]["config"]["lr"] == 5e-4


def test_export_to_an_unwritable_path_is_one_line(repo, uri, capsys, tmp_path):
    code, _, err = run_cli(capsys, "--db", uri, "export", "-o", str(tmp_path / "missing" / "runs.csv"))
    assert code == 2 and one_line_error(err, "export") and "No such file or directory" in err


def test_to_dataframe_includes_summary_metrics(repo):
    frame = repo.to_dataframe({"parent": None})
    assert {"config.lr", "summary.val.accuracy.best", "summary.val.accuracy.last"} <= set(frame.columns)
    assert not any(c.startswith("summary.") for c in repo.to_dataframe({"parent": None}, summary=False).columns)


# -- history ----------------------------------------------------------------------------------
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
    assert "elsewhere: belongs to mongodb:db.example:27017/ptdry" in out
    coll = repo.db.collection("history")
    assert coll.count_documents({"run": rec.id}) == 5
    (tmp_path / "elsewhere.jsonl").unlink()
    assert main(["--db", uri, "sync", "--journal-dir", str(tmp_path)]) == 0
    assert "nothing to sync" in capsys.readouterr().out
    assert coll.count_documents({"run": rec.id}) == 5


def test_help_of_every_command_works(capsys):
    from ptdry.cli.main import COMMANDS

    for command in COMMANDS:
        assert main([command, "--help"]) == 0
        assert f"usage: ptdry {command}" in capsys.readouterr().out


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


@pytest.mark.parametrize("text", ["-$where", "$natural", "config.$where", "a..b", "-", "lr;drop"])
def test_runs_sort_refuses_operators_and_odd_names_in_one_line(repo, uri, capsys, text):
    assert main(["--db", uri, "runs", "--sort", text]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("ptdry runs: --sort takes a field name such as created") and f"received {text!r}" in err


def test_runs_sort_by_a_field_no_run_has_is_a_one_line_error(repo, uri, capsys):
    assert main(["--db", uri, "runs", "--sort=-accuracy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--sort 'accuracy': no selected run has the field 'config.accuracy'; sort by a column of `ptdry runs`" in err


def test_runs_sort_takes_a_descending_field_as_its_own_argument(repo, uri, capsys):
    assert main(["--db", uri, "runs", "--sort", "-version"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [r.split()[2] for r in rows] == ["3", "2", "1"]


def test_usage_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["runs", "--limit", "x"]) == 2
    err = capsys.readouterr().err
    assert err == "ptdry runs: argument --limit: invalid int value: 'x' (see `ptdry runs --help`)\n"
