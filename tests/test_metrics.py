"""ptdry.metrics: framework-neutral metrics over NumPy outputs, exact over batches, equal to
scikit-learn's on the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from ptdry.errors import ConfigError
from ptdry.metrics import (
    F1,
    MAE,
    MSE,
    Accumulator,
    Accuracy,
    BatchMean,
    LogLoss,
    TopKAccuracy,
    batch_partials,
    resolve_metrics,
)

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(50, 4)) * 2
TARGETS = RNG.integers(0, 4, size=50)
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)


def test_classification_metrics_equal_scikit_learns():
    pred = LOGITS.argmax(1)
    assert Accuracy()(LOGITS, TARGETS) == pytest.approx(skm.accuracy_score(TARGETS, pred))
    assert TopKAccuracy(k=2)(LOGITS, TARGETS) == pytest.approx(skm.top_k_accuracy_score(TARGETS, LOGITS, k=2))
    assert LogLoss()(LOGITS, TARGETS) == pytest.approx(skm.log_loss(TARGETS, PROBS))
    assert LogLoss()(PROBS, TARGETS) == pytest.approx(skm.log_loss(TARGETS, PROBS))
    for average in ("macro", "weighted", "micro"):
        assert F1(average)(LOGITS, TARGETS) == pytest.approx(skm.f1_score(TARGETS, pred, average=average)), average


def test_binary_scores_are_read_as_probabilities_or_logits():
    p = RNG.uniform(size=40)
    y = (RNG.uniform(size=40) < p).astype(int)
    logits = np.log(p / (1 - p))
    assert Accuracy()(p, y) == Accuracy()(logits[:, None], y) == pytest.approx(skm.accuracy_score(y, p > 0.5))
    assert LogLoss()(p, y) == pytest.approx(skm.log_loss(y, p))
    assert LogLoss(from_logits=True)(logits, y) == pytest.approx(skm.log_loss(y, p))
    assert F1("binary")(p, y) == pytest.approx(skm.f1_score(y, p > 0.5))


def test_regression_metrics_match_targets_to_the_outputs_shape():
    out, y = RNG.normal(size=(30, 1)), RNG.normal(size=30)
    assert MSE()(out, y) == pytest.approx(skm.mean_squared_error(y, out[:, 0]))
    assert MAE()(out, y) == pytest.approx(skm.mean_absolute_error(y, out[:, 0]))
    with pytest.raises(ConfigError, match=r"mse: outputs of shape \(30, 1\) and targets of shape \(29,\)"):
        MSE()(out, y[:29])


@pytest.mark.parametrize("metric", [Accuracy(), TopKAccuracy(k=2), LogLoss(), F1(), F1("weighted"), MSE()])
def test_a_split_evaluated_in_batches_gives_the_value_of_the_whole_split(metric):
    targets = TARGETS if not isinstance(metric, MSE) else LOGITS + 0.5
    acc = Accumulator()
    for start in (0, 7, 20, 33):  # uneven batches
        stop = {0: 7, 7: 20, 20: 33, 33: 50}[start]
        acc.add({"m": metric.partial(LOGITS[start:stop], targets[start:stop])}, size=stop - start)
    assert acc.results()["m"] == pytest.approx(metric(LOGITS, targets), abs=1e-12)


def test_f1_of_batches_is_not_the_mean_of_batch_f1s():
    parts = [(LOGITS[:10], TARGETS[:10]), (LOGITS[10:], TARGETS[10:])]
    mean_of_batches = np.mean([F1()(o, t) for o, t in parts])
    acc = Accumulator()
    for o, t in parts:
        acc.add(batch_partials({"f1": F1()}, o, t), len(t))
    assert acc.results()["f1"] == pytest.approx(F1()(LOGITS, TARGETS))
    assert acc.results()["f1"] != pytest.approx(mean_of_batches)


def test_metrics_take_framework_tensors_and_one_hot_targets():
    one_hot = np.eye(4)[TARGETS]
    assert Accuracy()(torch.as_tensor(LOGITS), torch.as_tensor(TARGETS)) == Accuracy()(LOGITS, one_hot)
    assert LogLoss()(PROBS, one_hot) == pytest.approx(skm.log_loss(TARGETS, PROBS))


def test_metrics_resolve_from_names_objects_and_functions():
    def hits(outputs, targets):
        return float(np.mean(outputs.argmax(1) == targets))

    found = resolve_metrics(["accuracy", TopKAccuracy(k=3), hits, "top_k_accuracy"])
    assert list(found) == ["accuracy", "top3_accuracy", "hits", "top_k_accuracy"]
    assert isinstance(found["hits"], BatchMean) and found["hits"](LOGITS, TARGETS) == Accuracy()(LOGITS, TARGETS)
    assert found["top_k_accuracy"].k == 5


def test_metric_mistakes_are_named():
    with pytest.raises(ConfigError, match="unknown metric 'acc'; known: .*'accuracy'"):
        resolve_metrics(["acc"])
    with pytest.raises(ConfigError, match="two metrics are named 'accuracy'"):
        resolve_metrics(["accuracy", Accuracy()])
    with pytest.raises(ConfigError, match="a metric must be a name, a ptdry.metrics Metric or a function.*received 3"):
        resolve_metrics([3])
    with pytest.raises(ConfigError, match=r"accuracy: 50 outputs but 49 targets"):
        Accuracy()(LOGITS, TARGETS[:49])
    with pytest.raises(ConfigError, match=r"log_loss: targets must be class indices in \[0, 4\); received 7"):
        LogLoss()(LOGITS, np.full(50, 7))
    with pytest.raises(ConfigError, match=r"top_k_accuracy needs scores of shape \(n, classes\); received shape \(50,\)"):
        TopKAccuracy()(LOGITS[:, 0], TARGETS)
    with pytest.raises(ConfigError, match=r"F1\.average must be one of"):
        F1("samples")


def test_metrics_are_stored_in_definitions_and_built_again():
    twin = TopKAccuracy(k=3).definition().build()
    assert isinstance(twin, TopKAccuracy) and twin.k == 3 and twin.name == "top3_accuracy"
