"""The dashboard's JSON API (``ptdry ui``), through the ASGI test client, on the embedded
server with real runs; and the ``ptdry ui`` command."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import uuid

import pytest
from starlette.testclient import TestClient

from ptdry import Module
from ptdry.cli.main import main as cli
from ptdry.db.interface import DBInterface
from ptdry.db.repo import Repo
from ptdry.ui.app import create_app

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _ui_runs import add_long_history, make_runs  # noqa: E402

pytestmark = pytest.mark.server
LOCAL = "http://127.0.0.1"


class Long(Module):
    def __init__(self, steps=2000):
        self.steps = steps


@pytest.fixture(scope="module")
def stored(server_uri):
    """A fresh database on the session's server with real runs (and a long history)."""
    name = f"t_ui_{uuid.uuid4().hex[:10]}"
    db = DBInterface(server_uri, database=name)
    ids = make_runs(db)
    long = Repo(db).add_object(Long(), name="long")
    add_long_history(db, long.id, 2000)
    ids["long"] = long.id
    yield db, ids
    db.client.drop_database(name)
    db.close()


@pytest.fixture(scope="module")
def client(stored):
    return TestClient(base_url=LOCAL, app=create_app(stored[0]))


@pytest.fixture
def editable(stored):
    return TestClient(base_url=LOCAL, app=create_app(stored[0], allow_edit=True))


# -- the runs table ------------------------------------------------------------------------------
def test_the_runs_table_shows_every_root_run_newest_first(client, stored):
    page = client.get("/api/runs").json()
    _, ids = stored
    assert [r["id"] for r in page["runs"]] == [ids["long"], ids["stale"], ids["failed"], ids["fast"], ids["slow"]]
    assert page["has_more"] is False and page["offset"] == 0


def test_a_where_query_selects_runs_like_ptdry_runs(client, stored):
    _, ids = stored
    page = client.get("/api/runs", params={"where": "trainer.model.optimizer.lr < 2e-2 and status = completed"}).json()
    assert {r["id"] for r in page["runs"]} == {ids["slow"], ids["fast"]}
    assert page["columns"]["config"][0] == "trainer.model.optimizer.lr"  # only values that differ
    assert {r["config"]["trainer.model.optimizer.lr"] for r in page["runs"]} == {3e-3, 1e-2}
    assert "val.accuracy" in page["columns"]["metrics"]
    best = page["runs"][0]["metrics"]["val.accuracy"]
    assert set(best) == {"best", "last", "mode"} and best["mode"] == "max"


def test_a_where_syntax_error_answers_400_with_its_column(client):
    response = client.get("/api/runs", params={"where": "lr < 1e-3 and"})
    assert response.status_code == 400
    body = response.json()
    assert body["column"] == 14 and body["field"] == "where"
    assert body["error"].startswith("expected a field name (like lr or trainer.optimizer.lr), found the end of the expression")


def test_server_side_javascript_is_refused(client):
    response = client.get("/api/runs", params={"where": '{"$where": "sleep(100)"}'})
    assert response.status_code == 400 and "$where" in response.json()["error"]


def test_a_stale_running_run_shows_as_dead_with_its_duration_up_to_the_last_heartbeat(client, stored):
    row = client.get("/api/runs", params={"name": "stale"}).json()["runs"][0]
    assert row["state"] == "dead" and row["duration"] == 0


def test_finished_runs_have_a_duration(client):
    rows = client.get("/api/runs", params={"where": "status = completed"}).json()["runs"]
    assert rows and all(r["duration"] is not None and r["duration"] >= 0 for r in rows)


def test_sorting_by_a_config_value_and_by_a_summary_metric(client, stored):
    _, ids = stored
    by_lr = client.get("/api/runs", params={"name": "digits", "sort": "-trainer.model.optimizer.lr"}).json()["runs"]
    assert [r["id"] for r in by_lr] == [ids["failed"], ids["fast"], ids["slow"]]
    by_loss = client.get("/api/runs", params={"where": "status = completed", "sort": "summary.val.loss.best"}).json()["runs"]
    losses = [r["metrics"]["val.loss"]["best"] for r in by_loss]
    assert losses == sorted(losses)


def test_a_bad_sort_is_refused(client):
    response = client.get("/api/runs", params={"sort": "-$where"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("sort takes a field name such as created")
    assert response.json()["error"].endswith("received '-$where'")


def test_pages_of_the_table_and_the_count(client, stored):
    first = client.get("/api/runs", params={"limit": 2}).json()
    second = client.get("/api/runs", params={"limit": 2, "offset": 2}).json()
    assert first["has_more"] and len(first["runs"]) == 2 and len(second["runs"]) == 2
    assert not {r["id"] for r in first["runs"]} & {r["id"] for r in second["runs"]}
    assert client.get("/api/runs/count").json() == {"count": 5}
    assert client.get("/api/runs/count", params={"where": "status = failed"}).json() == {"count": 1}
    response = client.get("/api/runs", params={"limit": 5000})
    assert response.status_code == 400 and response.json()["error"] == "limit must be from 1 to 1000; received 5000"


def test_project_name_and_tag_filters(client, stored):
    _, ids = stored
    assert [r["id"] for r in client.get("/api/runs", params={"tag": "best"}).json()["runs"]] == [ids["fast"]]
    assert len(client.get("/api/runs", params={"name": "dig"}).json()["runs"]) == 3
    assert client.get("/api/runs", params={"project": "elsewhere"}).json()["runs"] == []
    nested = client.get("/api/runs", params={"all": "1", "name": "digits/"}).json()["runs"]
    assert nested and all(r["parent"] for r in nested)


# -- one run -------------------------------------------------------------------------------------
def test_one_run_has_status_provenance_config_summary_metrics_and_artifacts(client, stored):
    _, ids = stored
    run = client.get(f"/api/runs/{ids['fast']}").json()
    assert run["state"] == "completed" and run["status"]["ended_at"].endswith("Z")
    assert run["host"] and "python" in run["library_versions"]
    assert run["config"]["trainer"]["model"]["optimizer"]["lr"] == 1e-2
    assert {"train.loss", "val.loss", "val.accuracy", "test.accuracy"} <= set(run["metrics"])
    assert run["summary"]["val.loss"]["mode"] == "min"
    names = [a["name"] for a in run["artifacts"]]
    assert "state" in names and any(n.startswith("checkpoint/") for n in names)


def test_a_failed_run_shows_its_error_and_traceback(client, stored):
    _, ids = stored
    error = client.get(f"/api/runs/{ids['failed']}").json()["status"]["error"]
    assert error["type"] == "RuntimeError" and error["message"] == "loss exploded at step 5"
    assert "Traceback (most recent call last)" in error["traceback"]


def test_a_run_is_found_by_a_unique_id_prefix_and_an_unknown_one_is_404(client, stored):
    _, ids = stored
    assert client.get(f"/api/runs/{ids['slow'][:8]}").json()["id"] == ids["slow"]
    response = client.get("/api/runs/zzzzzzzz")
    assert response.status_code == 404 and response.json() == {"error": "no run with id 'zzzzzzzz'"}


def test_an_artifact_downloads_with_its_checksum(client, stored):
    db, ids = stored
    record = next(a for a in client.get(f"/api/runs/{ids['slow']}").json()["artifacts"] if a["name"].startswith("checkpoint/"))
    response = client.get(f"/api/runs/{ids['slow']}/artifacts/{record['name']}")
    assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == record["sha256"]
    assert response.headers["content-disposition"].startswith('attachment; filename="digits-v1-checkpoint_')
    missing = client.get(f"/api/runs/{ids['slow']}/artifacts/nope")
    assert missing.status_code == 404 and missing.json()["error"].startswith(f"run {ids['slow']} has no artifact 'nope'; its artifacts: ")


# -- curves --------------------------------------------------------------------------------------
def test_the_curves_of_a_real_run(client, stored):
    _, ids = stored
    series = client.get(f"/api/runs/{ids['slow']}/history", params={"metric": ["train.loss", "val.loss"]}).json()["series"]
    assert set(series) == {"train.loss", "val.loss"}
    assert len(series["val.loss"]["step"]) == 2 and series["val.loss"]["epoch"] == [1, 2]  # 2 epochs
    assert all(isinstance(v, float) for v in series["train.loss"]["value"])


def test_a_long_history_is_down_sampled_to_the_plots_width(client, stored):
    _, ids = stored
    result = client.get(f"/api/runs/{ids['long']}/history", params={"points": 50}).json()
    curve = result["series"]["train.loss"]
    assert curve["source"].startswith("rollup level") and 50 <= len(curve["step"]) <= 200
    assert (result["start"], result["end"]) == (0, 1999)
    zoomed = client.get(f"/api/runs/{ids['long']}/history", params={"points": 50, "start": 100, "end": 199}).json()
    assert zoomed["series"]["train.loss"]["step"][:3] == [100, 101, 102]


def test_bad_history_queries_say_what_is_wrong(client, stored):
    _, ids = stored
    bad = client.get(f"/api/runs/{ids['long']}/history", params={"points": "wide"})
    assert bad.status_code == 400 and bad.json()["error"] == "points must be an integer; received 'wide'"
    unknown = client.get(f"/api/runs/{ids['long']}/history", params={"metric": "val.nope"})
    assert unknown.status_code == 404 and unknown.json()["error"] == f"run {ids['long']} has no metric 'val.nope'; its metrics: train.loss"


# -- compare -------------------------------------------------------------------------------------
def test_compare_shows_the_config_diff_and_summaries(client, stored):
    _, ids = stored
    data = client.get("/api/compare", params={"id": [ids["slow"], ids["fast"]]}).json()
    lr = next(c for c in data["config"] if c["path"] == "trainer.model.optimizer.lr")
    assert lr == {"path": "trainer.model.optimizer.lr", "values": [3e-3, 1e-2], "differs": True}
    epochs = next(c for c in data["config"] if c["path"] == "trainer.looper.epochs")
    assert epochs["differs"] is False
    assert [r["id"] for r in data["runs"]] == [ids["slow"], ids["fast"]] and "val.loss" in data["metrics"]
    one = client.get("/api/compare", params={"id": ids["slow"]})
    assert one.status_code == 400 and one.json()["error"] == "compare needs 2 to 12 run ids (id=A&id=B); received 1"


# -- read-only, edits, safety --------------------------------------------------------------------
def test_the_dashboard_is_read_only_by_default(client, stored):
    _, ids = stored
    tag = client.post(f"/api/runs/{ids['slow']}/tags", json={"add": ["x"]})
    delete = client.delete(f"/api/runs/{ids['slow']}")
    assert tag.status_code == delete.status_code == 403
    assert "start it with `ptdry ui --allow-edit`" in tag.json()["error"]
    assert client.get("/api/info").json()["allow_edit"] is False


def test_with_allow_edit_runs_are_tagged_and_untagged(editable, stored):
    _, ids = stored
    added = editable.post(f"/api/runs/{ids['failed']}/tags", json={"add": ["diverged", "lr-sweep"]})
    assert added.status_code == 200 and added.json()["tags"] == ["diverged", "lr-sweep"]
    removed = editable.post(f"/api/runs/{ids['failed']}/tags", json={"remove": ["lr-sweep"]})
    assert removed.json()["tags"] == ["diverged"]
    bad = editable.post(f"/api/runs/{ids['failed']}/tags", json={"add": [""]})
    assert bad.status_code == 400 and bad.json()["error"] == "a tag must be a non-empty string of at most 100 characters; received ''"


def test_edits_from_another_site_are_refused(editable, stored):
    _, ids = stored
    forged = editable.post(f"/api/runs/{ids['slow']}/tags", json={"add": ["x"]}, headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403 and forged.json()["error"] == "cross-site request refused (Origin 'http://evil.example')"
    form = editable.post(f"/api/runs/{ids['slow']}/tags", content=b"add=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    deleted = editable.delete(f"/api/runs/{ids['slow']}", headers={"Origin": "http://evil.example"})
    assert deleted.status_code == 403 and client_sees(editable, ids["slow"])


def client_sees(client, run_id):
    return client.get(f"/api/runs/{run_id}").status_code == 200


def test_with_allow_edit_a_run_is_deleted_with_its_history(server_uri, db_name):
    db = DBInterface(server_uri, database=db_name)
    obj = Long(steps=3)
    obj.history.log("train", {"loss": 1.0}, step=1)
    rec = Repo(db).add_object(obj, name="doomed")
    app = TestClient(base_url=LOCAL, app=create_app(db, allow_edit=True))
    response = app.delete(f"/api/runs/{rec.id}", headers={"Origin": LOCAL})
    assert response.status_code == 200 and response.json() == {"id": rec.id, "deleted": 1}
    assert app.get(f"/api/runs/{rec.id}").status_code == 404
    assert db.collection("history").count_documents({"run": rec.id}) == 0
    db.client.drop_database(db_name)


def test_a_running_run_is_not_deleted(server_uri, db_name):
    db = DBInterface(server_uri, database=db_name)
    obj = Long(steps=3)
    obj.status.start()
    rec = Repo(db).add_object(obj, name="alive")
    response = TestClient(base_url=LOCAL, app=create_app(db, allow_edit=True)).delete(f"/api/runs/{rec.id}")
    assert response.status_code == 409 and response.json()["error"] == f"run {rec.id} is running; stop it first (or wait until it shows as dead)"
    db.client.drop_database(db_name)


def test_requests_for_another_host_name_are_refused(client):
    """A page on an attacker's domain resolving to 127.0.0.1 (DNS rebinding) gets nothing."""
    assert client.get("/api/runs", headers={"Host": "evil.example"}).status_code == 400


def test_the_database_password_is_never_shown():
    info = TestClient(base_url=LOCAL, app=create_app("mongodb://alice:s3cret@127.0.0.1:9/")).get("/api/info").json()
    assert info["db"] == "mongodb://alice:***@127.0.0.1:9/" and "s3cret" not in json.dumps(info)


def test_an_unreachable_database_answers_503_with_what_to_do():
    app = create_app(DBInterface("mongodb://127.0.0.1:9/", timeout=0.2))
    response = TestClient(app, base_url=LOCAL).get("/api/runs")
    assert response.status_code == 503
    assert response.json()["error"].startswith("cannot reach the database at mongodb://127.0.0.1:9/ within 0.2 s")


def test_pages_and_bundled_scripts_are_served_without_any_cdn(client):
    for path in ("/", "/runs/abc", "/compare?id=a&id=b"):
        page = client.get(path)
        assert page.status_code == 200 and "http" not in page.text.replace("http-equiv", "")
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
    plot = client.get("/static/uPlot.iife.min.js")
    assert plot.status_code == 200 and "uPlot" in plot.text[:200]
    assert "MIT License" in client.get("/static/uPlot.LICENSE").text
    assert "GET /api/runs/{id}/history" in client.get("/api").json()


# -- the command ---------------------------------------------------------------------------------
def test_ptdry_ui_serves_until_interrupted(server_uri, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptdry.cli.main", "--db", server_uri, "ui", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.startswith("ptdry ui: serving http://127.0.0.1:") and "(read-only)" in line, proc.stderr.read()
        url = line.split()[3]
        import httpx

        assert httpx.get(url + "api/info").json()["allow_edit"] is False
        assert httpx.get(url).status_code == 200
    finally:
        proc.send_signal(__import__("signal").SIGINT)
        proc.wait(timeout=20)


def test_ptdry_ui_on_a_busy_port_fails_with_one_line(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = subprocess.run(
            [sys.executable, "-m", "ptdry.ui", "--port", str(port)],
            env={**os.environ, "PTDRY_DB_URI": "mongomock://busy"}, capture_output=True, text=True,
        )  # fmt: skip
    assert code.returncode == 1 and code.stderr.count("\n") == 1
    assert code.stderr.startswith(f"ptdry ui: cannot listen on 127.0.0.1:{port} (Address already in use); choose another --port")


def test_ptdry_ui_with_an_unreachable_database_fails_with_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "ptdry.ui", "--port", "0"],
        env={**os.environ, "PTDRY_DB_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300"}, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("ptdry ui: cannot reach the database at mongodb://127.0.0.1:9/")


def test_ptdry_ui_rejects_a_port_out_of_range(capsys):
    assert cli(["ui", "--port", "70000"]) == 2
    assert capsys.readouterr().err == "ptdry ui: --port must be from 0 to 65535; received 70000\n"


def test_ptdry_ui_on_all_interfaces_warns_that_the_runs_are_exposed():
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptdry.ui", "--host", "0.0.0.0", "--port", "0", "--allow-edit"],
        env={**os.environ, "PTDRY_DB_URI": "mongomock://exposed"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        warning = proc.stderr.readline()
        assert warning == "ptdry ui: listening on 0.0.0.0: anyone who can reach this machine can read your runs and delete them (--allow-edit)\n"
        assert "(tagging and deleting allowed)" in proc.stdout.readline()
    finally:
        proc.send_signal(__import__("signal").SIGINT)
        proc.wait(timeout=20)
