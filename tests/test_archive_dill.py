"""save_object(..., trusted=True) stores lambdas, closures and local classes with dill; loading
them needs trusted=True, and without it nothing is unpickled. Archives without such values
are the same as before."""

from __future__ import annotations

import io
import json
import pathlib
import sys
import zipfile

import numpy as np
import pytest

from ptdry import (
    ArchiveError,
    Module,
    ObjectDef,
    SerializationError,
    UntrustedArchiveError,
    load_object,
    save_object,
)
from ptdry.errors import ConfigError


class Scorer(Module):
    def __init__(self, fn=None, offset=0.0, extra=None):
        self.fn, self.offset, self.extra = fn, offset, extra
        self.hook = None

    def extra_state(self):
        return {"hook": self.hook}

    def load_extra_state(self, state):
        self.hook = state["hook"]


class Pair(Module):
    def __init__(self, left, right):
        self.left, self.right = left, right


def _manifest(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def _members(path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return sorted(zf.namelist())


def test_without_trusted_a_lambda_argument_is_refused_as_before_with_advice(tmp_path):
    with pytest.raises(SerializationError, match=r"argument Scorer.fn = <function .*<lambda>> cannot be imported") as info:
        save_object(Scorer(fn=lambda x: x + 1), tmp_path / "s.ptdry")
    assert "save_object(obj, file, trusted=True) stores such values with dill" in "\n".join(info.value.__notes__)
    assert not (tmp_path / "s.ptdry").exists()


def test_lambdas_closures_and_local_classes_round_trip_with_trusted(tmp_path):
    scale = 3

    def closure(x):
        return x * scale

    class Local:
        def __init__(self, v):
            self.v = v

    scorer = Scorer(fn=closure, offset=0.5, extra=[Local, lambda: "called"])
    scorer.hook = lambda x: x - 1  # a state value pickle cannot write
    save_object(scorer, tmp_path / "s.ptdry", trusted=True)

    assert _members(tmp_path / "s.ptdry") == ["dill/0.pkl", "dill/1.pkl", "dill/2.pkl", "dill/3.pkl", "manifest.json"]
    records = _manifest(tmp_path / "s.ptdry")["dill"]
    assert [r["path"] for r in records] == ["Scorer.fn", "Scorer.extra[0]", "Scorer.extra[1]", "hook"]
    assert records[1]["type"].startswith("class ") and records[1]["type"].endswith("<locals>.Local")

    loaded = load_object(tmp_path / "s.ptdry", trusted=True)
    assert loaded.dry_id == scorer.dry_id and loaded.offset == 0.5
    assert loaded.fn(2) == 6 and loaded.hook(5) == 4 and loaded.extra[1]() == "called"
    assert loaded.extra[0](7).v == 7 and loaded.extra[0].__qualname__.endswith("<locals>.Local")

    save_object(loaded, tmp_path / "again.ptdry", trusted=True)  # and again, from the loaded one
    assert load_object(tmp_path / "again.ptdry", trusted=True).fn(4) == 12


def test_loading_without_trusted_refuses_naming_every_key_path_and_unpickles_nothing(tmp_path):
    marker = tmp_path / "unpickled"

    def touch(path):
        pathlib.Path(path).write_text("ran")
        return path

    class Sentinel:
        def __reduce__(self):
            return (touch, (str(marker),))

    scorer = Scorer(fn=lambda x: x, extra=Sentinel())
    save_object(scorer, tmp_path / "s.ptdry", trusted=True)
    with pytest.raises(
        UntrustedArchiveError,
        match=r"cannot load archive .*s.ptdry: values Scorer.fn \(function .*<lambda>\), Scorer.extra \(.*Sentinel\) "
        r"stored with dill .*which runs arbitrary code when loaded; pass trusted=True to load_object",
    ):
        load_object(tmp_path / "s.ptdry")
    assert not marker.exists()
    load_object(tmp_path / "s.ptdry", trusted=True)
    assert marker.read_text() == "ran"


def test_a_dill_value_hidden_from_the_manifest_list_is_still_refused(tmp_path):
    save_object(Scorer(fn=lambda x: x), tmp_path / "s.ptdry", trusted=True)
    src, out = zipfile.ZipFile(tmp_path / "s.ptdry"), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "manifest.json":
                manifest = json.loads(data)
                del manifest["dill"]
                data = json.dumps(manifest).encode()
            dst.writestr(name, data)
    with pytest.raises(UntrustedArchiveError, match=r"value Scorer.fn \(function .*<lambda>\) stored with dill"):
        load_object(io.BytesIO(out.getvalue()))


def test_trusted_changes_nothing_when_nothing_needs_dill(tmp_path):
    scorer = Scorer(fn=np.sqrt, offset=2.0, extra={"k": (1, 2)})
    scorer.hook = {1, 2}  # pickled, as without trusted
    save_object(scorer, tmp_path / "plain.ptdry")
    save_object(scorer, tmp_path / "trusted.ptdry", trusted=True)
    plain, trusted = _manifest(tmp_path / "plain.ptdry"), _manifest(tmp_path / "trusted.ptdry")
    plain.pop("created_at"), trusted.pop("created_at")
    assert plain == trusted and "dill" not in trusted
    assert _members(tmp_path / "plain.ptdry") == _members(tmp_path / "trusted.ptdry")


def test_one_object_met_twice_is_stored_once_and_loads_as_one(tmp_path):
    fn = lambda x: x * 2  # noqa: E731
    pair = Pair(Scorer(fn=fn), Scorer(fn=fn))
    pair.left.hook = fn
    save_object(pair, tmp_path / "p.ptdry", trusted=True)
    assert [r["path"] for r in _manifest(tmp_path / "p.ptdry")["dill"]] == ["Pair.args[0].fn"]
    loaded = load_object(tmp_path / "p.ptdry", trusted=True)
    assert loaded.left.fn is loaded.right.fn is loaded.left.hook and loaded.left.fn(3) == 6


def test_large_data_in_an_argument_is_still_refused_for_its_size():
    with pytest.raises(SerializationError, match=r"argument Scorer.extra is an array of 80000 bytes, over the"):
        save_object(Scorer(extra=np.zeros(10_000)), io.BytesIO(), trusted=True)


def test_what_dill_cannot_store_either_raises_serialization_error_naming_its_path():
    def gen():
        yield 1

    with pytest.raises(SerializationError, match=r"Scorer.extra \(builtins.generator\) cannot be stored, not even with dill"):
        save_object(Scorer(extra=gen()), io.BytesIO(), trusted=True)


def test_a_definition_holding_a_dill_marker_outside_an_archive_cannot_be_loaded():
    data = {"cls": f"{__name__}:Scorer", "kwargs": {"fn": {"__dill_ref__": {"index": 0, "path": "Scorer.fn", "type": "x"}}}}
    with pytest.raises(UntrustedArchiveError, match=r"definition.fn holds a value stored with dill \(x\), which runs code"):
        ObjectDef.from_dict(data)
    with pytest.raises(ConfigError, match=r"definition.fn: a value stored with dill \(x\) whose bytes are not here"):
        ObjectDef.from_dict(data, trusted=True)


def test_without_dill_installed_saving_and_loading_say_how_to_install_it(tmp_path, monkeypatch):
    save_object(Scorer(fn=lambda x: x), tmp_path / "s.ptdry", trusted=True)
    monkeypatch.setitem(sys.modules, "dill", None)  # what `import dill` does when it is not installed
    with pytest.raises(SerializationError, match=r"storing Scorer.fn .* needs the dill package.*pip install 'ptdry\[dill\]'"):
        save_object(Scorer(fn=lambda x: x), io.BytesIO(), trusted=True)
    with pytest.raises(ArchiveError, match=r"loading Scorer.fn from archive .* needs the dill package.*'ptdry\[dill\]'"):
        load_object(tmp_path / "s.ptdry", trusted=True)
