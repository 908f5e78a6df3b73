"""The CUDA paths: training on a GPU, float16 with its scaler, checkpoints that move between
a GPU and the CPU, the CUDA generators in exact resume, values read once per logging step.
These run where torch sees a GPU (and are skipped, "no CUDA device", elsewhere)."""

from __future__ import annotations

import pytest
import torch
from _train_helpers import CrashAt, Recorder, digits, make_model, net_params

from ptdry import Checkpoint, Looper, MemoryStorage, Session, Trainer
from ptdry.train.rng import get_rng_state, set_rng_state

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _trainer(epochs: int = 2, **kwargs) -> Trainer:
    return Trainer(make_model(), Looper(epochs=epochs, batch_size=64), verbose=0, **kwargs)


def test_auto_trains_on_the_gpu_and_reads_values_once_per_logging_step():
    trainer = _trainer(log_every_n_steps=5, callbacks=[Recorder()])
    metrics = trainer.fit(digits(), seed=0)
    assert trainer.model.device_name == "cuda:0"
    assert trainer.model.defers_reads
    assert all(p.is_cuda for p in trainer.model.net.parameters())
    assert [s.step for s in trainer.history if s.name == "step"] == [5, 10, 15, 20]
    assert metrics["val.accuracy"] > 0.5


def test_a_checkpoint_saved_on_the_gpu_loads_on_the_cpu_and_back():
    storage = MemoryStorage(serialize=True)
    gpu = _trainer(device="cuda", callbacks=[Checkpoint(every_n_epochs=1, storage=storage)])
    gpu.fit(digits(), seed=0)
    cpu = _trainer(device="cpu")
    cpu.load_checkpoint(storage)
    cpu.model.to_device("cpu")
    for key, value in net_params(gpu).items():
        assert torch.equal(net_params(cpu)[key], value.cpu()), key
    state = cpu.model.optimizer.torch_optimizer.state
    assert all(t.device.type == "cpu" for s in state.values() for k, t in s.items() if k != "step")
    back = _trainer(device="cuda")
    back.load_state_dict(cpu.state_dict())
    back.model.to_device("cuda")
    assert all(t.is_cuda for s in back.model.optimizer.torch_optimizer.state.values() for k, t in s.items() if k != "step")


def test_a_run_on_the_gpu_is_loaded_on_the_cpu_by_session_load():
    session = Session(trainer=_trainer(device="cuda"), data=digits(), db="mongomock://cuda", name="gpu")
    result = session.run()
    loaded = Session.load(result.run_id, which=None, db=session.db, device="cpu")
    assert loaded.trainer.model.device_name == "cpu"
    for key, value in net_params(session.trainer).items():
        assert torch.equal(net_params(loaded.trainer)[key], value.cpu()), key


def test_16_mixed_on_the_gpu_resumes_exactly_with_its_scaler_and_cuda_generators():
    data = digits()
    reference = _trainer(precision="16-mixed")
    reference.fit(data, seed=1)
    storage = MemoryStorage(serialize=True)
    crashing = _trainer(precision="16-mixed", callbacks=[CrashAt(13)])
    crashing.add_callback(Checkpoint(every_n_steps=4, every_n_epochs=None, save_last=1, on_exception=False, storage=storage))
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit(data, seed=1)
    assert crashing.state_dict()["rng"]["torch_cuda"] is not None
    resumed = _trainer(precision="16-mixed")
    resumed.load_checkpoint(storage)
    resumed.fit(data, seed=1)
    assert resumed.state_dict()["loss_scaler"] == reference.state_dict()["loss_scaler"]
    for key, value in net_params(reference).items():
        assert torch.equal(net_params(resumed)[key], value), key


def test_the_cuda_generators_are_captured_and_restored():
    torch.cuda.init()
    state = get_rng_state()
    a = torch.rand(3, device="cuda")
    set_rng_state(state)
    assert torch.equal(a, torch.rand(3, device="cuda"))


def test_bf16_mixed_trains_on_the_gpu_where_supported():
    if not torch.cuda.is_bf16_supported():
        with pytest.raises(Exception, match="has no bfloat16 support"):
            _trainer(precision="bf16-mixed").fit(digits(), seed=0)
        return
    metrics = _trainer(precision="bf16-mixed").fit(digits(), seed=0)
    assert metrics["val.accuracy"] > 0.5
