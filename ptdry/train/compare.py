"""compare: several models — of any framework, live or stored runs — measured on the same data
by the same metrics, in one table, with the comparison stored in the database.

``compare([torch_run_id, keras_model], data, metrics=["accuracy", "f1"])`` loads each run
(``Session.load``), reads ``data`` once — any form ``predict`` takes: arrays ``(X, y)``, a
ptdry Dataset of any backend, a DataLoader, a DataProvider split, a torch or TensorFlow
dataset — into NumPy batches, runs every model over those same batches and applies the same
:mod:`ptdry.metrics` to the NumPy outputs (so a shuffled or randomly augmented pipeline
still gives every model the same samples). The result is a pandas DataFrame (one row per
model) when pandas is installed, else a list of dicts; the comparison — models, run ids,
the data's fingerprint, metrics and values — is stored as a document of the
``comparisons`` collection, whose id is in ``table.attrs["comparison_id"]`` (DataFrame).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Iterable, Sequence

from ptdry.core.classpath import class_path
from ptdry.core.dataref import DataRef
from ptdry.core.status import utc_now
from ptdry.core.versions import library_versions
from ptdry.data import structure
from ptdry.data.provider import DataProvider
from ptdry.db.comparisons import store_comparison
from ptdry.db.interface import DBInterface
from ptdry.errors import ConfigError
from ptdry.metrics import resolve_metrics
from ptdry.train.prediction import batches_of, predict_batches, split_batch
from ptdry.train.session import Session
from ptdry.train.trainable import Trainable
from ptdry.train.trainer import Trainer

__all__ = ["compare"]

log = logging.getLogger(__name__)

def _entry(item: Any, db: DBInterface | None, which: str | None, trusted: bool, allowed: Iterable[Any]) -> dict[str, Any]:
    """``{"model", "label", "run"}`` for one thing to compare."""
    run = None
    if isinstance(item, str):
        session = Session.load(item, which=which, db=db, trusted=trusted, allowed=allowed)
        run, item = session.dry_id, session
    if isinstance(item, Session):
        run = run or item.dry_id
        label = f"{item.name or type(item).__name__} {item.dry_id[:8]}"
        item = item.trainer
    if isinstance(item, Trainer):
        item = item.model
    if not isinstance(item, Trainable):
        raise ConfigError(
            f"compare takes run ids, Sessions, Trainers or models (a ptdry Model or KerasModel); "
            f"received {type(item).__qualname__}"
        )
    if run is None:
        label = f"{type(item).__name__} {item.dry_id[:8]}"
    return {"model": item, "label": label, "run": run}


def compare(
    models: Sequence[Any],
    data: Any,
    metrics: Any = ("accuracy",),
    *,
    db: DBInterface | str | None = None,
    split: str = "test",
    which: str | None = None,
    batch_size: int | None = None,
    name: str | None = None,
    store: bool = True,
    trusted: bool = False,
    allowed: Iterable[Any] = (),
) -> Any:
    """Evaluate ``models`` on the same ``data`` with the same ``metrics``; one row per model.

    Args:
        models: run ids (loaded from ``db``, see ``which``), Sessions, Trainers
            or models (torch ``Model``, ``KerasModel``, any Trainable), in any mix.
        data: with targets, in any form :meth:`Trainable.predict` takes: a tuple
            ``(X, ..., y)`` of arrays or tensors, a supervised ptdry Dataset (NumPy, torch or
            TensorFlow), a DataLoader, a DataProvider (its ``split``), a torch ``Dataset`` or
            a ``tf.data.Dataset`` of ``(x, y)``. It is read once; every model sees the same
            batches.
        metrics: :mod:`ptdry.metrics` names, Metric objects or functions.
        db: where runs are loaded from and the comparison is stored; default: the embedded
            database.
        split: the DataProvider's split.
        which: what to load of each run: None (default) the state stored when it ended
            (what its ``test.*`` metrics measured), or a checkpoint: ``"best"``,
            ``"last"`` or a name.
        batch_size: samples per forward pass (None: as for ``predict``).
        name: a name stored with the comparison.
        store: store the comparison (collection ``comparisons``).
        trusted, allowed: as for :meth:`Session.load`.

    Returns:
        A pandas DataFrame indexed by model label with columns ``run``, ``framework``,
        ``class`` and one per metric (``attrs["comparison_id"]`` is the stored document's
        id), or, without pandas, a list of dicts with the ``model`` label too.

    Raises:
        ConfigError: no models, data without targets, or something that is not a model.
        NotFoundError: a run id that is not in the database.
    """
    if isinstance(models, (str, Trainable, Session, Trainer)) or not isinstance(models, Sequence) or not models:
        raise ConfigError(f"models must be a non-empty list of run ids or models; received {models!r}")
    fns = resolve_metrics(metrics)
    if not fns:
        raise ConfigError("compare needs at least one metric, e.g. metrics=['accuracy']")
    batches = [structure.convert(b, "numpy") for b in batches_of(data, batch_size, split)]
    if not batches:
        raise ConfigError("data has no samples to compare the models on")
    if split_batch(batches[0])[1] is None:
        raise ConfigError(
            "compare needs targets: pass data as (X, y), a supervised Dataset or a DataProvider split with targets"
        )
    dbi = None if db is None and not store and not any(isinstance(m, str) for m in models) else _db(db)
    entries = [_entry(m, dbi, which, trusted, allowed) for m in models]
    rows = []
    for e in entries:
        model = e["model"]
        outputs, targets = predict_batches(model, batches)
        row = {
            "model": e["label"],
            "run": e["run"],
            "framework": model.framework,
            "class": class_path(type(model)),
            **{k: m(outputs, targets) for k, m in fns.items()},
        }
        rows.append(row)
    comparison_id = _store(dbi, name, data, split, batches, fns, rows) if store else None
    return _table(rows, comparison_id)


def _db(db: DBInterface | str | None) -> DBInterface:
    return db if isinstance(db, DBInterface) else DBInterface(db)


def _store(db: DBInterface, name: str | None, data: Any, split: str, batches: list, fns: dict, rows: list) -> str:
    ref = DataRef.of(_joined(batches))
    doc = {
        "_id": str(uuid.uuid4()),
        "name": name,
        "created_at": utc_now(),
        "library_versions": library_versions(),
        "data": {"sha256": ref.sha256, "summary": ref.summary, "split": split if isinstance(data, DataProvider) else None},
        "metrics": {k: {"cls": class_path(type(m)), "higher_is_better": m.higher_is_better} for k, m in fns.items()},
        "rows": rows,
        "runs": [r["run"] for r in rows if r["run"] is not None],
    }
    store_comparison(db, doc)
    log.info("comparison %s stored in %r", doc["_id"], db)
    return doc["_id"]


def _joined(batches: list) -> Any:
    """The batches as one (the fingerprint of the data does not depend on the batch size);
    batches that cannot be joined (a collate function padding each) as the list."""
    try:
        return structure.concat(batches)
    except (ValueError, TypeError):
        return batches


def _table(rows: list[dict[str, Any]], comparison_id: str | None) -> Any:
    try:
        import pandas as pd
    except ImportError:
        return rows
    frame = pd.DataFrame(rows).set_index("model")
    frame.attrs["comparison_id"] = comparison_id
    return frame

