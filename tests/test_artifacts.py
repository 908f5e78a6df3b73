"""Artifact stores: the content-addressed file store shared by every database of one home."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ptdry import Module
from ptdry.db.artifacts import FileStore
from ptdry.db.interface import DBInterface
from ptdry.db.repo import Repo
from ptdry.errors import NotFoundError


class Weights(Module):
    """Deterministic state: two databases storing it store the same bytes."""

    def __init__(self, n=4):
        self.w = np.arange(n, dtype=np.float64)

    def extra_state(self):
        return {"w": self.w}

    def load_extra_state(self, state):
        self.w = state["w"]


def blobs(root) -> list:
    return sorted(p.name for p in root.glob("??/*") if p.is_file())


def test_identical_bytes_are_stored_once_and_deleted_with_their_last_reference(tmp_path):
    a, b = FileStore(tmp_path, owner="db-a"), FileStore(tmp_path, owner="db-b")
    rec = a.put(b"weights", name="state")
    assert b.put(b"weights", name="state") == rec
    assert blobs(tmp_path) == [rec["ref"]]
    a.delete(rec)
    assert b.get(rec) == b"weights"  # db-b still refers to it
    a.delete(rec)  # deleting twice is harmless
    b.delete(rec)
    assert blobs(tmp_path) == []
    with pytest.raises(NotFoundError, match=r"artifact file .* is missing"):
        b.get(rec)


def test_a_blob_written_before_reference_markers_is_deleted_as_before(tmp_path):
    store = FileStore(tmp_path, owner="db-a")
    rec = store.put(b"old", name="state")
    (tmp_path / rec["ref"][:2] / f"{rec['ref']}.refs" / store._marker(rec["ref"]).name).unlink()
    store.delete(rec)
    assert blobs(tmp_path) == []


def test_a_put_racing_deletes_of_other_databases_never_loses_the_blob(tmp_path):
    keeper = FileStore(tmp_path, owner="keeper")
    others = [FileStore(tmp_path, owner=f"other-{i}") for i in range(3)]
    rec = keeper.put(b"shared", name="state")
    keeper.delete(rec)

    def churn(store: FileStore) -> None:
        for _ in range(50):
            store.delete(store.put(b"shared", name="state"))

    threads = [threading.Thread(target=churn, args=(s,)) for s in others]
    for t in threads:
        t.start()
    for _ in range(50):
        keeper.put(b"shared", name="state")
        assert keeper.get(rec) == b"shared"
    for t in threads:
        t.join()
    assert keeper.get(rec) == b"shared"


@pytest.mark.server
def test_deleting_a_run_in_one_database_keeps_the_file_another_database_uses(server_uri, db_name):
    # Both are the embedded default of one $PTDRY_HOME: one file store, two databases.
    one, two = DBInterface(database=f"{db_name}_1"), DBInterface(database=f"{db_name}_2")
    try:
        first, second = Repo(one), Repo(two)
        assert first.artifacts.kind == "file" and first.artifacts.root == second.artifacts.root
        ref = first.add_object(Weights(), name="w")["artifacts"][0]["ref"]
        assert second.add_object(Weights(), name="w")["artifacts"][0]["ref"] == ref
        assert first.delete({"name": "w"}) == 1
        assert np.array_equal(Repo(two).get_one({"name": "w"}).w, np.arange(4.0))
        assert second.delete({"name": "w"}) == 1
        assert ref not in blobs(first.artifacts.root)
    finally:
        for db in (one, two):
            db.client.drop_database(db.database)


def test_a_store_locked_too_long_by_another_process_raises_dberror(tmp_path, monkeypatch):
    from ptdry.db.file_lock import file_lock
    from ptdry.errors import DBError

    store = FileStore(tmp_path, owner="db-a")
    monkeypatch.setattr(FileStore, "LOCK_TIMEOUT", 0.1)
    with file_lock(tmp_path / ".lock", 1.0):  # a separate open file: flock makes it wait
        with pytest.raises(DBError, match=r"another process holds .*\.lock for more than 0\.1 s; is a process stuck writing a checkpoint\?"):
            store.put(b"x", name="state")
    assert store.get(store.put(b"x", name="state")) == b"x"
