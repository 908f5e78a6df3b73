"""ptdry.compare: torch and Keras models (live or stored runs) on the same data, by the same
metrics, in one table; the comparison is stored and `ptdry comparisons` shows it."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pandas as pd
import pytest

from ptdry import DBInterface, compare
from ptdry.cli.main import main as cli
from ptdry.errors import ConfigError, MultipleFoundError, NotFoundError
from ptdry.metrics import Accuracy, F1

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _session_job import make_session as torch_session  # noqa: E402
from _tf_session_job import make_session as keras_session  # noqa: E402
from _tf_session_job import splits  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    """One stored torch run and one stored Keras run (one epoch each), in one database."""
    db = DBInterface("mongomock://compare-runs")
    sessions = [torch_session(db, epochs=1), keras_session(db, epochs=1)]
    for s in sessions:
        s.run()
    return db, sessions


def test_stored_runs_of_both_frameworks_are_compared_on_the_same_data(runs, capsys):
    db, (torch_run, keras_run) = runs
    x, y = splits()["test"]
    table = compare([torch_run.dry_id, keras_run.dry_id], (x, y), metrics=["accuracy", "f1", "log_loss"], db=db, name="t-vs-k")
    assert isinstance(table, pd.DataFrame) and list(table["framework"]) == ["torch", "tensorflow"]
    assert list(table["run"]) == [torch_run.dry_id, keras_run.dry_id]
    assert list(table.columns) == ["run", "framework", "class", "accuracy", "f1", "log_loss"]
    # the same numbers as the runs' own test evaluation (the last checkpoint is the end of training)
    for session, (_, row) in zip((torch_run, keras_run), table.iterrows()):
        assert row["accuracy"] == pytest.approx(session.trainer.history.last("test.accuracy"), abs=1e-9)
        outputs, _ = session.trainer.model.predict((x, y)).peek()
        assert row["f1"] == pytest.approx(F1()(outputs, y))

    doc = db.collection("comparisons").find_one({"_id": table.attrs["comparison_id"]})
    assert doc["name"] == "t-vs-k" and doc["runs"] == [torch_run.dry_id, keras_run.dry_id]
    assert len(doc["data"]["sha256"]) == 64 and list(doc["metrics"]) == ["accuracy", "f1", "log_loss"]
    assert [r["accuracy"] for r in doc["rows"]] == list(table["accuracy"])

    assert cli(["--db", "mongomock://compare-runs", "comparisons"]) == 0
    listing = capsys.readouterr().out
    assert table.attrs["comparison_id"][:8] in listing and "t-vs-k" in listing
    assert cli(["--db", "mongomock://compare-runs", "comparisons", table.attrs["comparison_id"][:8]]) == 0
    shown = capsys.readouterr().out
    assert "torch" in shown and "tensorflow" in shown and f"{table['accuracy'].iloc[1]:.4f}" in shown


def test_live_models_sessions_and_a_data_provider_split_mix(runs):
    db, (torch_run, keras_run) = runs
    table = compare(
        [torch_run.trainer.model, keras_run], torch_run.data, metrics=[Accuracy(), "top_k_accuracy"], store=False
    )
    assert table.attrs["comparison_id"] is None and list(table.columns)[-2:] == ["accuracy", "top_k_accuracy"]
    assert table.index[0].startswith("Model ") and table.index[1].startswith("e2e-keras ")
    assert table["accuracy"].iloc[1] == pytest.approx(keras_run.trainer.history.last("test.accuracy"), abs=1e-9)


def test_compare_mistakes_are_named(runs):
    db, (torch_run, _) = runs
    x, y = splits()["test"]
    with pytest.raises(ConfigError, match="models must be a non-empty list of run ids or models"):
        compare(torch_run.dry_id, (x, y), db=db)
    with pytest.raises(ConfigError, match="compare needs targets: pass data as"):
        compare([torch_run.dry_id], (x,), db=db)
    with pytest.raises(ConfigError, match="compare takes run ids, Sessions, Trainers or models.*received int"):
        compare([3], (x, y), db=db, store=False)
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        compare(["nope"], (x, y), db=db)
    with pytest.raises(NotFoundError, match="no comparison with id 'zz'"):
        from ptdry.db.comparisons import load_comparison

        load_comparison("zz", db)
    compare([torch_run.dry_id], (x, y), db=db)
    compare([torch_run.dry_id], (x, y), db=db)
    with pytest.raises(MultipleFoundError, match="more than one comparison id starts with ''"):
        load_comparison("", db)


def test_without_pandas_compare_returns_a_list_of_rows(runs, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    db, (torch_run, _) = runs
    rows = compare([torch_run.trainer.model], splits()["test"], store=False)
    assert isinstance(rows, list) and rows[0]["framework"] == "torch" and 0 <= rows[0]["accuracy"] <= 1
    assert np.isfinite(rows[0]["accuracy"])
