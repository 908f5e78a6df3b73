"""Versions: gap-free under parallel writers racing on new names, and never taken by a failure."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest

from ptdry import Module
from ptdry.db.interface import DBInterface
from ptdry.db.repo import Repo
from ptdry.errors import DBError

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
