"""Metamodules: Status, Statistic, History, State and Configuration serialize themselves."""

from __future__ import annotations

import datetime as dt
import math

import bson
import numpy as np
import pytest
import torch

from ptdry import Callbacks, Configuration, History, Module, State, Statistic, Status
from ptdry.core.history import metric_mode
from ptdry.core.metamodule import Metamodule
from ptdry.errors import ConfigError, NotReadyError, PtdryError


def through_bson(doc):
    return bson.decode(bson.encode(doc))


class Job(Module):
    def __init__(self, ready=True):
        self.ready = ready

    def problems(self):
        return super().problems() + ([] if self.ready else ["no data loaded", "learning rate is zero"])


class Pipeline(Module):
    def __init__(self, job, name="pipe"):
        self.job = job


# -- every Module has them ------------------------------------------------------------------------
def test_every_module_has_its_metamodules():
    j = Job()
    assert isinstance(j.configuration, Configuration)
    assert isinstance(j.status, Status) and j.status is j.status
    assert isinstance(j.statistics, Statistic) and j.statistics.name == "job"
    assert isinstance(j.history, History) and j.history is j.history
    assert isinstance(j.callbacks, Callbacks) and j.callbacks is j.callbacks
    assert isinstance(j.state_dict(), State)
    for meta in (j.configuration, j.status, j.statistics, j.history, j.callbacks, j.state_dict()):
        assert isinstance(meta, Metamodule)


def test_metamodules_are_not_children_and_not_state():
    j = Job()
    j.status.start()
    j.history.log("val", {"loss": 1.0})
    assert list(j.named_children()) == [] and dict(j.state_dict()) == {}


def test_the_metamodule_base_says_what_a_subclass_must_implement():
    class Half(Metamodule):
        pass

    with pytest.raises(NotImplementedError, match=r"Half must implement to_document\(\)"):
        Half().to_document()
    with pytest.raises(NotImplementedError, match=r"Half must implement from_document\(\)"):
        Half.from_document({})


# -- Status -----------------------------------------------------------------------------------------
def test_status_starts_created_with_a_creation_time():
    s = Status()
    assert s.state == "created" and s.started_at is None and s.error is None
    assert abs((dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - s.created_at).total_seconds()) < 5


def test_status_runs_and_completes_with_timestamps():
    s = Status()
    s.start()
    assert s.state == "running" and s.started_at == s.heartbeat and s.ended_at is None
    s.beat()
    assert s.heartbeat >= s.started_at
    s.complete()
    assert s.state == "completed" and s.ended_at >= s.started_at


def test_status_fail_keeps_the_error_type_message_and_traceback():
    s = Status()
    s.start()
    try:
        raise ValueError("loss exploded")
    except ValueError as exc:
        s.fail(exc)
    assert s.state == "failed"
    assert s.error["type"] == "ValueError" and s.error["message"] == "loss exploded"
    assert "Traceback" in s.error["traceback"] and "loss exploded" in s.error["traceback"]


def test_status_interrupt_and_resume():
    s = Status()
    s.start()
    s.interrupt()
    assert s.state == "interrupted" and s.ended_at is not None
    s.start()  # resuming clears the end time and the error
    assert s.state == "running" and s.ended_at is None and s.error is None


@pytest.mark.parametrize("move", ["complete", "interrupt"])
def test_status_refuses_to_end_what_never_started(move):
    with pytest.raises(ConfigError, match=rf"status cannot go from 'created' to '{move}[a-z]*'"):
        getattr(Status(), move)()


def test_status_refuses_to_complete_twice():
    s = Status()
    s.start()
    s.complete()
    with pytest.raises(ConfigError, match=r"status cannot go from 'completed' to 'completed'"):
        s.complete()


def test_status_timestamps_are_utc_milliseconds_so_bson_round_trips_exactly():
    s = Status()
    s.start()
    assert s.started_at.tzinfo is None and s.started_at.microsecond % 1000 == 0


def test_status_document_round_trips_through_bson():
    s = Status()
    s.start()
    try:
        raise KeyError("k")
    except KeyError as exc:
        s.fail(exc)
    doc = s.to_document()
    assert set(doc) == {"state", "created_at", "started_at", "ended_at", "heartbeat", "error", "reason"}
    back = Status.from_document(through_bson(doc))
    assert back.to_document() == doc
    assert back.state == "failed" and back.error["type"] == "KeyError"


def test_status_from_document_refuses_an_unknown_state():
    with pytest.raises(ConfigError, match=r"unknown status state 'paused'; expected one of \('created', 'running'"):
        Status.from_document({"state": "paused"})


def test_status_check_passes_when_the_module_is_ready():
    assert Job().status.check() is None
    assert Status().check() is None


def test_status_check_raises_not_ready_with_every_reason_from_problems():
    with pytest.raises(NotReadyError, match=r"^Job is not ready:\n  - no data loaded\n  - learning rate is zero$"):
        Job(ready=False).status.check()


def test_status_check_includes_the_problems_of_children_by_name():
    with pytest.raises(NotReadyError, match=r"Pipeline is not ready:\n  - job: no data loaded\n  - job: learning rate is zero"):
        Pipeline(Job(ready=False)).status.check()


def test_not_ready_error_is_a_runtime_error():
    with pytest.raises(RuntimeError, match=r"not ready"):
        Job(ready=False).status.check()
    assert issubclass(NotReadyError, PtdryError)


# -- Statistic -------------------------------------------------------------------------------------
def test_statistic_is_a_mapping_of_full_metric_names():
    s = Statistic("val", {"loss": 0.25, "acc": 0.5}, step=10, epoch=2)
    assert dict(s) == {"val.loss": 0.25, "val.acc": 0.5}
    assert s["val.loss"] == 0.25 and "val.acc" in s and len(s) == 2
    assert s.values == {"loss": 0.25, "acc": 0.5} and (s.step, s.epoch) == (10, 2)
    assert dict(Statistic("", {"loss": 1.0})) == {"loss": 1.0}


def test_statistic_converts_tensors_and_numpy_scalars_to_floats():
    s = Statistic("train", {"loss": torch.tensor(0.5), "acc": np.float32(0.75), "n": 3})
    assert s.values == {"loss": 0.5, "acc": 0.75, "n": 3.0}
    assert all(type(v) is float for v in s.values.values())


def test_statistic_refuses_values_that_are_not_single_numbers():
    with pytest.raises(ConfigError, match=r"metric 'loss' must be a number; received 'low'"):
        Statistic("val", {"loss": "low"})
    with pytest.raises(ConfigError, match=r"metric 'loss' must be a single number; received a value of shape \(2,\)"):
        Statistic("val", {"loss": torch.ones(2)})
    with pytest.raises(ConfigError, match=r"metric 'ok' must be a number; received True"):
        Statistic("val", {"ok": True})
    with pytest.raises(ConfigError, match=r"Statistic name must be a string; received 3"):
        Statistic(3)


def test_statistic_update_adds_values_and_moves_step():
    s = Statistic("val", {"loss": 1.0}, step=1)
    s.update({"acc": 0.5}, step=2, epoch=1)
    assert dict(s) == {"val.loss": 1.0, "val.acc": 0.5} and (s.step, s.epoch) == (2, 1)


def test_statistic_document_round_trips_through_bson_including_nan():
    s = Statistic("val", {"loss": 0.1, "bad": float("nan")}, step=5, epoch=1)
    doc = s.to_document()
    back = Statistic.from_document(through_bson(doc))
    assert back == s and back.t == s.t
    assert math.isnan(back["val.bad"])


# -- History ----------------------------------------------------------------------------------------
def _history():
    h = History()
    for step, (loss, acc) in enumerate([(1.0, 0.5), (0.4, 0.8), (0.6, 0.7)]):
        h.log("val", {"loss": loss, "acc": acc}, step=step, epoch=step // 2)
    h.log(Statistic("train", {"loss": 2.0}, step=3))
    return h


def test_history_logs_statistics_in_order():
    h = _history()
    assert len(h) == 4 and [s.step for s in h] == [0, 1, 2, 3]
    assert h.metrics() == ["val.loss", "val.acc", "train.loss"]


def test_history_series_gives_step_value_pairs_of_one_metric():
    h = _history()
    assert h.series("val.loss") == [(0, 1.0), (1, 0.4), (2, 0.6)]
    assert h.series("train.loss") == [(3, 2.0)]
    assert h.series("missing") == []


def test_history_last_and_best():
    h = _history()
    assert h.last("val.loss") == 0.6
    assert h.best("val.loss") == 0.4  # a loss: lower is better
    assert h.best("val.acc") == 0.8  # an accuracy: higher is better
    assert h.best("val.loss", mode="max") == 1.0
    assert h.best("val.acc", mode="min") == 0.5


def test_history_best_skips_nan():
    h = History()
    h.log("val", {"loss": float("nan")}, step=0)
    h.log("val", {"loss": 0.3}, step=1)
    assert h.best("val.loss") == 0.3


@pytest.mark.parametrize(
    ("metric", "mode"),
    [("val.loss", "min"), ("val.acc", "max"), ("accuracy", "max"), ("val.top1_acc", "max"), ("f1", "max"), ("mse", "min"), ("val.error", "min")],
)
def test_metric_mode_is_inferred_from_the_metric_name(metric, mode):
    assert metric_mode(metric) == mode


def test_history_last_and_best_name_unknown_metrics():
    h = _history()
    with pytest.raises(KeyError, match=r"no values logged for metric 'nope'; logged: \['val\.loss', 'val\.acc', 'train\.loss'\]"):
        h.last("nope")
    with pytest.raises(KeyError, match=r"no non-NaN values logged for metric 'nope'"):
        h.best("nope")
    with pytest.raises(ConfigError, match=r"mode must be 'min' or 'max'; received 'up'"):
        h.best("val.loss", mode="up")


def test_history_summary_gives_last_best_best_step_and_mode_of_every_metric():
    assert _history().summary() == {
        "val.loss": {"last": 0.6, "best": 0.4, "best_step": 1, "mode": "min", "mean": pytest.approx(2 / 3), "count": 3},
        "val.acc": {"last": 0.7, "best": 0.8, "best_step": 1, "mode": "max", "mean": pytest.approx(2 / 3), "count": 3},
        "train.loss": {"last": 2.0, "best": 2.0, "best_step": 3, "mode": "min", "mean": 2.0, "count": 1},
    }
    assert _history().summary({"val.loss": "max"})["val.loss"]["best"] == 1.0


def test_history_to_dataframe_has_one_row_per_statistic():
    pandas = pytest.importorskip("pandas")
    df = _history().to_dataframe()
    assert isinstance(df, pandas.DataFrame)
    assert list(df.columns) == ["step", "epoch", "t", "val.loss", "val.acc", "train.loss"]
    assert df["val.loss"].tolist()[:3] == [1.0, 0.4, 0.6] and math.isnan(df["val.loss"].iloc[3])
    assert df["step"].tolist() == [0, 1, 2, 3]


def test_history_summaries_count_nan_but_keep_it_out_of_best_and_mean():
    h = History()
    for step, v in enumerate([float("nan"), 0.5, 0.25, float("nan")]):
        h.log("val", {"loss": v}, step=step)
    entry = h.summary()["val.loss"]
    assert math.isnan(entry["last"]) and (entry["best"], entry["best_step"], entry["mean"], entry["count"]) == (0.25, 2, 0.375, 4)
    nan_only = History([Statistic("val", {"loss": float("nan")})])
    assert math.isnan(nan_only.summary()["val.loss"]["best"]) and math.isnan(nan_only.summary()["val.loss"]["mean"])


def test_history_state_holds_the_position_and_summaries_never_the_records():
    h = _history()
    state = h.state_dict()
    assert set(state) == {"length", "summaries"} and state["length"] == 4
    back = History()
    back.load_state_dict(through_bson(state))
    assert len(back) == 4 and back.summary() == h.summary() and back.records == [] and back.store.start == 4
    back.log("val", {"loss": 0.1}, step=4)
    assert back.best("val.loss") == 0.1 and [s.step for s in back] == [4] and len(back) == 5
    with pytest.raises(ConfigError, match=r"history length must be an integer >= 0; received -1"):
        back.load_state_dict({"length": -1})


def test_loading_an_earlier_state_rewinds_the_records_kept_in_memory():
    h = _history()
    state = h.state_dict()
    h.log("val", {"loss": 0.05}, step=9)
    h.load_state_dict(state)
    assert [s.step for s in h] == [0, 1, 2, 3] and h.best("val.loss") == 0.4 and h.recent() == []


def test_a_history_without_a_store_keeps_summaries_and_a_short_tail_only():
    h = History(tail=3)
    h.use_store(None)
    for step in range(1000):
        h.log("step", {"loss": 1.0 / (step + 1)}, step=step)
    assert len(h) == 1000 and h.records == [] and h.store is None
    assert [s.step for s in h.recent()] == [997, 998, 999] and h.last("step.loss") == 1 / 1000
    with pytest.raises(ConfigError, match=r"a history store needs append, read and rewind methods; received \[\]"):
        h.use_store([])


def test_history_document_round_trips_through_bson():
    h = _history()
    back = History.from_document(through_bson(h.to_document()))
    assert list(back) == list(h)
    assert back.summary() == h.summary()


def test_module_history_is_its_own_per_module():
    a, b = Job(), Job()
    a.history.log("val", {"loss": 1.0}, step=0)
    assert len(a.history) == 1 and len(b.history) == 0


# -- State ------------------------------------------------------------------------------------------
def test_state_document_round_trips_through_bson_bitwise():
    state = State(
        {
            "net.weight": torch.randn(3, 2),
            "arr": np.arange(5, dtype=np.int16),
            "opt": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99)}]},
            "name": "x",
        }
    )
    back = State.from_document(through_bson(state.to_document()))
    assert isinstance(back, State) and list(back) == list(state)
    assert torch.equal(back["net.weight"], state["net.weight"])
    assert back.arr.dtype == np.int16 and back.arr.tobytes() == state.arr.tobytes()
    assert back.opt["param_groups"][0]["betas"] == (0.9, 0.99) and 0 in back.opt["state"]


# -- Configuration ----------------------------------------------------------------------------------
def test_configuration_document_round_trips_through_bson():
    p = Pipeline(Job(ready=False), name="a.b")
    doc = p.configuration.to_document()
    back = Configuration.from_document(through_bson(doc))
    assert back == p.definition() and back.build().job.dry_id == p.job.dry_id
    assert doc["config"] == {"job": {"__class__": "test_metamodules:Job", "dry_id": p.job.dry_id, "ready": False}, "name": "a.b"}
