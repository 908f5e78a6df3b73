"""History rollups and down-sampled curves: what a plot of a long run reads."""

from __future__ import annotations

import math

import pytest

from ptdry import Module, Statistic
from ptdry.db.history_query import metric_series, run_metrics
from ptdry.db.history_rollup import COLLECTION, rollup_updates, write_rollups
from ptdry.db.history_store import history_document, insert_history, insert_new, truncate_history
from ptdry.db.journal import RunJournal, db_key
from ptdry.db.run_ops import sync_journals
from ptdry.db.run_writer import RunWriter
from ptdry.db.interface import DBInterface
from ptdry.db.repo import Repo
from ptdry.errors import ConfigError, NotFoundError


def _docs(run, n, phase="train", start=0, value=lambda s: 1.0 / (s + 1), epoch_len=100):
    return [
        history_document(run, start + i, Statistic(phase, {"loss": value(start + i)}, step=start + i, epoch=(start + i) // epoch_len))
        for i in range(n)
    ]


def _rollups(db, run):
    return sorted(db.collection(COLLECTION).find({"run": run}, {"_id": 0}), key=lambda d: (d["level"], d["b"]))


def test_a_bucket_keeps_the_first_last_lowest_and_highest_point_of_each_metric(any_db):
    values = {0: 3.0, 1: 1.0, 2: 7.0, 3: 2.0}
    insert_history(any_db.collection("history"), _docs("r", 4, value=values.__getitem__))
    finest = _rollups(any_db, "r")[0]
    assert (finest["level"], finest["b"], finest["phase"]) == (1, 0, "train")
    assert finest["m"]["loss"] == {"first": [0, 3.0, 0], "last": [3, 2.0, 0], "lo": [1.0, 1, 0], "hi": [7.0, 2, 0]}


def test_rollups_do_not_depend_on_batching_order_or_repetition(any_db):
    docs = _docs("a", 300, value=lambda s: math.sin(s / 7))
    coll = any_db.collection("history")
    insert_history(coll, docs)
    once = [{k: v for k, v in d.items()} for d in _rollups(any_db, "a")]
    for d in docs:
        d["run"] = "b"
    for chunk in (docs[200:], docs[:50], docs[50:200], docs[120:260]):  # out of order, with repeats
        write_rollups(coll, chunk)
    again = [{**d, "run": "a"} for d in _rollups(any_db, "b")]
    assert again == once


def test_nan_and_records_without_a_step_are_left_out(any_db):
    docs = [
        {"_id": "r:0", "run": "r", "seq": 0, "step": None, "epoch": None, "phase": "", "metrics": {"loss": 2.0}},
        {"_id": "r:1", "run": "r", "seq": 1, "step": 7, "epoch": 0, "phase": "", "metrics": {"loss": float("nan")}},
        {"_id": "r:2", "run": "r", "seq": 2, "step": 8, "epoch": 0, "phase": "", "metrics": {"loss": 1.0}},
    ]
    assert list(rollup_updates(docs[:2])) == []
    insert_history(any_db.collection("history"), docs)
    assert metric_series(any_db, "r")["series"]["loss"]["step"] == [8]


def test_a_short_run_gives_its_raw_points(any_db):
    insert_history(any_db.collection("history"), _docs("r", 50))
    curve = metric_series(any_db, "r", ["train.loss"])["series"]["train.loss"]
    assert curve["source"] == "raw" and curve["step"] == list(range(50))
    assert curve["value"][3] == 0.25 and curve["epoch"][:2] == [0, 0]


@pytest.fixture
def mock_db(db_name):
    """Long runs on mongomock: the shared server's rollup semantics are covered above."""
    return DBInterface(f"mongomock://{db_name}")


def test_a_long_run_is_drawn_from_rollups_with_its_extremes_kept(mock_db):
    any_db = mock_db
    spike = lambda s: 100.0 if s == 3333 else (-5.0 if s == 4111 else 1.0 / (s + 1))  # noqa: E731
    insert_history(any_db.collection("history"), _docs("long", 5000, value=spike))
    result = metric_series(any_db, "long", ["train.loss"], points=20)
    curve = result["series"]["train.loss"]
    assert curve["source"].startswith("rollup level") and len(curve["step"]) <= 4 * 20
    assert max(curve["value"]) == 100.0 and curve["step"][curve["value"].index(100.0)] == 3333
    assert min(curve["value"]) == -5.0
    assert (result["start"], result["end"]) == (0, 4999) and curve["step"] == sorted(curve["step"])


def test_zooming_in_reads_the_range_at_full_resolution(mock_db):
    any_db = mock_db
    insert_history(any_db.collection("history"), _docs("z", 5000))
    result = metric_series(any_db, "z", ["train.loss"], points=100, start=1000, end=1099)
    curve = result["series"]["train.loss"]
    assert curve["source"] == "raw" and curve["step"] == list(range(1000, 1100))


def test_metrics_of_several_phases_come_in_one_call(any_db):
    coll = any_db.collection("history")
    insert_history(coll, _docs("p", 40) + _docs("p", 4, phase="val", start=1000, value=lambda s: 0.5))
    assert run_metrics(any_db, "p") == ["train.loss", "val.loss"]
    series = metric_series(any_db, "p")["series"]
    assert set(series) == {"train.loss", "val.loss"} and series["val.loss"]["value"] == [0.5] * 4


def test_an_unknown_metric_is_named_with_the_ones_the_run_has(any_db):
    insert_history(any_db.collection("history"), _docs("u", 10))
    with pytest.raises(NotFoundError, match=r"run u has no metric 'val.nope'; its metrics: train.loss"):
        metric_series(any_db, "u", ["val.nope"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"points": 1}, r"points must be an integer from 2 to 20000 \(the plot's width\); received 1"),
        ({"start": float("inf")}, r"start must be a finite step number or None; received inf"),
        ({"start": 9, "end": 3}, r"start must not be after end; received start=9, end=3"),
    ],
)
def test_bad_arguments_are_refused(any_db, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        metric_series(any_db, "r", **kwargs)


def test_a_run_stored_before_rollups_existed_is_read_raw(any_db):
    insert_new(any_db.collection("history"), _docs("old", 30) + _docs("old", 2, phase="val", start=100))
    assert run_metrics(any_db, "old") == []
    result = metric_series(any_db, "old", ["val.loss"])
    assert result["series"]["val.loss"]["step"] == [100, 101] and result["series"]["val.loss"]["source"] == "raw"
    with pytest.raises(NotFoundError, match=r"run old has no metric 'x'; its metrics: train.loss, val.loss"):
        metric_series(any_db, "old", ["x"])


def test_a_runs_writer_and_ptdry_sync_write_rollups(any_db, tmp_path):
    repo = Repo(any_db)
    writer = RunWriter(any_db, "w", journal_dir=tmp_path, sync_others=False)
    for step in range(20):
        writer.write(Statistic("train", {"loss": float(step)}, step=step))
    assert writer.close()
    assert run_metrics(any_db, "w") == ["train.loss"]
    left = repo.add_object(Logged()).id  # a run whose process was cut off from the database
    journal = RunJournal.open(tmp_path, left, db_key(any_db))
    journal.append([history_document(left, 0, Statistic("val", {"acc": 0.5}, step=1))], fsync=True)
    journal.release()
    assert sync_journals(any_db, tmp_path)[left]["records"] == 1
    assert run_metrics(any_db, left) == ["val.acc"]


def test_dropping_a_resumed_runs_records_rebuilds_their_rollups(any_db):
    coll = any_db.collection("history")
    insert_history(coll, _docs("r", 3000, value=lambda s: float(s)))  # the run, up to where it was killed
    insert_history(coll, _docs("fresh", 1500, value=lambda s: float(s)))
    truncate_history(coll, "r", 1500)  # resumed from its checkpoint at step 1500...
    redone = _docs("r", 500, start=1500, value=lambda s: -float(s))  # ...it logs other values
    insert_history(coll, redone)
    insert_history(coll, [{**d, "_id": "fresh" + d["_id"], "run": "fresh"} for d in redone])
    assert [{**d, "run": "fresh"} for d in _rollups(any_db, "r")] == _rollups(any_db, "fresh")
    curve = metric_series(any_db, "r", ["train.loss"], points=10)["series"]["train.loss"]
    assert max(curve["step"]) == 1999 and max(curve["value"]) == 1499.0


class Logged(Module):
    def __init__(self, k=1):
        self.k = k


def test_deleting_a_run_removes_its_rollups(any_db):
    repo = Repo(any_db)
    obj = Logged()
    obj.history.log("val", {"loss": 0.5}, step=1)
    repo.add_object(obj)
    assert run_metrics(any_db, obj.dry_id) == ["val.loss"]
    repo.delete({"_id": obj.dry_id})
    assert any_db.collection(COLLECTION).count_documents({"run": obj.dry_id}) == 0
