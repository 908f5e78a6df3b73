"""RunWriter and the run journal: everything a run writes goes through a journal, in order,
idempotently; an outage costs no memory and loses nothing; `sync_journals` completes it."""

from __future__ import annotations

import pytest

from ptdry import Statistic
from ptdry.db.history_store import history_document, read_history
from ptdry.db.interface import DBInterface
from ptdry.db.journal import RunJournal, db_key
from ptdry.db.run_ops import sync_journals
from ptdry.db.run_writer import RunWriter
from ptdry.db.server import EmbeddedServer
from ptdry.errors import ConfigError

DOWN = "mongodb://127.0.0.1:9/"  # nothing listens on the discard port


def _stats(run, steps, value=1.0):
    return [Statistic("step", {"loss": value / (s + 1)}, step=s, epoch=1 + s // 100) for s in steps]


def test_records_reach_the_database_in_order_and_the_journal_goes(any_db, tmp_path):
    writer = RunWriter(any_db, "run-a", journal_dir=tmp_path, sync_others=False)
    for stat in _stats("run-a", range(1, 251)):
        writer.write(stat)
    assert writer.close() is True
    stats = list(read_history(any_db.collection("history"), "run-a"))
    assert [s.step for s in stats] == list(range(1, 251)) and stats[9]["step.loss"] == 1 / 11
    assert not list(tmp_path.iterdir())  # journal and position removed once everything is stored


def test_an_unreachable_database_keeps_everything_in_the_journal_not_in_memory(tmp_path):
    writer = RunWriter(DBInterface(DOWN, timeout=0.2), "run-b", journal_dir=tmp_path, queue_limit=500, timeout=0.2)
    for stat in _stats("run-b", range(5000)):
        writer.write(stat)
        assert len(writer._queue) < 500  # the loop's thread journals when the queue is full
    writer.submit({"op": "truncate", "seq": 5000})
    assert writer.close(timeout=0.5) is False
    journal = RunJournal.acquire(tmp_path / "run-b.jsonl")
    ops, _ = journal.read(journal.applied, 10_000)
    journal.release()
    assert len(ops) == 5001 and ops[0]["_id"] == "run-b:0" and ops[-1] == {"op": "truncate", "seq": 5000}


def test_a_journal_left_by_a_killed_process_is_applied_before_the_resumed_run_writes(any_db, tmp_path):
    journal = RunJournal.open(tmp_path, "run-c", db_key(any_db))
    journal.append([history_document("run-c", i, s) for i, s in enumerate(_stats("run-c", range(6), 2.0))], fsync=True)
    journal.release()  # the process dies; its run resumes from a checkpoint at record 4
    resumed = RunWriter(any_db, "run-c", journal_dir=tmp_path, start_seq=4, sync_others=False)
    resumed.submit({"op": "truncate", "seq": 4})
    for stat in _stats("run-c", range(4, 8), 1.0):
        resumed.write(stat)
    assert resumed.close() is True
    stats = list(read_history(any_db.collection("history"), "run-c"))
    assert [s.step for s in stats] == list(range(8))
    assert [s["step.loss"] for s in stats[3:5]] == [2.0 / 4, 1.0 / 5]  # kept before 4, rewritten from 4


def test_a_live_run_holds_its_journal(any_db, tmp_path):
    writer = RunWriter(any_db, "run-d", journal_dir=tmp_path, sync_others=False)
    try:
        assert RunJournal.is_live(tmp_path, "run-d")
        with pytest.raises(ConfigError, match="run run-d is live in another process on this machine"):
            RunJournal.open(tmp_path, "run-d", db_key(any_db))
        any_db.collection("modules").insert_one({"_id": "run-d"})
        assert sync_journals(any_db, tmp_path) == {}  # not applied by anyone else meanwhile
    finally:
        writer.close()
    assert not RunJournal.is_live(tmp_path, "run-d")


def test_sync_applies_only_the_journals_of_its_database(tmp_path):
    here, there = DBInterface("mongomock://sync-here"), DBInterface("mongomock://sync-there")
    for db, run in ((here, "r-here"), (there, "r-there")):
        db.collection("modules").insert_one({"_id": run})
        journal = RunJournal.open(tmp_path, run, db_key(db))
        journal.append([history_document(run, 0, Statistic("val", {"loss": 1.0}))], fsync=True)
        journal.release()
    assert sync_journals(here, tmp_path) == {"r-here": {"records": 1, "checkpoints": 0, "finished": False}}
    assert here.collection("history").count_documents({}) == 1 and (tmp_path / "r-there.jsonl").exists()
    assert sync_journals(there, tmp_path)["r-there"]["records"] == 1


def test_a_journal_of_a_deleted_run_is_dropped(tmp_path, caplog):
    db = DBInterface("mongomock://sync-deleted")
    journal = RunJournal.open(tmp_path, "gone", db_key(db))
    journal.append([history_document("gone", 0, Statistic("val", {"loss": 1.0}))], fsync=True)
    journal.release()
    assert sync_journals(db, tmp_path) == {"gone": {"dropped": True}}
    assert "run gone is not in" in caplog.text and not (tmp_path / "gone.jsonl").exists()
    assert db.collection("history").count_documents({}) == 0


def test_a_torn_last_line_is_skipped_and_the_next_operation_starts_a_new_line(any_db, tmp_path):
    journal = RunJournal.open(tmp_path, "run-t", db_key(any_db))
    journal.append([history_document("run-t", 0, Statistic("val", {"loss": 1.0}))], fsync=True)
    journal._file.write(b'{"_id": "run-t:1", "ru')  # killed mid-write
    journal.release()
    writer = RunWriter(any_db, "run-t", journal_dir=tmp_path, start_seq=1, sync_others=False)
    writer.write(Statistic("val", {"loss": 0.5}))
    assert writer.close() is True
    assert [s["val.loss"] for s in read_history(any_db.collection("history"), "run-t")] == [1.0, 0.5]


@pytest.mark.slow
@pytest.mark.server
def test_records_written_while_the_server_was_down_are_synced_when_it_is_back(tmp_path):
    server = EmbeddedServer(tmp_path / "home")
    uri = server.start()
    server.stop()  # the next start reuses the port: the same URI
    try:
        writer = RunWriter(DBInterface(uri, timeout=0.3), "run-e", journal_dir=tmp_path / "j", timeout=0.3, sync_others=False)
        for stat in _stats("run-e", range(300)):
            writer.write(stat)
        assert writer.close(timeout=0.5) is False
        assert server.start() == uri
        db = DBInterface(uri)
        db.collection("modules").insert_one({"_id": "run-e"})
        assert sync_journals(db, tmp_path / "j") == {"run-e": {"records": 300, "checkpoints": 0, "finished": False}}
        assert db.collection("history").count_documents({"run": "run-e"}) == 300
    finally:
        server.stop()


def test_read_history_streams_a_range_of_records(any_db, tmp_path):
    writer = RunWriter(any_db, "run-f", journal_dir=tmp_path, sync_others=False)
    for step in range(20):
        writer.write(Statistic("val", {"accuracy": step / 20}, step=step, epoch=step))
    writer.close()
    coll = any_db.collection("history")
    assert [s.step for s in read_history(coll, "run-f", 0, 5)] == [0, 1, 2, 3, 4]
    assert [s.step for s in read_history(coll, "run-f", 17)] == [17, 18, 19]


@pytest.mark.slow
@pytest.mark.server
def test_a_run_with_more_points_than_one_document_could_hold_is_stored(server_uri, db_name, tmp_path):
    db = DBInterface(server_uri, database=db_name)
    writer = RunWriter(db, "big", journal_dir=tmp_path, batch_size=5000, sync_others=False)
    n = 140_000  # ~19 MB of records: more than one 16 MB document could hold
    for step in range(n):
        writer.write(Statistic("step", {"loss": 0.5, "lr": 1e-3}, step=step, epoch=step // 1000))
    assert writer.close(timeout=300) is True
    assert db.collection("history").count_documents({"run": "big"}) == n
    size = db.db.command("collStats", "history").get("size")
    assert size is None or size > 16 * 2**20
    db.client.drop_database(db_name)


def test_a_live_run_storage_saves_lists_retains_and_loads_without_the_database(tmp_path):
    from ptdry.db.repo import Repo
    from ptdry.train.callbacks.checkpoint import Checkpoint
    from ptdry.train.run_storage import RunStorage

    db = DBInterface(DOWN, timeout=0.2)  # any call to it from here would raise
    writer = RunWriter(db, "run-s", journal_dir=tmp_path, timeout=0.2, sync_others=False)
    storage = RunStorage(Repo(db), "run-s", writer=writer, artifacts=[])
    policy = Checkpoint(save_top_k=0, save_last=2, storage=storage)
    for step in range(1, 6):
        storage.save(f"ckpt-{step}", {"w": float(step)}, {"step": step, "reason": "periodic", "prefix": "ckpt"})
        policy.retain(storage)
    assert [m["name"] for m in storage.list()] == ["ckpt-4", "ckpt-5"]
    assert storage.load("ckpt-5")["w"] == 5.0
    assert writer.close(timeout=0.3) is False
    journal = RunJournal.acquire(tmp_path / "run-s.jsonl")
    ops, _ = journal.read(0, 100)
    journal.release()
    kinds = [op["op"] + (f":{op['record']['name'][-1]}") for op in ops]  # all journaled, in order
    assert kinds == [
        "checkpoint:1", "checkpoint:2", "checkpoint:3", "remove:1", "checkpoint:4", "remove:2", "checkpoint:5", "remove:3"
    ]  # fmt: skip


def test_checkpoints_left_in_the_pending_index_of_an_earlier_ptdry_are_attached(tmp_path, monkeypatch):
    import json

    from ptdry.db.artifacts import FileStore

    monkeypatch.setenv("PTDRY_HOME", str(tmp_path))
    db = DBInterface("mongomock://sync-pending")
    db.collection("modules").insert_one({"_id": "old-run", "artifacts": []})
    record = FileStore(tmp_path / "artifacts").put(b"state bytes", name="checkpoint/ckpt-1", format="ptdry-state")
    (tmp_path / "pending").mkdir()
    index = {"run": "old-run", "records": [{**record, "meta": {"step": 1}}]}
    (tmp_path / "pending" / "old-run.json").write_text(json.dumps(index))
    assert sync_journals(db)["old-run"]["checkpoints"] == 1
    doc = db.collection("modules").find_one({"_id": "old-run"})
    assert [a["name"] for a in doc["artifacts"]] == ["checkpoint/ckpt-1"] and not (tmp_path / "pending" / "old-run.json").exists()


def test_a_batch_keeps_the_order_that_matters_and_skips_checkpoints_removed_within_it(tmp_path, monkeypatch):
    from ptdry.db.artifacts import FileStore
    from ptdry.db.repo import Repo
    from ptdry.db.run_ops import apply_ops

    monkeypatch.setenv("PTDRY_HOME", str(tmp_path))
    repo = Repo(DBInterface("mongomock://apply-ops"), artifacts=FileStore(tmp_path / "artifacts"))
    repo.modules.insert_one({"_id": "r", "artifacts": []})
    records = {n: repo.artifacts.put(f"state {n}".encode(), name=f"checkpoint/{n}") for n in ("a", "b", "c")}
    stat = lambda seq, v: history_document("r", seq, Statistic("step", {"loss": v}, step=seq))  # noqa: E731
    apply_ops(repo, "r", [stat(0, 1.0), stat(1, 1.0), stat(2, 1.0)])  # a killed process's records
    ops = [
        {"op": "truncate", "seq": 1},  # a resumed run from record 1 on
        stat(1, 2.0),
        {"op": "checkpoint", "record": records["a"]},
        {"op": "checkpoint", "record": records["b"]},
        stat(2, 2.0),
        {"op": "remove", "record": records["a"]},
        {"op": "checkpoint", "record": records["c"]},
        {"op": "checkpoint", "record": records["a"]},  # the same name saved again
    ]
    apply_ops(repo, "r", ops)
    history = repo.db.collection("history")
    assert [(d["seq"], d["metrics"]["loss"]) for d in history.find({"run": "r"}).sort("seq", 1)] == [(0, 1.0), (1, 2.0), (2, 2.0)]
    doc = repo.modules.find_one({"_id": "r"})
    assert sorted(a["name"] for a in doc["artifacts"]) == ["checkpoint/a", "checkpoint/b", "checkpoint/c"]
    assert all(repo.artifacts.get(a) for a in doc["artifacts"])  # a's bytes were not released
    apply_ops(repo, "r", ops)  # applied twice (a crash before its offset was recorded): the same
    assert history.count_documents({"run": "r"}) == 3 and len(repo.modules.find_one({"_id": "r"})["artifacts"]) == 3
    gone = repo.artifacts.put(b"state d", name="checkpoint/d")
    apply_ops(repo, "r", [{"op": "checkpoint", "record": gone}, {"op": "remove", "record": gone}])
    assert not (tmp_path / "artifacts" / gone["ref"][:2] / gone["ref"]).exists()
    assert len(repo.modules.find_one({"_id": "r"})["artifacts"]) == 3


def test_a_run_that_ends_with_writes_left_says_so_on_its_document_until_its_end_is_applied(tmp_path, monkeypatch, caplog):
    from ptdry import Looper
    from ptdry.db.repo import Repo

    monkeypatch.setenv("PTDRY_HOME", str(tmp_path))
    repo = Repo("mongomock://history-pending")
    run = Looper(epochs=2)  # any stored object stands for the run here
    repo.add_object(run)
    writer = RunWriter(repo.db, run.dry_id, journal_dir=tmp_path / "journal", sync_others=False)
    writer.write(_stats(run.dry_id, [1])[0])
    lost = {"name": "checkpoint/ckpt-1", "store": "spool", "ref": "gone", "sha256": "0" * 64, "bytes": 1}
    writer.submit({"op": "checkpoint", "record": lost})  # its spooled file is missing: refused
    assert writer.close(timeout=2.0) is False
    assert "the database refused a journaled operation" in caplog.text
    assert repo.modules.find_one({"_id": run.dry_id})["history_pending"] is True  # shown by `ptdry ui`
    state = repo.artifacts.put(b"final state", name="state")
    repo.write_object(repo.object_contents(run), state)  # the run's end, applied
    assert "history_pending" not in repo.modules.find_one({"_id": run.dry_id})
