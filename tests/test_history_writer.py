"""HistoryWriter: batches in the background, a journal for outages, nothing written twice."""

from __future__ import annotations

import pytest

from ptdry import Statistic
from ptdry.db.history_writer import HistoryWriter, read_history, sync_journals
from ptdry.db.interface import DBInterface


def _down():
    raise ConnectionError("database down")


def test_records_reach_the_database_in_order(any_db, tmp_path):
    coll = any_db.collection("history")
    writer = HistoryWriter(lambda: coll, "run-a", journal_dir=tmp_path)
    for step in range(1, 251):
        writer.write(Statistic("step", {"loss": 1.0 / step}, step=step, epoch=1 + step // 100))
    assert writer.close() is True
    stats = read_history(coll, "run-a")
    assert [s.step for s in stats] == list(range(1, 251)) and stats[9]["step.loss"] == 0.1
    assert not list(tmp_path.glob("*.jsonl"))  # journal removed once everything is stored


def test_an_outage_keeps_records_in_the_journal_until_sync(any_db, tmp_path):
    writer = HistoryWriter(_down, "run-b", journal_dir=tmp_path, flush_interval=0.05)
    for step in range(10):
        writer.write(Statistic("step", {"loss": float(step)}, step=step))
    assert writer.close(timeout=0.3) is False and (tmp_path / "run-b.jsonl").exists()
    coll = any_db.collection("history")
    assert sync_journals(coll, tmp_path) == {"run-b": 10}
    assert sync_journals(coll, tmp_path) == {}
    assert coll.count_documents({"run": "run-b"}) == 10


def test_a_new_writer_picks_up_a_journal_left_by_a_crash_without_duplicates(any_db, tmp_path):
    coll = any_db.collection("history")
    crashed = HistoryWriter(_down, "run-c", journal_dir=tmp_path)
    for step in range(6):
        crashed.write(Statistic("step", {"loss": 1.0}, step=step))
    crashed.journal_now()  # what a Session does at each checkpoint
    # the process dies here; a resumed run continues from a checkpoint taken at seq 4
    resumed = HistoryWriter(lambda: coll, "run-c", journal_dir=tmp_path, start_seq=4)
    for step in range(4, 8):
        resumed.write(Statistic("step", {"loss": 1.0}, step=step))
    assert resumed.close() is True
    assert [d["seq"] for d in coll.find({"run": "run-c"}).sort("seq", 1)] == list(range(8))


def test_read_history_stops_at_the_requested_length(any_db, tmp_path):
    coll = any_db.collection("history")
    writer = HistoryWriter(lambda: coll, "run-d", journal_dir=tmp_path)
    for step in range(20):
        writer.write(Statistic("val", {"accuracy": step / 20}, step=step, epoch=step))
    writer.close()
    assert [s.step for s in read_history(coll, "run-d", 5)] == [0, 1, 2, 3, 4]


@pytest.mark.slow
@pytest.mark.server
def test_a_run_with_more_points_than_one_document_could_hold_is_stored(server_uri, db_name, tmp_path):
    db = DBInterface(server_uri, database=db_name)
    coll = db.collection("history")
    writer = HistoryWriter(lambda: coll, "big", journal_dir=tmp_path, batch_size=5000)
    n = 140_000  # ~19 MB of records: more than one 16 MB document could hold
    for step in range(n):
        writer.write(Statistic("step", {"loss": 0.5, "lr": 1e-3}, step=step, epoch=step // 1000))
    assert writer.close(timeout=300) is True
    assert coll.count_documents({"run": "big"}) == n
    size = db.db.command("collStats", "history").get("size")
    assert size is None or size > 16 * 2**20
    db.client.drop_database(db_name)
