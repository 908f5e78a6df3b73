"""Callbacks: the registry on every Module, and the Callback base class."""

from __future__ import annotations

import math

import bson
import pytest

from ptdry import Callback, Callbacks, Module, StateDictError
from ptdry.errors import ConfigError


class NaNDetector(Callback):
    def on_step_end(self, loss, **_):
        if math.isnan(loss):
            raise RuntimeError("NaNs detected!")


class Recorder(Callback):
    """Appends ``(tag, trigger)`` to a shared log."""

    def __init__(self, tag, log=None):
        self.tag = tag
        self.log = [] if log is None else log

    def on_step_end(self, **kwargs):
        self.log.append((self.tag, "on_step_end"))


class EpochOnly(Callback):
    def __init__(self, log=None):
        self.log = [] if log is None else log

    def on_epoch_end(self, epoch, **_):
        self.log.append(("epoch", epoch))


class Counter(Callback):
    """A stateful callback: counts steps and remembers the last loss."""

    def __init__(self, every=1):
        self.every = every
        self.count = 0
        self.last_loss = None

    def on_step_end(self, loss=None, **_):
        self.count += 1
        self.last_loss = loss

    def extra_state(self):
        return {"count": self.count, "last_loss": self.last_loss}

    def load_extra_state(self, state):
        self.count = state.get("count", self.count)
        self.last_loss = state.get("last_loss", self.last_loss)


class PlainCallback:
    """Not a ptdry Callback: any object with trigger methods works, torch-style state too."""

    def __init__(self):
        self.seen = 0

    def on_step_end(self, **_):
        self.seen += 1

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


class Host(Module):
    def __init__(self):
        pass


# -- the example from the issue --------------------------------------------------------------------
def test_nan_detector_example_raises():
    m = Host()
    m.callbacks.register(NaNDetector())
    with pytest.raises(RuntimeError, match=r"NaNs detected!"):
        m.callbacks.call("on_step_end", loss=float("nan"))
    m.callbacks.call("on_step_end", loss=0.5)  # a finite loss passes


def test_an_error_from_a_callback_keeps_its_type_and_names_the_callback_and_trigger():
    m = Host()
    m.callbacks.register(Counter())
    m.callbacks.register(NaNDetector())
    with pytest.raises(RuntimeError, match=r"raised by callback 'NaNDetector' in on_step_end") as info:
        m.callbacks.call("on_step_end", loss=float("nan"))
    assert info.value.ptdry_callback == "NaNDetector"
    assert info.value.__notes__ == ["raised by callback 'NaNDetector' in on_step_end"]
    assert m.callbacks["Counter"].count == 1  # callbacks before it ran


# -- registration and dispatch ----------------------------------------------------------------------
def test_callbacks_are_called_in_registration_order():
    log = []
    m = Host()
    for tag in ("a", "b", "c"):
        m.callbacks.register(Recorder(tag, log))
    m.callbacks.call("on_step_end", loss=1.0)
    assert log == [("a", "on_step_end"), ("b", "on_step_end"), ("c", "on_step_end")]


def test_only_callbacks_defining_the_trigger_are_called():
    log = []
    m = Host()
    m.callbacks.register(Recorder("r", log))
    m.callbacks.register(EpochOnly(log))
    m.callbacks.call("on_epoch_end", epoch=3)
    m.callbacks.call("on_train_begin")  # nobody defines it: nothing happens
    assert log == [("epoch", 3)]
    assert [name for name, _ in m.callbacks.handlers("on_step_end")] == ["Recorder"]
    assert m.callbacks.handlers("on_train_begin") == []


def test_register_returns_the_callback_and_names_duplicates_uniquely():
    cbs = Callbacks()
    first = Recorder("a")
    assert cbs.register(first) is first
    cbs.register(Recorder("b"))
    cbs.register(Counter(), name="steps")
    assert cbs.names() == ["Recorder", "Recorder_2", "steps"]
    assert cbs["Recorder"] is first and len(cbs) == 3 and list(cbs)[0] is first


def test_register_refuses_a_class_and_a_taken_name():
    cbs = Callbacks()
    with pytest.raises(ConfigError, match=r"register\(\) needs a callback instance; received the class Counter"):
        cbs.register(Counter)
    cbs.register(Counter(), name="c")
    with pytest.raises(ConfigError, match=r"a callback named 'c' is already registered"):
        cbs.register(Counter(), name="c")


def test_callbacks_registered_later_are_dispatched_too():
    log = []
    cbs = Callbacks()
    cbs.register(Recorder("a", log))
    cbs.call("on_step_end")
    cbs.register(Recorder("b", log))
    cbs.call("on_step_end")
    assert [tag for tag, _ in log] == ["a", "a", "b"]


def test_remove_by_object_or_name():
    cbs = Callbacks()
    a = cbs.register(Recorder("a"))
    cbs.register(Counter())
    cbs.remove(a)
    cbs.remove("Counter")
    assert cbs.names() == [] and cbs.handlers("on_step_end") == []
    with pytest.raises(ConfigError, match=r"callback 'x' is not registered; registered: \[\]"):
        cbs.remove("x")


def test_trigger_names_must_be_identifiers_and_not_module_methods():
    cbs = Callbacks()
    with pytest.raises(ConfigError, match=r"'state_dict' is not a valid trigger name \(use e.g. 'on_step_end'\)"):
        cbs.call("state_dict")
    with pytest.raises(ConfigError, match=r"'on step' is not a valid trigger name"):
        cbs.call("on step")


def test_any_object_with_trigger_methods_can_be_a_callback():
    cbs = Callbacks()
    plain = cbs.register(PlainCallback())
    cbs.call("on_step_end", loss=0.1)
    assert plain.seen == 1


def test_a_callback_called_directly_runs_its_trigger_method():
    c = Counter()
    c("on_step_end", loss=0.3)
    assert c.count == 1 and c.last_loss == 0.3
    assert c("on_nothing") is None


# -- state ------------------------------------------------------------------------------------------
def test_a_callbacks_own_state_dict_round_trips_through_the_registry():
    src = Callbacks()
    counter = src.register(Counter(every=5))
    src.register(NaNDetector())
    src.register(PlainCallback())
    for loss in (0.5, 0.25):
        src.call("on_step_end", loss=loss)
    state = src.state_dict()
    assert state["Counter"] == {"count": 2, "last_loss": 0.25}
    assert state["NaNDetector"] == {} and state["PlainCallback"] == {"seen": 2}

    dst = Callbacks()
    dst.register(Counter(every=5))
    dst.register(NaNDetector())
    dst.register(PlainCallback())
    dst.load_state_dict(state)
    assert dst["Counter"].count == 2 and dst["Counter"].last_loss == 0.25
    assert dst["PlainCallback"].seen == 2
    assert counter.state_dict() == dst["Counter"].state_dict()


def test_strict_registry_load_names_missing_and_unregistered_callbacks():
    cbs = Callbacks()
    cbs.register(Counter())
    with pytest.raises(StateDictError, match=r"(?s)missing callbacks \(1\): Counter.*unregistered callbacks \(1\): Gone.*strict=False") as info:
        cbs.load_state_dict({"Gone": {"count": 1}})
    assert info.value.missing == ["Counter"] and info.value.unexpected == ["Gone"]
    cbs.load_state_dict({"Gone": {}}, strict=False)  # nothing to load, no error


def test_a_callbacks_state_is_checked_strictly_too():
    cbs = Callbacks()
    cbs.register(Counter())
    with pytest.raises(StateDictError, match=r"(?s)cannot load state into Counter:.*unexpected keys \(1\): bogus"):
        cbs.load_state_dict({"Counter": {"count": 1, "last_loss": None, "bogus": 1}})


# -- documents ----------------------------------------------------------------------------------------
def test_callbacks_document_round_trips_through_bson_and_rebuilds_the_callbacks():
    m = Host()
    m.callbacks.register(Counter(every=3))
    m.callbacks.register(NaNDetector(), name="nan_guard")
    doc = m.callbacks.to_document()
    assert [e["name"] for e in doc["callbacks"]] == ["Counter", "nan_guard"]
    assert doc["callbacks"][0]["cls"] == "test_callbacks_registry:Counter"
    back = Callbacks.from_document(bson.decode(bson.encode(doc)))
    assert back.names() == ["Counter", "nan_guard"]
    assert back["Counter"].every == 3
    assert back["Counter"].dry_id == m.callbacks["Counter"].dry_id
    with pytest.raises(RuntimeError, match=r"NaNs detected!"):
        back.call("on_step_end", loss=float("nan"))


def test_a_callback_without_a_definition_cannot_be_rebuilt_from_a_document():
    cbs = Callbacks()
    cbs.register(PlainCallback())
    doc = cbs.to_document()
    assert doc == {"callbacks": [{"name": "PlainCallback", "cls": "test_callbacks_registry:PlainCallback"}]}
    with pytest.raises(ConfigError, match=r"callback 'PlainCallback' was stored without a definition; cannot rebuild it"):
        Callbacks.from_document(doc)


def test_a_callback_is_a_module_with_identity():
    c = Counter(every=4)
    assert isinstance(c, Module) and c.dry_kwargs == {"every": 4, "dry_id": c.dry_id}
    assert c.definition().build().every == 4
