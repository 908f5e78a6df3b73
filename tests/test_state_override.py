"""The state contract users rely on: override ``state_dict`` / ``load_state_dict`` as in torch.

PTUtils rules 2 and 3: every Module implements them, and what constitutes a module's state
is up to the user. The base keeps its strictness for the keys it owns; loading is all or
nothing; building errors name the path in the tree.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdry import DBInterface, ObjectDef, Repo, StateDictError, load_object, save_object
from ptdry.core.module import Module
from ptdry.train.callbacks.checkpoint import MemoryStorage
from ptdry.train.model import Criterion, Model, Optimizer
from tests._state_classes import Array, Counted, Grid, Holder, Hybrid, Net


def test_the_natural_override_round_trips_through_a_rebuilt_definition():
    a = Array(shape=(8, 8))
    a.data[:] = np.arange(64).reshape(8, 8)
    b = a.definition().build()
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.data, a.data)


def test_a_parent_gathers_and_restores_a_child_that_overrides_state_dict_without_arguments():
    g = Grid()
    g.cells.data += 3
    state = g.state_dict()
    assert set(state) == {"cells.data", "counted.n", "counted.log", "level"}
    twin = g.definition().build()
    twin.load_state_dict(state)
    np.testing.assert_array_equal(twin.cells.data, g.cells.data)
    assert twin.counted.log == g.counted.log and twin.level == g.level


def test_a_torch_parent_can_hold_a_hybrid_whose_override_takes_no_arguments():
    outer = torch.nn.Sequential(Hybrid())
    state = outer.state_dict()
    assert {"0.lin.weight", "0.lin.bias", "0.counter.broken", "0.scale"} == set(state)


def test_strictness_still_holds_for_the_keys_the_base_owns():
    g = Grid()
    state = g.state_dict()
    del state["counted.n"]
    state["surprise"] = 1
    with pytest.raises(StateDictError, match=r"(?s)missing keys \(1\): counted\.n.*unexpected keys \(1\): surprise"):
        Grid().load_state_dict(state)


def test_an_override_that_forgets_its_own_key_is_reported_by_the_base():
    a = Array(shape=(2,))
    state = a.state_dict()
    state["stray"] = 0
    with pytest.raises(StateDictError, match=r"unexpected keys \(1\): stray"):
        Array(shape=(2,)).load_state_dict(state)


def test_extra_state_hooks_work_beside_overrides():
    c = Counted()
    c.n, c.log = 5, ["a"]
    twin = Counted()
    twin.load_state_dict(c.state_dict())
    assert (twin.n, twin.log) == (5, ["a"])


def test_save_object_and_load_object_keep_overridden_state(tmp_path):
    g = Grid()
    g.cells.data[0] = 42.0
    save_object(g, tmp_path / "g.ptdry")
    again = load_object(tmp_path / "g.ptdry")
    np.testing.assert_array_equal(again.cells.data, g.cells.data)


def test_a_repo_stores_and_loads_overridden_state():
    repo = Repo("mongomock://override")
    g = Grid()
    g.cells.data[1] = 7.0
    repo.add_object(g)
    again = Repo("mongomock://override").get_obj_by_id(g.dry_id)
    np.testing.assert_array_equal(again.cells.data, g.cells.data)


def test_checkpoints_and_resume_keep_overridden_state_of_a_trainer_child():
    from ptdry import Looper, Trainer

    from tests._state_classes import TrainerWithArray

    X = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    data_y = (X[:, 0] > 0).long()
    from ptdry import DataProvider

    data = DataProvider(train=(X, data_y))
    model = Model(ObjectDef(torch.nn.Linear, 4, 2), Optimizer(torch.optim.SGD, lr=0.1), Criterion(torch.nn.CrossEntropyLoss))
    trainer = TrainerWithArray(model, Looper(epochs=2, batch_size=8), progress_bar=False)
    trainer.memo.data += 1.5
    storage = MemoryStorage()
    trainer.fit(data, seed=0)
    trainer.save_checkpoint("end", storage=storage)
    twin = trainer.definition().build()
    twin.load_checkpoint(storage, "end")
    np.testing.assert_array_equal(twin.memo.data, trainer.memo.data)
    assert twin.looper.epochs_done == 2


def test_a_tensor_of_the_wrong_shape_fails_listing_every_key_and_loads_nothing():
    small, big = Net(4, 3), Net(4, 5)
    before = {k: v.clone() for k, v in big.state_dict().items() if torch.is_tensor(v)}
    with pytest.raises(StateDictError, match=r"(?s)nothing was loaded.*mismatched keys \(3\): .*body\.0\.weight: shape \(3, 4\) where the model has \(5, 4\)") as info:
        big.load_state_dict(small.state_dict())
    assert sorted(info.value.mismatched) == ["body.0.bias", "body.0.weight", "body.2.weight"]
    for k, v in big.state_dict().items():
        if torch.is_tensor(v):
            assert torch.equal(v, before[k]), f"{k} changed"


def test_an_optimizer_state_for_other_parameters_is_a_mismatch():
    with pytest.raises(StateDictError, match=r"opt: optimizer state for parameter groups of sizes \[4\] where the optimizer has \[6\]"):
        Net(extra=True).load_state_dict(Net().state_dict(), strict=False)


def test_a_mismatch_is_reported_even_with_strict_false():
    with pytest.raises(StateDictError, match="mismatched keys"):
        Net(4, 5).load_state_dict(Net(4, 3).state_dict(), strict=False)


def test_a_non_mapping_state_is_refused_by_name():
    with pytest.raises(StateDictError, match=r"expected a mapping of key paths .*received list"):
        Counted().load_state_dict([1, 2])


def test_a_build_error_keeps_its_type_and_names_the_path_in_the_tree():
    definition = ObjectDef(
        Holder,
        model=ObjectDef(Model, ObjectDef(torch.nn.Linear, 2, 1), optimizer=ObjectDef(Optimizer, torch.optim.SGD, lr="0.1")),
    )
    with pytest.raises(TypeError, match=r"(?s)while building Holder\.model\.optimizer = Optimizer"):
        definition.build()


def test_an_optimizer_with_bad_arguments_fails_where_it_is_made():
    with pytest.raises(TypeError, match=r"torch\.optim\.sgd\.SGD rejected lr='0\.1'"):
        Optimizer(torch.optim.SGD, lr="0.1")


def test_a_hybrid_reports_the_same_children_to_every_walker():
    h = Hybrid()
    names = [n for n, _ in h.named_children()]
    assert names == ["lin", "counter"]
    state = h.state_dict()
    assert any(k.startswith("counter.") for k in state) and any(k.startswith("lin.") for k in state)
    h.counter.broken = True
    assert h.problems() == ["counter: broken"]
    repo = Repo("mongomock://hybrid-walk")
    repo.add_object(h)
    assert repo.modules.count_documents({"root": h.dry_id}) == 2  # the hybrid and its plain child


def test_modules_keep_torch_semantics_for_children_so_to_and_train_work():
    h = Hybrid()
    h.train(False)
    assert not h.lin.training
    h.to(torch.float64)
    assert h.lin.weight.dtype == torch.float64


def test_the_base_state_dict_of_a_module_without_children_is_empty():
    assert dict(Module().state_dict()) == {}


def test_state_dict_of_a_db_interface_is_empty_and_loads():
    db = DBInterface("mongomock://empty-state")
    db.load_state_dict(db.state_dict())


class Optional(Module):
    """Its extra state has a key whose value is None: nothing to load."""

    def __init__(self):
        self.value = None

    def extra_state(self):
        return {"maybe": self.value, "always": 1}

    def load_extra_state(self, state):
        self.value = state.get("maybe")
