"""Gradient accumulation: a step is an optimizer step; N batches of b train as one batch of
N*b; checkpoints fall on step boundaries and resume exactly."""

from __future__ import annotations

import logging

import pytest
import torch
from _train_helpers import MLP, CrashAt, Recorder, digits, history_values, make_model, net_params

from ptdry import Checkpoint, Criterion, Looper, MemoryStorage, Model, ObjectDef, Optimizer, Trainer


def _plain_model() -> Model:
    return Model(ObjectDef(MLP, 64, 32, 10, p=0.0), Optimizer(torch.optim.SGD, lr=0.5), Criterion(torch.nn.CrossEntropyLoss))


def test_two_accumulated_batches_of_32_train_as_one_batch_of_64():
    data = digits()  # 600 rows: 19 batches of 32 (the last of 24) and 10 of 64 (the last of 24)
    accumulated = Trainer(_plain_model(), Looper(epochs=2, batch_size=32, shuffle=False), verbose=0, device="cpu", accumulate_grad_batches=2)
    single = Trainer(_plain_model(), Looper(epochs=2, batch_size=64, shuffle=False), verbose=0, device="cpu")
    accumulated.fit(data, seed=0)
    single.fit(data, seed=0)
    assert accumulated.step == single.step == 20  # the last window of an epoch has one batch
    assert accumulated.looper.batches_done == 0 and accumulated.looper.epochs_done == 2
    for key, value in net_params(single).items():
        assert torch.allclose(net_params(accumulated)[key], value, atol=1e-6), key
    # a step's loss is the mean of its batches' losses: that of the batch of 64
    steps = [(s.step, s.values["loss"]) for s in single.history if s.name == "step"]
    acc_steps = [(s.step, s.values["loss"]) for s in accumulated.history if s.name == "step"]
    assert [s for s, _ in acc_steps] == [s for s, _ in steps] == list(range(1, 21))
    assert [v for _, v in acc_steps[:9]] == pytest.approx([v for _, v in steps[:9]], abs=1e-5)


def test_step_events_fire_once_per_optimizer_step_and_backward_once_per_batch():
    rec = Recorder()
    trainer = Trainer(make_model(), Looper(epochs=1, batch_size=64), [rec], verbose=0, device="cpu", accumulate_grad_batches=3)
    trainer.fit(digits(), seed=0)  # 10 batches: windows of 3, 3, 3 and 1
    count = lambda name: sum(1 for e in rec.events if e[0] == name)  # noqa: E731
    assert (count("on_step_start"), count("on_step_end"), count("on_before_optimizer_step")) == (4, 4, 4)
    assert (count("on_before_backward"), count("on_after_backward")) == (10, 10)
    assert [e[1] for e in rec.events if e[0] == "on_before_backward"] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]


def test_an_accumulating_run_resumes_exactly_from_a_step_checkpoint():
    def trainer(*callbacks):
        return Trainer(make_model(), Looper(epochs=2, batch_size=32), list(callbacks), verbose=0, device="cpu", accumulate_grad_batches=3)

    data = digits()
    reference = trainer()
    reference.fit(data, seed=4)
    storage = MemoryStorage(serialize=True)
    crashing = trainer(CrashAt(12), Checkpoint(every_n_steps=5, every_n_epochs=None, save_last=1, on_exception=False, storage=storage))
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit(data, seed=4)
    resumed = trainer()
    meta = resumed.load_checkpoint(storage)
    assert (meta["step"], meta["batch"]) == (10, 9)  # epoch 2 (7 steps each): 3 of its windows done
    resumed.fit(data, seed=4)
    for key, value in net_params(reference).items():
        assert torch.equal(net_params(resumed)[key], value), key
    # the history's length and summaries are the reference's; its store holds the records
    # logged since the checkpoint (the earlier ones live where the crashed run kept them)
    assert len(resumed.history) == len(reference.history)
    assert resumed.history.summary() == reference.history.summary()
    assert history_values(resumed) == history_values(reference)[resumed.history.store.start :]


class _StateInsideAWindow:
    """Keeps the trainer's state taken after the second backward of step ``step`` (its
    window's first two batches done)."""

    def __init__(self, step: int) -> None:
        self.step, self.seen, self.state = step, 0, None

    def on_after_backward(self, trainer, step, **_):
        self.seen += step == self.step
        if step == self.step and self.seen == 2:
            import copy

            self.state = copy.deepcopy(dict(trainer.state_dict()))


def test_a_state_taken_inside_a_window_says_that_its_gradients_were_not_saved(caplog):
    grab = _StateInsideAWindow(2)
    first = Trainer(make_model(), Looper(epochs=1, batch_size=64), [grab], verbose=0, device="cpu", accumulate_grad_batches=3)
    first.fit(digits(), seed=0)
    second = Trainer(make_model(), Looper(epochs=1, batch_size=64), verbose=0, device="cpu", accumulate_grad_batches=3)
    second.load_state_dict(grab.state)
    with caplog.at_level(logging.WARNING, logger="ptdry.train.epoch_loop"):
        second.fit(digits(), seed=0)
    assert "resuming at batch 4, inside a window of accumulate_grad_batches=3" in caplog.text
