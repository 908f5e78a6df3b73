"""Versions: gap-free under parallel writers racing on new names, and never taken by a failure."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest

from ptdry import Module
from ptdry.db.interface import DBInterface
from ptdry.db.repo import Repo
from ptdry.db.artifacts import FileStore
from ptdry.errors import DBError, SerializationError

ROUNDS = 30


def _race(uri, database, names, barrier, queue) -> None:
    repo = Repo(DBInterface(uri, database=database))
    repo.db  # connect (and check indexes) before the first round
    taken = []
    try:
        for name in names:
            barrier.wait(60)  # every process asks for the first version of `name` at once
            taken.append(repo.next_version(name))
        queue.put(("ok", taken))
    except BaseException as exc:  # report it to the test instead of hanging the barrier
        barrier.abort()
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.server
@pytest.mark.parametrize("processes", [4, 8])
@pytest.mark.parametrize("backend", ["embedded", "mongodb"])
def test_processes_racing_on_new_names_get_unique_gap_free_versions(backend, processes, server_uri, db_name):
    uri = None if backend == "embedded" else server_uri  # the embedded default reuses the session's server
    names = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(ROUNDS)]
    ctx = multiprocessing.get_context("forkserver")  # children fork from a clean server: no client, no
    ctx.set_forkserver_preload(["ptdry.db.repo"])  # inherited sockets, and ptdry imported once
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(uri, db_name, names, barrier, queue)) for _ in range(processes)]
    try:
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in procs]
        assert [r for r in results if r[0] != "ok"] == []
        for i, name in enumerate(names):
            assert sorted(taken[i] for _, taken in results) == list(range(1, processes + 1)), name
    finally:
        for p in procs:
            p.join(30)
        DBInterface(server_uri).client.drop_database(db_name)


def test_a_counter_that_cannot_be_taken_raises_dberror_naming_the_name(any_db, monkeypatch):
    repo = Repo(any_db)
    coll = repo.db.collection("counters")
    monkeypatch.setattr(type(coll), "find_one_and_update", lambda self, *a, **k: None)
    with pytest.raises(DBError, match=r"could not take the next version of 'contended' after 5 attempts"):
        repo.next_version("contended")


class Tiny(Module):
    def __init__(self, value=0):
        self.value = value


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


UNSTORABLE = {
    "an unencodable argument": (lambda: Tiny(object()), r"argument Tiny.value = <object object"),
    "a document over 16 MB": (lambda: Tiny("x" * (17 * 2**20)), r"Tiny: the document is .* MiB, over MongoDB's 16 MiB limit; most of it is definition.kwargs.value"),
    "a NUL in a key": (lambda: Tiny({"a\x00b": 1}), r"Tiny: field name config.value\['a\\x00b'\] holds a NUL character"),
    "900-deep nesting": (lambda: Tiny(_nested(900)), r"Tiny.value\[0\]\[0\]\[0\].* nests 90\d levels deep, too deep to store"),
    "150-deep nesting": (lambda: Tiny(_nested(150)), r"Tiny: config.value\[0\]\[0\].* nests more than 100 lists or dicts deep"),
}


def _artifact_count(repo: Repo) -> int:
    if repo.artifacts.kind == "gridfs":
        return repo.db.collection("fs.files").count_documents({})
    return sum(1 for p in repo.artifacts.root.glob("??/*") if p.is_file())  # blobs, not reference markers


@pytest.mark.parametrize("case", sorted(UNSTORABLE))
def test_a_failed_add_object_takes_no_version_and_leaves_no_artifact(case, any_db, tmp_path):
    make, message = UNSTORABLE[case]
    for repo in (Repo(any_db), Repo(any_db, artifacts=FileStore(tmp_path / "files"), project="files")):
        with pytest.raises(SerializationError, match=message):
            repo.add_object(make(), name="unstorable")
        assert _artifact_count(repo) == 0
        assert repo.modules.count_documents({}) == 0
        assert repo.add_object(Tiny(1), name="unstorable").version == 1  # no version was taken
        repo.delete(None)


def test_a_write_the_server_refuses_is_a_dberror_and_leaves_no_artifact(any_db, monkeypatch):
    from pymongo.errors import WriteError

    repo = Repo(any_db)

    def refuse(new, changed):
        repo.modules.insert_one(new[0])  # the first document went in, then the server said no
        raise WriteError("document failed validation", 121)

    monkeypatch.setattr(repo, "_write_documents", refuse)
    with pytest.raises(DBError, match=r"the database refused to store Tiny .* \(WriteError: document failed validation\)"):
        repo.add_object(Tiny(2), name="refused")
    assert repo.modules.count_documents({}) == 0
    assert _artifact_count(repo) == 0


def test_a_refused_write_object_keeps_the_state_its_caller_stored(any_db, monkeypatch):
    from pymongo.errors import WriteError

    repo = Repo(any_db)
    obj = Tiny(3)
    state = repo.artifacts.put(b"the run's final state", name="state", format="ptdry-state")  # e.g. uploaded from a journal

    def refuse(new, changed):
        raise WriteError("document failed validation", 121)

    monkeypatch.setattr(repo, "_write_documents", refuse)
    with pytest.raises(DBError, match=r"the database refused to store Tiny .* nothing new was kept"):
        repo.write_object(repo.object_contents(obj), state, name="refused")
    assert repo.artifact_bytes(state) == b"the run's final state"  # the journal applies it again later
