"""Module: callable base, captured identity, the tree of children, state_dict round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdry import Module, ObjectDef, State, StateDictError
from ptdry.errors import ConfigError, PtdryError


# -- classes used below (module level, so definitions can name them) -------------------------
class Data(Module):
    def __init__(self, data):
        pass


class Opts(Module):
    def __init__(self, x, y=2, *, z=3):
        self.x, self.y, self.z = x, y, z


class SeenKwargs(Module):
    def __init__(self, a=1, **kwargs):
        self.seen = dict(kwargs)


class SuperAtStart(Module):
    def __init__(self, x):
        super().__init__()
        self.x = x


class SuperInMiddle(Module):
    def __init__(self, x):
        self.before = x
        super().__init__()
        self.after = x


class SuperAtEnd(Module):
    def __init__(self, x):
        self.x = x
        super().__init__()


class SuperManyTimes(Module):
    def __init__(self, x):
        super().__init__()
        self.x = x
        super().__init__()
        super().__init__()


class Base(Module):
    def __init__(self, width, depth=1):
        self.width, self.depth = width, depth


class Derived(Base):
    def __init__(self, n, scale=10):
        super().__init__(n * scale, depth=7)
        self.n = n


class Inherits(Base):
    """No __init__ of its own: the base's signature is captured."""


class Net(Module, torch.nn.Module):
    """A Module that is a torch network."""

    def __init__(self, n_in=3, n_out=2):
        self.lin = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.lin(x)


class NetCallingSuper(Module, torch.nn.Module):
    def __init__(self, n_in=3):
        super().__init__()
        self.lin = torch.nn.Linear(n_in, 1)
        super().__init__()  # must not reset torch's parameters

    def forward(self, x):
        return self.lin(x)


class Counter(Module):
    def __init__(self, start=0):
        self.n = start

    def __call__(self):
        self.n += 1
        return self.n

    def extra_state(self):
        return {"n": self.n}

    def load_extra_state(self, state):
        self.n = state.get("n", self.n)


class Holder(Module):
    """Children of every kind: a Module, a torch module, an optimizer, two schedulers."""

    def __init__(self):
        self.counter = Counter()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt)
        self.note = "not a child"


class Values(Module):
    """Extra state of every supported kind."""

    def __init__(self):
        self.values = {
            "tensor": torch.randn(3, 4, dtype=torch.float64),
            "half": torch.randn(5).to(torch.bfloat16),
            "array": np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32),
            "int": 7,
            "float": 0.1 + 0.2,
            "text": "hello",
            "nested": {"a": [1, 2.5, "x"], "b": {"c": np.arange(4)}},
        }

    def extra_state(self):
        return dict(self.values)

    def load_extra_state(self, state):
        self.values.update(state)


class Tree(Module):
    def __init__(self):
        self.values = Values()
        self.holder = Holder()


class Inner(Module, torch.nn.Module):
    """A hybrid holding an optimizer and a plain Module: torch cannot restore those itself."""

    def __init__(self):
        self.lin = torch.nn.Linear(2, 2)
        self.opt = torch.optim.SGD(self.lin.parameters(), lr=0.1, momentum=0.9)
        self.counter = Counter()

    def forward(self, x):
        return self.lin(x)


class Outer(Module, torch.nn.Module):
    def __init__(self):
        self.inner = Inner()

    def forward(self, x):
        return self.inner(x)


def _train_step(holder: Holder) -> None:
    loss = holder.net(torch.ones(4, 2)).pow(2).sum()
    loss.backward()
    holder.opt.step()
    holder.sched.step()
    holder.plateau.step(loss.item())


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def _assert_bitwise_equal(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(_bytes(a), _bytes(b)), path
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, path
        assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_bitwise_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_bitwise_equal(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, path


# -- callable ---------------------------------------------------------------------------------
def test_base_call_raises_not_implemented_naming_the_class():
    with pytest.raises(NotImplementedError, match=r"^Data does not define __call__"):
        Data([1])()


def test_subclass_call_is_its_primary_action():
    c = Counter()
    assert c() == 1 and c() == 2


# -- identity ---------------------------------------------------------------------------------
def test_identity_is_captured_without_calling_super_init():
    d = Data([1, 2, 3])
    assert d.dry_args == ([1, 2, 3],)
    assert list(d.dry_kwargs) == ["dry_id"]
    assert d.dry_id == d.dry_kwargs["dry_id"]


def test_dry_id_is_a_fresh_uuid4_string_per_object():
    import uuid

    a, b = Data(1), Data(1)
    assert a.dry_id != b.dry_id
    assert uuid.UUID(a.dry_id).version == 4


def test_defaults_the_caller_omitted_are_recorded_in_dry_kwargs():
    o = Opts(1)
    assert o.dry_args == (1,)
    assert o.dry_kwargs == {"y": 2, "z": 3, "dry_id": o.dry_id}


def test_defaulted_parameter_passed_positionally_is_recorded_and_used():
    o = Opts(1, 5)
    assert o.y == 5
    assert o.dry_args == (1,)
    assert o.dry_kwargs["y"] == 5
    assert o.definition().build().y == 5


def test_keyword_arguments_are_recorded_in_dry_kwargs():
    o = Opts(x=1, z=9)
    assert o.dry_kwargs["z"] == 9 and o.x == 1


def test_var_keyword_arguments_are_recorded_as_kwargs():
    s = SeenKwargs(b=2, c="three")
    assert s.seen == {"b": 2, "c": "three"}
    assert s.dry_kwargs == {"a": 1, "b": 2, "c": "three", "dry_id": s.dry_id}


def test_dry_id_may_be_given():
    d = Data([1], dry_id="my-id")
    assert d.dry_id == "my-id"
    assert d.dry_kwargs == {"dry_id": "my-id"}


def test_dry_id_never_reaches_the_user_init():
    s = SeenKwargs(dry_id="abc", b=1)
    assert "dry_id" not in s.seen
    assert s.dry_id == "abc"


def test_an_empty_or_non_string_dry_id_is_refused():
    with pytest.raises(ConfigError, match=r"dry_id must be a non-empty string; received 5"):
        Data([1], dry_id=5)
    with pytest.raises(ConfigError, match=r"dry_id must be a non-empty string; received ''"):
        Data([1], dry_id="")


def test_wrong_constructor_arguments_raise_the_natural_type_error():
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'data'"):
        Data()


@pytest.mark.parametrize("cls", [SuperAtStart, SuperInMiddle, SuperAtEnd, SuperManyTimes])
def test_calling_super_init_anywhere_and_any_number_of_times_keeps_identity(cls):
    m = cls([4, 5], dry_id="fixed")
    assert m.dry_id == "fixed"
    assert m.dry_args == ([4, 5],)
    assert m.dry_kwargs == {"dry_id": "fixed"}
    m2 = cls(3)
    assert m2.dry_args == (3,) and list(m2.dry_kwargs) == ["dry_id"]


def test_calling_init_again_does_not_change_identity():
    m = SuperAtStart(1)
    before = (m.dry_id, m.dry_args, m.dry_kwargs)
    m.__init__(2)
    assert m.x == 2
    assert (m.dry_id, m.dry_args, m.dry_kwargs) == before


def test_subclass_of_subclass_captures_the_outermost_call_only():
    d = Derived(3)
    assert (d.width, d.depth, d.n) == (30, 7, 3)
    assert d.dry_args == (3,)
    assert d.dry_kwargs == {"scale": 10, "dry_id": d.dry_id}
    again = d.definition().build()
    assert type(again) is Derived and (again.width, again.depth) == (30, 7)
    assert again.dry_id == d.dry_id


def test_subclass_without_init_captures_the_inherited_signature():
    m = Inherits(4)
    assert m.dry_args == (4,) and m.dry_kwargs == {"depth": 1, "dry_id": m.dry_id}


# -- torch hybrids ----------------------------------------------------------------------------
def test_hybrid_module_registers_parameters_and_forward_runs_through_call():
    net = Net(3, 2)
    assert isinstance(net, torch.nn.Module)
    assert [n for n, _ in net.named_parameters()] == ["lin.weight", "lin.bias"]
    assert net(torch.zeros(5, 3)).shape == (5, 2)
    assert list(net.state_dict()) == ["lin.weight", "lin.bias"]
    assert isinstance(net.state_dict(), State)


def test_hybrid_module_definition_rebuilds_the_same_network_shape_and_id():
    net = Net(4, n_out=1)
    d = net.definition()
    assert d == ObjectDef(Net, n_in=4, n_out=1, dry_id=net.dry_id)
    again = d.build()
    assert again.lin.weight.shape == (1, 4) and again.dry_id == net.dry_id


def test_hybrid_calling_super_init_keeps_its_parameters():
    net = NetCallingSuper(2)
    assert [n for n, _ in net.named_parameters()] == ["lin.weight", "lin.bias"]
    assert net.dry_args == () and net.dry_kwargs["n_in"] == 2


def test_hybrid_to_and_parameters_keep_working():
    net = Net().to(torch.float64)
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert net.training and not net.eval().training


# -- the tree -----------------------------------------------------------------------------------
def test_modules_torch_modules_optimizers_and_schedulers_become_children():
    h = Holder()
    names = dict(h.named_children())
    assert list(names) == ["counter", "net", "opt", "sched", "plateau"]
    assert names["counter"] is h.counter and names["plateau"] is h.plateau
    assert list(h.children()) == list(names.values())


def test_replacing_a_child_with_a_plain_value_unregisters_it():
    h = Holder()
    h.counter = 3
    del h.net
    assert [n for n, _ in h.named_children()] == ["opt", "sched", "plateau"]


def test_named_modules_yields_dotted_paths_like_torch():
    h = Holder()
    assert [n for n, _ in h.named_modules()] == ["", "counter", "net", "net.0", "net.1", "net.2"]
    assert dict(h.named_modules())["net.2"] is h.net[2]


def test_named_modules_lists_a_shared_child_once():
    t = Tree()
    t.alias = t.values
    assert [n for n, _ in t.named_modules()].count("alias") == 0


def test_apply_visits_every_module_children_first_and_returns_self():
    h = Holder()
    seen = []
    assert h.apply(lambda m: seen.append(type(m).__name__)) is h
    assert seen == ["Counter", "Linear", "ReLU", "Linear", "Sequential", "Holder"]


# -- state_dict -----------------------------------------------------------------------------------
def test_state_dict_returns_a_state_with_attribute_access_that_returns_itself_when_called():
    s = Counter(5).state_dict()
    assert isinstance(s, State) and isinstance(s, dict)
    assert s.n == 5 and s["n"] == 5
    assert s() is s
    with pytest.raises(AttributeError, match=r"State has no key 'missing'"):
        s.missing


def test_state_dict_gathers_every_child_by_dotted_path():
    h = Holder()
    assert list(h.state_dict()) == [
        "counter.n",
        "net.0.weight",
        "net.0.bias",
        "net.2.weight",
        "net.2.bias",
        "opt",
        "sched",
        "plateau",
    ]


def test_state_dict_holds_tensors_arrays_scalars_strings_and_nested_values():
    s = Values().state_dict()
    assert isinstance(s.tensor, torch.Tensor) and isinstance(s.array, np.ndarray)
    assert s.int == 7 and s.text == "hello" and s.nested["b"]["c"].tolist() == [0, 1, 2, 3]


def test_load_state_dict_round_trip_is_bitwise_exact():
    torch.manual_seed(0)
    src = Tree()
    _train_step(src.holder)
    _train_step(src.holder)
    src.holder.counter()
    state = src.state_dict()

    dst = Tree()
    assert dst.load_state_dict(state) is None
    _assert_bitwise_equal(dict(state), dict(dst.state_dict()))
    assert dst.holder.counter.n == 1
    assert dst.holder.opt.state_dict()["state"][0]["momentum_buffer"].abs().sum() > 0
    assert dst.holder.sched.last_epoch == 2
    assert dst.holder.plateau.state_dict() == src.holder.plateau.state_dict()


def test_load_state_dict_into_nested_hybrids_restores_optimizers_and_plain_modules():
    src = Outer()
    src(torch.ones(1, 2)).sum().backward()
    src.inner.opt.step()
    src.inner.counter.n = 7
    dst = Outer()
    dst.load_state_dict(src.state_dict())
    assert dst.inner.counter.n == 7
    _assert_bitwise_equal(dict(src.state_dict()), dict(dst.state_dict()))


def test_strict_load_lists_every_missing_and_unexpected_key():
    h = Holder()
    state = h.state_dict()
    del state["counter.n"], state["net.2.bias"]
    state["extra.one"] = 1
    state["extra.two"] = 2
    with pytest.raises(StateDictError, match=r"(?s)cannot load state into Holder:.*missing keys \(2\): counter\.n, net\.2\.bias.*unexpected keys \(2\): extra\.one, extra\.two.*strict=False") as info:
        h.load_state_dict(state)
    assert info.value.missing == ["counter.n", "net.2.bias"]
    assert info.value.unexpected == ["extra.one", "extra.two"]
    assert isinstance(info.value, KeyError) and isinstance(info.value, PtdryError)


def test_strict_load_changes_nothing_when_it_fails():
    dst = Counter(1)
    with pytest.raises(StateDictError, match=r"unexpected keys \(1\): m"):
        dst.load_state_dict({"n": 9, "m": 1})
    assert dst.n == 1


def test_non_strict_load_restores_the_keys_that_match():
    src, dst = Holder(), Holder()
    src.counter.n = 4
    state = {"counter.n": 4, "net.0.weight": src.net[0].weight.detach().clone(), "unknown": 1}
    dst.load_state_dict(state, strict=False)
    assert dst.counter.n == 4
    assert torch.equal(dst.net[0].weight, src.net[0].weight)
    assert not torch.equal(dst.net[2].weight, src.net[2].weight)  # not in the state: untouched


class _Pair(Module):
    dry_data_args = ("values",)

    def __init__(self, values, label="x"):
        self.values = values
        self.label = label
        self._record_argument("values", list(values))  # as converted


def test_record_argument_changes_an_argument_given_positionally_too():
    pair = _Pair((1, 2), "y")
    assert pair.dry_args == ([1, 2],) and pair.dry_kwargs["label"] == "y"
    with pytest.raises(ConfigError, match=r"_Pair has no recorded argument 'nope'"):
        pair._record_argument("nope", 1)


def test_a_data_argument_given_positionally_is_fingerprinted_not_stored():
    from ptdry.core.dataref import DataRef

    definition = _Pair(np.arange(5)).definition()
    assert isinstance(definition.args[0], DataRef) and definition.args[0] == DataRef.of(list(np.arange(5)))
    assert DataRef.of([np.int64(1)]) != DataRef.of([np.int64(2)])  # NumPy scalars by value
