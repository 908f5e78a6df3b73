"""Model, Optimizer, Criterion: wrapping torch modules, inference alone, definitions, state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _train_helpers import MLP

from ptdry import NumpyDataset, TorchDataset
from ptdry.core.objectdef import ObjectDef
from ptdry.errors import ConfigError, NotReadyError, SerializationError
from ptdry.train.model import Criterion, Model, Optimizer


class Doubler(torch.nn.Module):
    """A foreign torch module with two inputs and no parameters of its own but a buffer."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.tensor(2.0))

    def forward(self, a, b):
        return (a + b) * self.scale


def test_a_model_alone_does_inference():
    model = Model(ObjectDef(MLP, 64, 16, 10))
    x = torch.randn(5, 64)
    out = model(x)
    assert out.shape == (5, 10)
    model.eval()
    assert torch.equal(model(x), model(x))  # no dropout in eval mode
    assert not model.training and model.train().training


def test_predict_runs_in_eval_mode_in_batches_and_gives_a_numpy_dataset_of_outputs_and_targets():
    from ptdry.train.nets import MLP as DropoutMLP

    model = Model(ObjectDef(DropoutMLP, 64, 16, 10, dropout=0.5))
    x, y = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32), np.arange(5)
    predicted = model.predict((x, y), batch_size=2)
    assert isinstance(predicted, NumpyDataset) and predicted.supervised and predicted.batch_size == 5
    outputs, targets = predicted.peek()
    assert isinstance(outputs, np.ndarray) and outputs.shape == (5, 10) and np.array_equal(targets, y)
    assert model.training  # the mode is restored
    expected = model.eval()(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)  # eval mode: no dropout
    inputs_only = model.predict(x)
    assert not inputs_only.supervised and np.allclose(inputs_only.peek(), outputs, rtol=1e-5, atol=1e-6)
    assert not model.predict((x,)).supervised
    with pytest.raises(ConfigError, match=r"data have different lengths \[4, 5\]"):
        model.predict((x, y[:4]))
    with pytest.raises(ConfigError, match="data is a str; expected an array of inputs, a tuple"):
        model.predict("x")
    with pytest.raises(ConfigError, match="batch_size must be a positive integer or None; received 0"):
        model.predict(x, batch_size=0)
    with pytest.raises(ConfigError, match=r"data has no samples: arrays of shapes \[\(0, 64\)\]"):
        model.predict(x[:0])


def test_predict_takes_every_form_of_data_and_gives_the_same_numbers():
    from torch.utils.data import TensorDataset

    from ptdry import DataLoader, DataProvider

    model = Model(ObjectDef(MLP, 8, 16, 3))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 8)).astype(np.float32), rng.integers(0, 3, 10)
    expected, _ = model.predict((x, y)).peek()
    forms = {
        "tensors": (torch.as_tensor(x), torch.as_tensor(y)),
        "numpy dataset": NumpyDataset((x, y)),
        "torch() of it, rows": NumpyDataset((x, y)).torch().unbatch(),
        "torch dataset": TensorDataset(torch.as_tensor(x), torch.as_tensor(y)),
        "TorchDataset batched by 3": TorchDataset(TensorDataset(torch.as_tensor(x), torch.as_tensor(y))).batch(3),
        "shuffled loader": DataLoader((x, y), batch_size=4, shuffle=True, drop_last=True),
        "provider split": DataProvider(train=(x[:2], y[:2]), test=(x, y)),
    }
    for name, data in forms.items():
        outputs, targets = model.predict(data, batch_size=4 if name == "tensors" else None).peek()
        np.testing.assert_allclose(outputs, expected, rtol=1e-6, err_msg=name)  # every row, in order
        assert isinstance(targets, np.ndarray) and np.array_equal(targets, y), name
    loader = forms["shuffled loader"]
    assert (loader.epochs_done, loader.batches_done) == (0, 0)  # predicting did not move it
    unlabelled = model.predict(NumpyDataset(x).torch().unbatch().batch(3))
    assert not unlabelled.supervised and np.allclose(unlabelled.peek(), expected, rtol=1e-6)


def test_any_torch_module_is_wrapped_unchanged():
    net = Doubler()
    model = Model(net)
    assert model.net is net
    assert torch.equal(model(torch.ones(2), torch.ones(2)), torch.full((2,), 4.0))
    assert list(model.state_dict()) == ["net.scale"]


def test_a_wrapped_instance_cannot_be_stored_in_a_definition():
    with pytest.raises(SerializationError, match=r"pass ObjectDef\(Doubler, \.\.\.\) instead"):
        Model(Doubler()).definition()


def test_a_net_from_an_objectdef_is_built_with_init_seed_and_rebuilt_identically():
    a = Model(ObjectDef(MLP, 64, 16, 10))
    torch.manual_seed(99)
    b = Model(ObjectDef(MLP, 64, 16, 10))
    c = Model(ObjectDef(MLP, 64, 16, 10), init_seed=1)
    for key, value in a.net.state_dict().items():
        assert torch.equal(value, b.net.state_dict()[key])
    assert not torch.equal(a.net.layers[0].weight, c.net.layers[0].weight)

    rebuilt = a.definition().build()
    assert rebuilt.dry_id == a.dry_id and isinstance(rebuilt.net, MLP)
    assert torch.equal(rebuilt.net.layers[0].weight, a.net.layers[0].weight)


def test_init_seed_none_uses_the_global_rng():
    torch.manual_seed(5)
    a = Model(ObjectDef(MLP, 64, 16, 10), init_seed=None)
    torch.manual_seed(5)
    b = Model(ObjectDef(MLP, 64, 16, 10), init_seed=None)
    assert torch.equal(a.net.layers[0].weight, b.net.layers[0].weight)


def test_optimizer_is_bound_by_the_model_and_its_state_is_in_the_model_state():
    model = Model(ObjectDef(MLP, 64, 16, 10), Optimizer(torch.optim.Adam, lr=0.01), Criterion(torch.nn.CrossEntropyLoss))
    assert model.optimizer.bound and model.optimizer.lr == 0.01
    loss = model.loss(model(torch.randn(8, 64)), torch.zeros(8, dtype=torch.long))
    loss.backward()
    model.optimizer.step()
    state = model.state_dict()
    assert "optimizer.torch_optimizer" in state
    assert state["optimizer.torch_optimizer"]["state"][0]["step"] == 1

    fresh = model.definition().build()
    fresh.load_state_dict(state)
    assert fresh.optimizer.torch_optimizer.state_dict()["state"][0]["step"] == 1
    assert torch.equal(fresh.net.layers[0].weight, model.net.layers[0].weight)


def test_an_unbound_optimizer_says_how_to_bind_it():
    opt = Optimizer(torch.optim.SGD, lr=0.1)
    assert opt.problems() == ["optimizer not bound to parameters"]
    with pytest.raises(NotReadyError, match=r"not bound to parameters yet; pass it to Model\(net, optimizer=\.\.\.\)"):
        opt.step()


def test_criterion_takes_a_class_or_a_function():
    out, target = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    by_class = Criterion(torch.nn.CrossEntropyLoss, label_smoothing=0.1)(out, target)
    by_function = Criterion(torch.nn.functional.cross_entropy, label_smoothing=0.1)(out, target)
    assert torch.allclose(by_class, by_function)
    assert Criterion(torch.nn.functional.cross_entropy).definition().build()(out, target) > 0


def test_loss_without_a_criterion_says_what_to_pass():
    with pytest.raises(NotReadyError, match=r"has no criterion; pass criterion=Criterion"):
        Model(ObjectDef(MLP)).loss(torch.zeros(1, 10), torch.zeros(1, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"net": "mlp"}, r"net must be a torch.nn.Module or an ObjectDef of one; received str"),
        ({"net": torch.nn.Linear(2, 2), "optimizer": torch.optim.SGD}, r"optimizer must be ptdry's Optimizer"),
        ({"net": torch.nn.Linear(2, 2), "criterion": 3}, r"criterion must be a Criterion or a loss callable; received 3"),
        ({"net": ObjectDef(torch.nn.Linear, 2, 2), "init_seed": "0"}, r"init_seed must be an integer or None; received '0'"),
    ],
)
def test_bad_model_arguments_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Model(**kwargs)


def test_bad_optimizer_and_criterion_arguments_are_named():
    with pytest.raises(ConfigError, match=r"Optimizer.optimizer_cls must be an optimizer class such as torch.optim.Adam: str given; received 'adam'"):
        Optimizer("adam")
    with pytest.raises(ConfigError, match=r"loss_cls must be a loss class or function; received 'mse'"):
        Criterion("mse")


def test_model_definition_records_the_recipe_and_hyperparameters():
    model = Model(ObjectDef(MLP, 64, 16, 10), Optimizer(torch.optim.Adam, lr=0.003))
    config = model.definition().config()
    assert config["net"]["__class__"].endswith(":MLP")
    assert config["optimizer"]["lr"] == 0.003
    assert config["optimizer"]["optimizer_cls"] == "torch.optim.adam:Adam"
