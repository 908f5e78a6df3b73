"""The embedded default server: start, reuse, share between processes, stop, restart."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pymongo
import pytest

from ptdry import ServerUnavailableError
from ptdry.db.interface import DBInterface
from ptdry.db.server import EmbeddedServer, embedded_uri

pytestmark = pytest.mark.server


@pytest.fixture
def own_server(tmp_path):
    server = EmbeddedServer(tmp_path / "home")
    yield server
    server.stop()


def test_start_returns_a_uri_of_a_server_that_answers(own_server):
    uri = own_server.start()
    assert uri.startswith("mongodb://127.0.0.1:") and "retryWrites=false" in uri
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000)
    assert client.admin.command("ping")["ok"] == 1
    client.close()


def test_a_second_start_reuses_the_running_server(own_server):
    first = own_server.start()
    pid = own_server.status()["pid"]
    assert EmbeddedServer(own_server.home).start() == first
    assert own_server.status()["pid"] == pid


def test_another_process_shares_the_server_of_the_same_home(own_server):
    uri = own_server.start()
    code = textwrap.dedent(
        f"""
        from ptdry.db.server import embedded_uri
        print(embedded_uri({str(own_server.home)!r}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == uri


def test_concurrent_starts_make_one_server(tmp_path):
    home = tmp_path / "race"
    code = f"from ptdry.db.server import embedded_uri; print(embedded_uri({str(home)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        uris = {p.communicate(timeout=60)[0].strip() for p in procs}
        assert len(uris) == 1 and all(p.returncode == 0 for p in procs)
    finally:
        EmbeddedServer(home).stop()


def test_stop_ends_the_server_and_status_says_so(own_server):
    own_server.start()
    assert own_server.status()["running"]
    assert own_server.stop() is True
    assert own_server.status()["running"] is False
    assert own_server.stop() is False


def test_data_survives_a_restart_on_the_same_port(own_server):
    uri = own_server.start()
    client = pymongo.MongoClient(uri)
    client.t.c.insert_one({"_id": 1, "x": "kept"})
    client.close()
    own_server.stop()
    again = own_server.start()
    assert again == uri  # same port, so open clients reconnect
    client = pymongo.MongoClient(again)
    assert client.t.c.find_one({"_id": 1})["x"] == "kept"
    client.close()


def test_dbinterface_without_uri_uses_the_embedded_server_of_ptdry_home(embedded_server):
    db = DBInterface()
    assert db.kind == "embedded"
    db.collection("probe").insert_one({"ok": 1})
    assert embedded_uri() == embedded_server.start()
    db.client.drop_database(db.database) if db.database.startswith("t_") else db.collection("probe").drop()
    db.close()


def test_a_server_that_cannot_start_raises_quoting_its_log(tmp_path):
    server = EmbeddedServer(tmp_path / "bad")
    (tmp_path / "bad" / "db").mkdir(parents=True)
    (tmp_path / "bad" / "db" / "data").write_text("a file where the storage directory belongs")
    with pytest.raises(ServerUnavailableError, match=r"did not start within .* Its log .*server.log"):
        server.start(timeout=20)


def test_a_missing_interpreter_raises_a_ptdry_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    with pytest.raises(ServerUnavailableError, match="cannot run the embedded database"):
        EmbeddedServer(tmp_path / "h").start(timeout=3)
