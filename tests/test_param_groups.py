"""Optimizer parameter groups by name: per-submodule learning rate and weight decay, stored in
the definition (plain JSON, queryable), each parameter in exactly one group."""

from __future__ import annotations

import json

import pytest
import torch

from ptdry import Repo
from ptdry.core.objectdef import ObjectDef
from ptdry.errors import ConfigError, NotReadyError
from ptdry.train.model import Criterion, Model, Optimizer


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
        self.head = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.backbone(x))


GROUPS = [{"params": "backbone", "lr": 1e-4}, {"params": "head", "weight_decay": 0.0}]


def model(groups=GROUPS, **kwargs):
    optimizer = Optimizer(torch.optim.AdamW, lr=1e-3, weight_decay=0.01, groups=groups, **kwargs)
    return Model(ObjectDef(Net), optimizer, Criterion(torch.nn.CrossEntropyLoss))


def test_each_submodule_gets_its_own_learning_rate_and_weight_decay():
    m = model()
    groups = m.optimizer.torch_optimizer.param_groups
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(1e-4, 0.01), (1e-3, 0.0)]
    assert m.optimizer.group_names() == [
        ["backbone.0.weight", "backbone.0.bias", "backbone.1.weight", "backbone.1.bias"],
        ["head.weight", "head.bias"],
    ]
    assert groups[1]["params"][0] is m.net.head.weight
    assert m.optimizer.lrs == [1e-4, 1e-3]


def test_groups_are_plain_json_in_the_definition_and_rebuild_the_same_groups():
    m = model()
    stored = json.loads(json.dumps(m.definition().to_dict()))
    assert stored["kwargs"]["optimizer"]["__def__"]["kwargs"]["groups"] == GROUPS
    rebuilt = ObjectDef.from_dict(stored).build()
    assert rebuilt.optimizer.group_names() == m.optimizer.group_names()


def test_runs_can_be_queried_by_their_groups(db_name):
    repo = Repo(f"mongomock://{db_name}")
    repo.add_object(model())
    repo.add_object(model(groups=[{"params": "backbone", "lr": 1e-5}, {"params": "head"}]))
    found = repo.find({"config.optimizer.groups": {"$elemMatch": {"params": "backbone", "lr": 1e-4}}})
    assert len(found) == 1 and found[0].get_path("config.optimizer.groups.0.lr") == 1e-4


def test_globs_and_regexes_of_parameter_names_select_parameters():
    m = model(groups=[{"params": ["*.bias", "backbone.1.weight"], "weight_decay": 0.0}, {"params": r"re:(backbone\.0|head)\.weight"}])
    assert m.optimizer.group_names() == [
        ["backbone.0.bias", "backbone.1.bias", "head.bias", "backbone.1.weight"],
        ["backbone.0.weight", "head.weight"],
    ]


def test_the_optimizer_state_round_trips_with_groups():
    m = model()
    loss = m.loss(m(torch.randn(3, 4)), torch.tensor([0, 1, 0]))
    m.backward(loss)
    m.optimizer_step()
    fresh = m.definition().build()
    fresh.load_state_dict(m.state_dict())
    assert fresh.optimizer.torch_optimizer.state_dict()["param_groups"] == m.optimizer.torch_optimizer.state_dict()["param_groups"]


@pytest.mark.parametrize(
    "groups, message",
    [
        ([{"params": "backbone"}], r"parameters in no group: head\.weight, head\.bias; each parameter must be in exactly one group"),
        (
            [{"params": "backbone"}, {"params": ["head", "backbone.1"]}],
            r"parameters in more than one group \(groups\[0\] and groups\[1\]\): backbone\.1\.weight, backbone\.1\.bias",
        ),
        ([{"params": "backbone"}, {"params": "haed"}], r"groups\[1\]\['params'\] entry 'haed' matches no submodule or parameter of the net; submodules: backbone"),
        ([{"params": "*"}, {"params": "re:("}], r"groups\[1\]\['params'\]: invalid regular expression '\('"),
        ([{"lr": 0.1}], r"groups\[0\] must be a dict with a 'params' key"),
        ([{"params": 3}], r"groups\[0\]\['params'\] must be a non-empty string or list of strings"),
        ({"params": "head"}, r"groups must be a non-empty list of dicts"),
        ([{"params": "backbone", "lrr": 0.1}, {"params": "head"}], r"groups\[0\] option 'lrr' is not an argument of AdamW \(its arguments: "),
    ],
)
def test_bad_groups_are_refused_naming_the_parameters(groups, message):
    with pytest.raises(ConfigError, match=message):
        model(groups=groups)


def test_groups_need_the_net_to_name_parameters():
    opt = Optimizer(torch.optim.SGD, lr=0.1, groups=[{"params": "head"}])
    with pytest.raises(ConfigError, match=r"Optimizer\(groups=\.\.\.\) names parameters, so it binds to the network: bind\(net\), not to list"):
        opt.bind(list(Net().parameters()))
    with pytest.raises(NotReadyError, match=r"was not bound to a network"):
        opt.group_names()
