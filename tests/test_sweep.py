"""Sweeps in one process: search spaces, grid/random/Optuna strategies, pruning, results,
the trials store (claims, heartbeats, re-queueing) and its atomic claim on the real server."""

from __future__ import annotations

import pathlib
import sys
import threading
import time

import optuna
import pytest

from ptdry import (
    Callback,
    ConfigError,
    DBInterface,
    NotFoundError,
    ObjectDef,
    Selector,
    Session,
    Sweep,
    choice,
    loguniform,
    randint,
    uniform,
)
from ptdry.cli.main import main as cli
from ptdry.db.repo import Repo
from ptdry.sweep.space import Space
from ptdry.sweep.trials import TrialStore
from ptdry.sweep.worker import Worker

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _sweep_job import make_session  # noqa: E402

LR = "trainer.model.optimizer.lr"


@pytest.fixture
def mock_db(db_name):
    return DBInterface(f"mongomock://{db_name}")


# -- spaces ------------------------------------------------------------------------------------
def test_a_grid_is_every_combination_with_the_first_path_varying_slowest():
    space = Space({"a": [1, 2], "b": range(3), "c": choice(["x", "y"])})
    points = space.grid()
    assert len(points) == space.grid_size() == 12
    assert points[:3] == [{"a": 1, "b": 0, "c": "x"}, {"a": 1, "b": 0, "c": "y"}, {"a": 1, "b": 1, "c": "x"}]
    assert Space({"n": randint(2, 5)}).grid() == [{"n": 2}, {"n": 3}, {"n": 4}]  # high excluded, as in range


def test_a_continuous_distribution_in_a_grid_is_refused_naming_its_path():
    with pytest.raises(ConfigError, match=r"space\['trainer.model.optimizer.lr'\] = loguniform\(0.0001, 0.1\) is continuous"):
        Space({"seed": [0, 1], LR: loguniform(1e-4, 1e-1)}).grid()


def test_random_points_are_reproducible_from_the_seed_and_within_their_distributions():
    space = Space({LR: loguniform(1e-4, 1e-1), "x": uniform(-1, 1), "n": randint(0, 3), "b": [32, 64]})
    a, b = space.random(20, seed=7), space.random(20, seed=7)
    assert a == b and a != space.random(20, seed=8)
    assert all(1e-4 <= p[LR] < 1e-1 and -1 <= p["x"] < 1 and p["n"] in (0, 1, 2) and p["b"] in (32, 64) for p in a)
    assert len({p[LR] for p in a}) == 20


def test_space_values_must_be_lists_ranges_or_distributions():
    with pytest.raises(ConfigError, match=r"space\['seed'\] = 3: expected a list or range of values.*\[3\]"):
        Space({"seed": 3})
    with pytest.raises(ConfigError, match=r"space\['sizes'\] = \(64, 32\).*a list of tuples such as \[\(64, 32\)\]"):
        Space({"sizes": (64, 32)})
    with pytest.raises(ConfigError, match=r"space\['seed'\] is an empty list"):
        Space({"seed": []})
    with pytest.raises(ConfigError, match=r"loguniform\(low, high\) needs low < high; received low=0.1, high=0.01"):
        loguniform(0.1, 0.01)
    with pytest.raises(ConfigError, match=r"LogUniform.low must be a number.*not above 0.0; received 0"):
        loguniform(0, 1)


# -- defining a sweep ------------------------------------------------------------------------------
def test_a_space_path_missing_from_the_definition_is_named_with_what_is_there(mock_db):
    with pytest.raises(ConfigError, match=r"cannot set 'trainer.model.optimiser.lr': trainer.model \(Model\) has no 'optimiser'; it has: net, optimizer"):
        Sweep(make_session(mock_db), {"trainer.model.optimiser.lr": [0.1]})


def test_sweep_arguments_are_checked(mock_db):
    session = make_session(mock_db)
    with pytest.raises(ConfigError, match=r"trials=5 but the grid has 2 points"):
        Sweep(session, {LR: [0.1, 0.2]}, trials=5)
    with pytest.raises(ConfigError, match=r"strategy 'random' needs trials=N"):
        Sweep(session, {LR: [0.1, 0.2]}, strategy="random")
    with pytest.raises(ConfigError, match=r"strategy must be 'grid', 'random' or an Optuna sampler; received 'tpe'"):
        Sweep(session, {LR: [0.1]}, strategy="tpe")
    with pytest.raises(ConfigError, match=r"TPESampler\(\.\.\.\) instance: its constructor arguments cannot be recovered.*ObjectDef\(optuna.samplers.TPESampler, seed=0\)"):
        Sweep(session, {LR: loguniform(0.01, 0.1)}, strategy=optuna.samplers.TPESampler(seed=0), trials=2)
    with pytest.raises(ConfigError, match=r"Sweep needs a Session \(or an ObjectDef of one\) to vary; received Trainer"):
        Sweep(session.trainer, {LR: [0.1]})
    with pytest.raises(ConfigError, match=r"NumpyDataset.data holds only a fingerprint of its data; pass the Session itself"):
        Sweep(session.definition(), {LR: [0.1]})


def test_a_stored_sweep_loads_back_with_its_session_definition_and_data(mock_db):
    sweep = Sweep(make_session(mock_db), {LR: [0.1, 0.2], "seed": range(2)}, name="lr-grid").save()
    doc = mock_db.collection("modules").find_one({"_id": sweep.dry_id})
    assert doc["name"] == "lr-grid" and doc["config"]["space"]["seed"] == [0, 1]
    assert "dry_id" not in doc["definition"]["args"][0]["__def__"]["kwargs"]  # trials get fresh ids
    again = Sweep.load("lr-grid", db=mock_db)
    assert again.dry_id == sweep.dry_id and again.points() == sweep.points()
    trial = again.trial_session({LR: 0.2, "seed": 1})
    assert trial.seed == 1 and trial.trainer.model.optimizer.kwargs["lr"] == 0.2 and trial.data.size("train") == 64
    assert trial.dry_id != make_session(mock_db).dry_id and trial.db is again.db
    with pytest.raises(NotFoundError, match=r"no sweep named 'nope' \(or with that id\).*stored sweeps: \['lr-grid'\]"):
        Sweep.load("nope", db=mock_db)


# -- running in this process -------------------------------------------------------------------------
def test_a_grid_sweep_runs_each_trial_once_and_links_the_runs_to_it(mock_db, db_name, capsys):
    sweep = Sweep(make_session(mock_db, epochs=2), {LR: [0.05, 0.5], "seed": range(2)}, monitor="val.accuracy", name="g")
    trials = sweep.run()
    assert [t.state for t in trials] == ["completed"] * 4 and [t.attempts for t in trials] == [1] * 4
    assert [t.params for t in trials] == sweep.points() and len({t.run_id for t in trials}) == 4
    runs = sweep.runs()
    assert [r.id for r in runs] == [t.run_id for t in trials]
    assert all(r["status"]["state"] == "completed" and r["links"]["sweep"]["name"] == "g" for r in runs)
    for t, r in zip(trials, runs):
        assert t.value == r.get_path("summary.val.accuracy.best")  # the run's best value, as documented
    best = sweep.best()
    assert best.value == max(t.value for t in trials)
    assert Session.load(best.run_id, which=None, db=mock_db).trainer.looper.epochs_done == 2
    assert len(sweep.runs(Selector(kwargs={"seed": 1}))) == 2
    assert sweep.run() == trials  # nothing left to run: running again changes nothing
    assert cli(["--db", f"mongomock://{db_name}", "runs", "--where", "sweep = g and sweep.trial < 2"]) == 0
    out = capsys.readouterr().out
    assert out.count("completed") == 2 and trials[0].run_id[:8] in out and trials[2].run_id[:8] not in out


def test_a_random_sweep_tries_its_seeded_points_and_best_follows_the_mode(mock_db):
    sweep = Sweep(make_session(mock_db, epochs=1), {LR: loguniform(1e-3, 1.0)}, "random", trials=3, monitor="val.loss", seed=3)
    trials = sweep.run()
    assert [t.params for t in trials] == Space({LR: loguniform(1e-3, 1.0)}).random(3, seed=3)
    assert sweep.best().value == min(t.value for t in trials)  # a loss: lower is better


def test_an_optuna_tpe_sweep_of_8_trials(mock_db):
    sampler = ObjectDef(optuna.samplers.TPESampler, seed=0, n_startup_trials=4)
    space = {LR: loguniform(1e-3, 1.0), "trainer.looper.batch_size": [16, 32]}
    sweep = Sweep(make_session(mock_db, epochs=1), space, sampler, trials=8, monitor="val.accuracy")
    trials = sweep.run()
    assert [t.state for t in trials] == ["completed"] * 8
    assert all(1e-3 <= t.params[LR] <= 1.0 and t.params["trainer.looper.batch_size"] in (16, 32) for t in trials)
    assert len({t.params[LR] for t in trials}) == 8  # each rebuilt sampler got its own seed
    docs = sweep.store.documents()
    assert all(d["internal"]["trainer.looper.batch_size"] in (0, 1) for d in docs)  # Optuna picks an index
    run = Repo(mock_db).find({"_id": trials[5].run_id})[0]
    assert run.get_path("config.trainer.model.optimizer.lr") == trials[5].params[LR]
    assert Sweep.load(sweep.dry_id, db=mock_db).best() == sweep.best()


def test_a_pruner_stops_a_trial_worse_than_the_median_at_an_epoch(mock_db):
    pruner = ObjectDef(optuna.pruners.MedianPruner, n_startup_trials=1, n_warmup_steps=0)
    sweep = Sweep(make_session(mock_db, epochs=3), {LR: [0.5, 1e-6]}, monitor="val.accuracy", pruner=pruner)
    good, bad = sweep.run()
    assert good.state == "completed" and sorted(good.intermediate) == [1, 2, 3]
    assert bad.state == "pruned" and sorted(bad.intermediate) == [1]
    assert Session.load(bad.run_id, which=None, db=mock_db).trainer.looper.epochs_done == 1
    assert sweep.best() == good


def test_a_trial_that_fails_is_recorded_with_its_error_and_the_others_run(mock_db):
    sweep = Sweep(make_session(mock_db, epochs=1), {"trainer.looper.batch_size": [0, 16]}, monitor="val.accuracy")
    failed, done = sweep.run()
    assert failed.state == "failed" and failed.error["type"] == "ValidationError"
    assert "batch_size" in failed.error["message"] and done.state == "completed"
    unknown = Sweep(make_session(mock_db, epochs=1), {LR: [0.1]}, monitor="val.f1")
    (trial,) = unknown.run()
    assert trial.state == "failed" and "never logged 'val.f1'" in trial.error["message"]
    with pytest.raises(NotFoundError, match=r"has no completed trial yet; trials by state: .*'failed': 1"):
        unknown.best()


def test_local_worker_processes_need_a_database_they_all_reach(mock_db):
    sweep = Sweep(make_session(mock_db), {LR: [0.1, 0.2]})
    with pytest.raises(ConfigError, match=r"mongomock:// lives in this process only: use workers=1"):
        sweep.run(workers=2)
    with pytest.raises(ConfigError, match=r"workers must be an integer >= 1; received 0"):
        sweep.run(workers=0)


def test_ptdry_worker_runs_the_pending_trials_of_a_stored_sweep(mock_db, db_name, capsys):
    sweep = Sweep(make_session(mock_db, epochs=1), {LR: [0.1, 0.2, 0.3]}, monitor="val.accuracy", name="w").save()
    uri = f"mongomock://{db_name}"
    assert cli(["--db", uri, "worker", "w", "--max-trials", "1", "--heartbeat", "0.1", "--stale-after", "1"]) == 0
    assert "ran 1 trials; sweep w: 2 pending, 1 completed" in capsys.readouterr().out
    assert cli(["worker", sweep.dry_id[:8], "--db", uri, "--heartbeat", "0.1", "--stale-after", "1"]) == 0
    assert "ran 2 trials; sweep w: 3 completed" in capsys.readouterr().out
    assert cli(["worker", "nope", "--db", uri]) == 1
    assert "ptdry worker: no sweep named 'nope'" in capsys.readouterr().err
    assert cli(["worker", "w", "--db", uri, "--heartbeat", "5", "--stale-after", "2"]) == 1
    assert "--stale-after (2) must be longer than --heartbeat (5)" in capsys.readouterr().err
    assert cli(["worker", "w", "--db", uri, "--heartbeat", "0"]) == 2
    assert "expected a number of seconds > 0; received '0'" in capsys.readouterr().err
    assert cli(["worker", "w", "--db", uri, "--import", "no_such_module_here"]) == 1
    assert "--import no_such_module_here: No module named 'no_such_module_here'" in capsys.readouterr().err


class RequeueAt(Callback):
    """At step 3, another worker takes this trial over (as after a false stale verdict)."""

    def __init__(self, uri: str, sweep_id: str) -> None:
        self.uri, self.sweep_id = uri, sweep_id

    def on_step_end(self, trainer, step, **_):
        if step == 3:
            TrialStore(DBInterface(self.uri), self.sweep_id)._requeue({}, "test")  # every running trial
            for _ in range(200):  # until the worker's heartbeat finds the claim gone
                if trainer.should_stop:
                    break
                time.sleep(0.01)


def test_a_worker_that_lost_its_trial_stops_training_and_records_nothing(mock_db, db_name):
    sweep = Sweep(make_session(mock_db, epochs=3), {LR: [0.1]}, monitor="val.accuracy").save()
    requeue = ObjectDef(RequeueAt, f"mongomock://{db_name}", sweep.dry_id)
    callbacks = [*sweep.session_def.kwargs["trainer"].kwargs["callbacks"], requeue]
    sweep.session_def = sweep.session_def.replace({"trainer.callbacks": callbacks})
    worker = Worker(sweep, heartbeat_interval=0.02, stale_after=60)
    assert worker.run_trial(sweep.store.claim(worker.name)) == "lost"
    (trial,) = sweep.trials()
    assert (trial.state, trial.value, trial.requeued) == ("pending", None, 1)
    run = Session.load(trial.run_id, which=None, db=mock_db)
    assert run.trainer.looper.steps_done < 12  # stopped early: 3 epochs are 12 steps


# -- the trials store ---------------------------------------------------------------------------------
def test_a_stale_trial_is_requeued_and_its_old_worker_can_no_longer_write(mock_db):
    store = TrialStore(mock_db, "s1")
    assert store.create([{"a": 1}, {"a": 2}]) == 2 and store.create([{"a": 1}, {"a": 2}]) == 0
    first = store.claim("w1")
    second = store.claim("w2")
    assert (first.number, second.number) == (0, 1) and store.claim("w3") is None
    assert store.requeue_stale(60.0) == []  # fresh heartbeats: nobody is taken for dead
    mock_db.collection("trials").update_one({"_id": first.id}, {"$set": {"heartbeat": first.doc["heartbeat"].replace(year=2000)}})
    assert store.requeue_stale(60.0) == [0]
    assert not store.beat(first) and not store.finish(first, "completed", value=1.0)  # the claim is lost
    again = store.claim("w3")
    assert again.number == 0 and again.doc["attempts"] == 2 and again.doc["requeued"] == 1
    assert store.finish(again, "completed", value=0.5) and store.requeue_worker("w2") == [1]
    assert store.counts() == {"pending": 1, "running": 0, "completed": 1, "pruned": 0, "failed": 0}


@pytest.mark.server
def test_concurrent_claims_on_the_server_give_each_trial_to_exactly_one_worker(server_uri, db_name):
    TrialStore(DBInterface(server_uri, database=db_name), "s").create([{"i": i} for i in range(40)])
    claimed: dict[str, list[int]] = {}

    def work(name: str) -> None:
        store = TrialStore(DBInterface(server_uri, database=db_name), "s")  # a connection of its own
        mine = claimed.setdefault(name, [])
        while (claim := store.claim(name)) is not None:
            mine.append(claim.number)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted(n for got in claimed.values() for n in got)
    assert numbers == list(range(40))
