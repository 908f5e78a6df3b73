"""Devices and precision of a single process: Trainer(device=, precision=, grad_clip_norm=,
grad_clip_value=, compile=), device-independent checkpoints and Session.load(device=).
(Gradient accumulation: test_accumulation.py; CUDA-only paths: test_cuda.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _train_helpers import MLP, CrashAt, digits, make_model, net_params

from ptdry import Checkpoint, Criterion, DataProvider, Looper, MemoryStorage, Model, ObjectDef, Optimizer, Session, Trainer
from ptdry.core.callback import Callback
from ptdry.errors import ConfigError, ValidationError
from ptdry.train.trainable import Trainable


def _trainer(epochs: int = 1, batch_size: int = 64, **kwargs) -> Trainer:
    kwargs.setdefault("device", "cpu")  # (these tests are about the CPU; test_cuda.py has the GPU's)
    return Trainer(make_model(), Looper(epochs=epochs, batch_size=batch_size), verbose=0, **kwargs)


def test_auto_picks_cuda_when_there_is_one_and_the_cpu_otherwise():
    for device, expected in (("auto", "cuda:0" if torch.cuda.is_available() else "cpu"), ("cpu", "cpu")):
        trainer = _trainer(device=device)
        trainer.fit(digits(), seed=0)
        assert trainer.model.device_name == expected


def test_a_device_this_machine_lacks_is_refused_when_training_starts():
    trainer = _trainer(device="cuda:99")  # no CUDA here; 99 GPUs nowhere
    with pytest.raises(ConfigError, match=r"device='cuda:99' but torch sees"):
        trainer.fit(digits(), seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "gpu"}, r"Trainer.device must be 'auto', 'cpu', 'cuda', 'cuda:<index>' or 'mps'.*received 'gpu'"),
        ({"precision": 16}, r"Trainer.precision must be one of \['32', 'bf16-mixed', '16-mixed'\].*received 16"),
        ({"grad_clip_norm": 0}, r"Trainer.grad_clip_norm must be .*received 0"),
        ({"accumulate_grad_batches": 0}, r"Trainer.accumulate_grad_batches must be .*received 0"),
    ],
)
def test_bad_runtime_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        _trainer(**kwargs)


def test_clipping_by_norm_and_by_value_at_once_is_refused():
    with pytest.raises(ConfigError, match=r"give grad_clip_norm= or grad_clip_value=, not both; received grad_clip_norm=1.0"):
        _trainer(grad_clip_norm=1.0, grad_clip_value=0.5)


class _Dtypes(Callback):
    """Records the dtype of the net's outputs while it trains."""

    def on_train_start(self, trainer, **_):
        self.seen = set()
        trainer.model.net.register_forward_hook(lambda module, args, out: self.seen.add(out.dtype))


def test_bf16_mixed_computes_in_bfloat16_and_keeps_float32_weights():
    watch = _Dtypes()
    trainer = _trainer(precision="bf16-mixed", callbacks=[watch])
    metrics = trainer.fit(digits(), seed=0)
    assert watch.seen == {torch.bfloat16}
    assert {p.dtype for p in trainer.model.net.parameters()} == {torch.float32}
    assert trainer.model.predict_batch(np.zeros((2, 64))).dtype == torch.float32  # outputs back in float32
    plain = _trainer().fit(digits(), seed=0)
    assert metrics["train.loss"] != plain["train.loss"]
    assert metrics["train.loss"] == pytest.approx(plain["train.loss"], abs=0.02)
    assert "loss_scaler" not in trainer.state_dict()  # no scaler without float16


def test_16_mixed_checkpoints_its_gradient_scaler_and_resumes_exactly():
    data = digits()
    reference = _trainer(epochs=2, precision="16-mixed")
    reference.fit(data, seed=3)
    assert reference.state_dict()["loss_scaler"]["_growth_tracker"] == 20  # one per successful step

    storage = MemoryStorage(serialize=True)
    crashing = _trainer(epochs=2, precision="16-mixed", callbacks=[CrashAt(13)])
    crashing.add_callback(Checkpoint(every_n_steps=4, every_n_epochs=None, save_last=1, on_exception=False, storage=storage))
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit(data, seed=3)
    resumed = _trainer(epochs=2, precision="16-mixed")
    assert resumed.load_checkpoint(storage)["step"] == 12
    resumed.fit(data, seed=3)
    assert resumed.state_dict()["loss_scaler"] == reference.state_dict()["loss_scaler"]
    for key, value in net_params(reference).items():
        assert torch.equal(net_params(resumed)[key], value), key


class _Updates(Callback):
    """The gradients before clipping and the parameters before and after each step."""

    def __init__(self) -> None:
        self.steps = []

    def on_before_optimizer_step(self, trainer, **_):
        params = list(trainer.model.net.parameters())
        self._before = ([p.detach().clone() for p in params], [p.grad.detach().clone() for p in params])

    def on_step_end(self, trainer, **_):
        after = [p.detach().clone() for p in trainer.model.net.parameters()]
        self.steps.append((*self._before, after))


def test_grad_clip_norm_scales_the_gradients_down_to_the_norm():
    watch = _Updates()
    trainer = Trainer(
        _plain_sgd_model(), Looper(epochs=1, batch_size=64, max_steps=3), callbacks=[watch], verbose=0, grad_clip_norm=0.01, device="cpu"
    )
    trainer.fit(digits(), seed=0)
    for before, grads, after in watch.steps:
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        assert norm > 0.01  # the callback saw the gradients before clipping
        update = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before)))
        assert update == pytest.approx(0.01, rel=1e-4)


def test_grad_clip_value_clips_every_element():
    watch = _Updates()
    trainer = Trainer(
        _plain_sgd_model(), Looper(epochs=1, batch_size=64, max_steps=3), callbacks=[watch], verbose=0, grad_clip_value=1e-3, device="cpu"
    )
    trainer.fit(digits(), seed=0)
    for before, grads, after in watch.steps:
        expected = [b - g.clamp(-1e-3, 1e-3) for b, g in zip(before, grads)]
        assert max(g.abs().max() for g in grads) > 1e-3
        for a, e in zip(after, expected):
            assert torch.allclose(a, e, atol=1e-7)


def _plain_sgd_model():
    return Model(ObjectDef(MLP, 64, 32, 10, p=0.0), Optimizer(torch.optim.SGD, lr=1.0), Criterion(torch.nn.CrossEntropyLoss))


class _Minimal(Trainable):
    """A Trainable of no known framework: it takes the Trainer's defaults only."""

    def __init__(self) -> None:
        pass

    def train_step(self, batch, trainer):
        return {"loss": 0.0}


def test_a_model_that_cannot_honour_a_setting_refuses_it_by_name():
    trainer = Trainer(_Minimal(), Looper(epochs=1, batch_size=64), metrics=(), verbose=0, device="cpu", precision="bf16-mixed")
    with pytest.raises(ConfigError, match=r"_Minimal cannot train with device='cpu', precision='bf16-mixed'"):
        trainer.fit(digits(), seed=0)


class _Deferring(Model):
    """The torch Model, reading its values as it would on a GPU (once per logging step)."""

    @property
    def defers_reads(self):
        return True


def test_values_read_once_per_logging_step_give_the_same_history():
    class Losses(Callback):
        def __init__(self):
            self.seen = []

        def on_step_end(self, loss, outputs, **_):
            self.seen.append(loss)
            assert loss is not None or isinstance(outputs["loss"], torch.Tensor)

    deferring = _Deferring(ObjectDef(MLP, 64, 32, 10, p=0.2), Optimizer(torch.optim.Adam, lr=1e-2), Criterion(torch.nn.CrossEntropyLoss))
    watch = Losses()
    eager = Trainer(make_model(), Looper(epochs=2, batch_size=64), verbose=0, log_every_n_steps=3, device="cpu")
    deferred = Trainer(deferring, Looper(epochs=2, batch_size=64), callbacks=[watch], verbose=0, log_every_n_steps=3, device="cpu")
    eager.fit(digits(), seed=0)
    deferred.fit(digits(), seed=0)
    assert [loss is not None for loss in watch.seen] == [step % 3 == 0 for step in range(1, 21)]
    for a, b in zip(eager.history, deferred.history, strict=True):
        assert (a.name, a.step) == (b.name, b.step)
        assert b.values == pytest.approx(a.values, rel=1e-6)


def test_a_loaded_run_moves_to_the_device_it_is_asked_for(tmp_path):
    session = Session(trainer=_trainer(), data=digits(), db="mongomock://devices", name="dev")
    result = session.run()
    doc = session.db.collection("modules").find_one({"_id": result.run_id})
    assert (doc["device"], doc["world_size"]) == ("cpu", 1)
    loaded = Session.load(result.run_id, which=None, db=session.db, device="cpu")
    assert loaded.trainer.device == "cpu" and loaded.trainer.definition().kwargs["device"] == "cpu"
    assert loaded.trainer.model.device_name == "cpu"
    with pytest.raises(ConfigError, match=r"device='cuda:99' but torch sees"):
        Session.load(result.run_id, which=None, db=session.db, device="cuda:99")


def test_compile_trains_a_compiled_forward_with_the_plain_state_keys():
    torch.manual_seed(0)
    X = torch.randn(64, 4)
    y = (X[:, 0] > 0).long()
    def model():
        return Model(ObjectDef(torch.nn.Linear, 4, 2), Optimizer(torch.optim.SGD, lr=0.5), Criterion(torch.nn.CrossEntropyLoss))

    compiled = Trainer(model(), Looper(epochs=2, batch_size=32), metrics=(), verbose=0, compile=True, device="cpu")
    plain = Trainer(model(), Looper(epochs=2, batch_size=32), metrics=(), verbose=0, device="cpu")
    data = DataProvider(train=(X, y))
    compiled.fit(data, seed=0)
    plain.fit(data, seed=0)
    runtime = compiled.model.__dict__["_dry_runtime"]
    assert type(runtime.train_net).__name__ == "OptimizedModule"
    assert sorted(compiled.state_dict()) == sorted(plain.state_dict())
    for key, value in net_params(plain).items():
        assert torch.allclose(net_params(compiled)[key], value, atol=1e-6), key
