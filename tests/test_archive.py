"""Archives: save_object / load_object / state_to_bytes round trips, trust, atomicity, errors."""

from __future__ import annotations

import io
import json
import math
import os
import pathlib
import random
import re
import sys
import time
import zipfile

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptdry import Module
from ptdry.errors import ArchiveError, PtdryError, UntrustedArchiveError
from ptdry.io.archive import load_object, save_object, state_from_bytes, state_to_bytes


# -- objects under test (module level: archives store classes by import path) ---------------
class Net(Module, torch.nn.Module):
    """A ptdry Module that is also a torch module, with a torch child and a bfloat16 buffer."""

    def __init__(self, width=4):
        self.body = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))
        self.register_buffer("bf16", torch.randn(5, dtype=torch.bfloat16))

    def forward(self, x):
        return self.body(x)


class Trainer(Module):
    def __init__(self, net, lr=0.01):
        self.net = net
        self.opt = torch.optim.Adam(net.parameters(), lr=lr)
        self.steps = 0
        self.table = np.random.rand(3, 2)

    def step(self):
        self.opt.zero_grad()
        self.net(torch.randn(6, 3)).pow(2).sum().backward()
        self.opt.step()
        self.steps += 1

    def extra_state(self):
        meta = {"a.b": (1, 2.5, None), "$x": np.float32(1.5), "__tuple__": [b"raw", "s"], 7: float("nan")}
        return {"steps": self.steps, "table": self.table, "meta": meta}

    def load_extra_state(self, state):
        self.steps, self.table = state["steps"], state["table"]


class Experiment(Module):
    def __init__(self, trainer, note="demo"):
        self.trainer = trainer
        self.labels = np.array([True, False, True])
        self.zero_d = np.array(3.25, dtype=np.float16)

    def extra_state(self):
        return {"labels": self.labels, "zero_d": self.zero_d}

    def load_extra_state(self, state):
        self.labels, self.zero_d = state["labels"], state["zero_d"]


class Tied(Module, torch.nn.Module):
    """Two Linear layers sharing one weight Parameter."""

    def __init__(self, n=4):
        self.a = torch.nn.Linear(n, n)
        self.b = torch.nn.Linear(n, n)
        self.b.weight = self.a.weight


def _touch(path):
    pathlib.Path(path).write_text("unpickled!")
    return Marker(path)


class Marker:
    """Unpickling it creates a file: proof that untrusted loading unpickles nothing."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_touch, (self.path,))

    def __eq__(self, other):
        return isinstance(other, Marker) and other.path == self.path


class Holder(Module):
    def __init__(self, marker_path="unused"):
        self.thing = Marker(marker_path)

    def extra_state(self):
        return {"thing": self.thing, "objects": np.array([1, "a"], dtype=object)}

    def load_extra_state(self, state):
        self.thing = state["thing"]


class Exploding(Module):
    def extra_state(self):
        raise RuntimeError("state_dict failed part-way")


# -- helpers --------------------------------------------------------------------------------
def assert_same(a, b, path="state"):
    """Deep equality with types; bitwise for tensors, arrays and NumPy scalars."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), path
        for (k, v), w in zip(a.items(), b.values()):
            assert_same(v, w, f"{path}[{k!r}]")
        return
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (v, w) in enumerate(zip(a, b)):
            assert_same(v, w, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        as_bytes = lambda t: t.detach().contiguous().reshape(-1).view(torch.uint8)  # noqa: E731
        assert a.numel() == 0 or torch.equal(as_bytes(a), as_bytes(b)), path
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(np.ascontiguousarray(a).reshape(-1).view(np.uint8), np.ascontiguousarray(b).reshape(-1).view(np.uint8)), path
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), path
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b)), path
    else:
        assert a == b, path


def make_experiment(width=4):
    exp = Experiment(Trainer(Net(width), lr=0.05), note="three levels")
    exp.trainer.step()
    return exp


def assert_loaded_equal(loaded, original):
    assert type(loaded) is type(original)
    assert loaded.definition() == original.definition()
    assert loaded.dry_id == original.dry_id
    assert_same(loaded.state_dict(), original.state_dict())


def rewrite(data: bytes, edit_manifest=None, drop=()) -> bytes:
    """A copy of an archive with its manifest edited and some members dropped."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name in drop:
                continue
            member = src.read(name)
            if name == "manifest.json" and edit_manifest:
                manifest = json.loads(member)
                edit_manifest(manifest)
                member = json.dumps(manifest).encode()
            dst.writestr(name, member)
    return out.getvalue()


def archive_bytes(obj) -> bytes:
    buf = io.BytesIO()
    save_object(obj, buf)
    return buf.getvalue()


# -- round trips ----------------------------------------------------------------------------
def test_a_three_level_tree_with_a_torch_network_and_a_stepped_optimizer_round_trips(tmp_path):
    exp = make_experiment()
    save_object(exp, tmp_path / "exp.ptdry")
    loaded = load_object(tmp_path / "exp.ptdry")
    assert_loaded_equal(loaded, exp)
    opt_state = loaded.trainer.opt.state_dict()
    assert opt_state["state"][0]["step"] == 1 and opt_state["param_groups"][0]["lr"] == 0.05
    assert loaded.trainer.net.bf16.dtype == torch.bfloat16
    assert loaded.trainer.steps == 1 and loaded.labels.dtype == bool
    x = torch.randn(2, 3)
    assert torch.equal(loaded.trainer.net(x), exp.trainer.net(x))
    loaded.trainer.step()  # the optimizer still drives the rebuilt network's parameters
    assert not torch.equal(loaded.trainer.net.body[0].weight, exp.trainer.net.body[0].weight)


def test_the_manifest_records_format_class_versions_and_definition():
    exp = make_experiment()
    zf = zipfile.ZipFile(io.BytesIO(archive_bytes(exp)))
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == "ptdry-archive" and manifest["format_version"] == 1
    assert manifest["class"].endswith(":Experiment") and manifest["dry_id"] == exp.dry_id
    assert manifest["definition"] == exp.definition().to_dict()
    assert {"python", "torch", "numpy", "safetensors"} <= set(manifest["library_versions"])
    assert "created_at" in manifest and manifest["pickles"] == []
    assert {"tensors.safetensors", "arrays/0.npy"} <= set(zf.namelist())


def test_tied_weights_are_stored_once_and_still_shared_after_loading():
    tied = Tied()
    data = archive_bytes(tied)
    zf = zipfile.ZipFile(io.BytesIO(data))
    tensors = safetensors.torch.load(zf.read("tensors.safetensors"))
    assert sorted(tensors) == ["a.bias", "a.weight", "b.bias"]
    assert json.loads(zf.read("manifest.json"))["tensor_aliases"] == {"a.weight": ["a.weight", "b.weight"]}
    loaded = load_object(io.BytesIO(data))
    assert_loaded_equal(loaded, tied)
    assert loaded.a.weight is loaded.b.weight  # the constructor ties them; loading copies in place


def test_tensors_sharing_storage_come_back_sharing_storage():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {
        "base": base,
        "same": base,
        "column": base[:, 2],
        "bytes": base[1].view(torch.uint8),
        "expanded": base[3].expand(2, 6),
        "alone": torch.ones(3).expand(2, 3),
    }
    out = state_from_bytes(state_to_bytes(state))
    assert_same(out, state)
    assert out["base"] is out["same"]
    out["base"][0, 2] = -1.0
    assert out["column"][0] == -1.0 and out["column"].stride() == (6,)


def test_bfloat16_complex_empty_and_noncontiguous_tensors_round_trip_bitwise():
    state = {
        "bf16": torch.randn(3, 4).to(torch.bfloat16),
        "complex": torch.randn(3, dtype=torch.complex128),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(7, dtype=torch.int16),
        "transposed": torch.randn(3, 5).t(),
        "nan": torch.tensor([float("nan"), -0.0, float("inf")]),
        "param": torch.nn.Parameter(torch.randn(2)),
    }
    out = state_from_bytes(state_to_bytes(state))
    assert_same(out, {**state, "param": state["param"].detach()})


def test_numpy_values_python_scalars_and_containers_round_trip_exactly():
    state = {
        "ints": np.arange(6, dtype=">i4").reshape(2, 3),
        "fortran": np.asfortranarray(np.random.rand(3, 2)),
        "cplx": np.array([1 + 2j], dtype=np.complex64),
        "strings": np.array(["a", "bcd"]),
        "zero_d": np.array(2.5),
        "np_scalars": [np.float32(1.25), np.int8(-3), np.bool_(True), np.float64("nan"), np.complex128(1j), np.str_("x")],
        "py": (1, 2**70, -0.0, float("inf"), True, None, "text", b"\x00\xff"),
        "big_bytes": bytes(range(256)) * 40,
        "keys": {"a.b": 1, "$c": 2, "__tuple__": 3, 4: "int key", ("t", 1): "tuple key", "": 5},
    }
    assert_same(state_from_bytes(state_to_bytes(state)), state)


def test_state_bytes_are_deterministic():
    state = {"w": torch.ones(3), "a": np.zeros(2), "n": {"x": 1}}
    assert state_to_bytes(state) == state_to_bytes(state)


def test_bytesio_is_written_and_read_at_its_current_position():
    exp = make_experiment()
    buf = io.BytesIO()
    buf.write(b"header bytes")
    save_object(exp, buf)
    buf.seek(len(b"header bytes"))
    assert_loaded_equal(load_object(buf), exp)
    assert buf.getvalue().startswith(b"header bytes")


def test_str_and_pathlib_paths_and_open_files_all_work(tmp_path):
    exp = make_experiment()
    save_object(exp, str(tmp_path / "a.zip"))
    assert_loaded_equal(load_object(str(tmp_path / "a.zip")), exp)
    save_object(exp, tmp_path / "b.zip")
    assert_loaded_equal(load_object(tmp_path / "b.zip"), exp)
    with open(tmp_path / "c.zip", "wb") as f:
        save_object(exp, f)
    with open(tmp_path / "c.zip", "rb") as f:
        assert_loaded_equal(load_object(f), exp)


def test_a_new_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    save_object(Tied(), tmp_path / "t.ptdry")
    assert (tmp_path / "t.ptdry").stat().st_mode & 0o777 == 0o666 & ~umask


# -- trust ----------------------------------------------------------------------------------
def test_an_archive_with_pickled_values_refuses_to_load_untrusted_and_unpickles_nothing(tmp_path):
    marker = tmp_path / "marker"
    holder = Holder(str(marker))
    save_object(holder, tmp_path / "holder.ptdry")
    assert not marker.exists()
    with pytest.raises(UntrustedArchiveError, match=re.escape(str(tmp_path / "holder.ptdry"))) as info:
        load_object(tmp_path / "holder.ptdry")
    message = str(info.value)
    assert "thing" in message and "objects" in message
    assert "pass trusted=True to load_object if you trust this file" in message
    assert not marker.exists()

    loaded = load_object(tmp_path / "holder.ptdry", trusted=True)
    assert marker.exists() and loaded.thing == Marker(str(marker))


def test_a_pickle_marker_hidden_from_the_manifest_list_is_still_refused(tmp_path):
    marker = tmp_path / "marker"
    data = rewrite(archive_bytes(Holder(str(marker))), lambda m: m.update(pickles=[]))
    with pytest.raises(UntrustedArchiveError, match="pass trusted=True to load_object"):
        load_object(io.BytesIO(data))
    assert not marker.exists()


def test_a_pickle_nested_in_containers_is_refused_with_its_own_error_type():
    data = state_to_bytes({"deep": ({"k.1": [frozenset({3})]},)})
    hidden = rewrite(data, lambda m: m.update(pickles=[]))
    for blob in (data, hidden):
        with pytest.raises(UntrustedArchiveError, match=re.escape("deep[0]['k.1'][0]")):
            state_from_bytes(blob)


def test_state_from_bytes_names_its_own_function_in_the_trust_advice():
    data = state_to_bytes({"odd": {1, 2}})
    with pytest.raises(UntrustedArchiveError, match="odd.*pass trusted=True to state_from_bytes"):
        state_from_bytes(data, source="artifact 42")
    assert state_from_bytes(data, trusted=True)["odd"] == {1, 2}


# -- atomic writes --------------------------------------------------------------------------
def test_a_save_failing_mid_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "model.ptdry"
    save_object(Tied(), target)
    before = target.read_bytes()
    seen_temp = []

    def broken_save(*args, **kwargs):
        seen_temp.extend(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
        raise OSError("disk on fire")

    monkeypatch.setattr(safetensors.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk on fire"):
        save_object(make_experiment(), target)
    assert seen_temp, "the failure should happen while the temp file is being written"
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.ptdry"]


def test_a_state_dict_raising_part_way_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "model.ptdry"
    save_object(Tied(), target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="part-way"):
        save_object(Exploding(), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.ptdry"]


def test_saving_over_a_directory_is_refused_without_leftovers(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        save_object(Tied(), tmp_path / "d")
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


# -- errors name the file -------------------------------------------------------------------
def test_a_missing_path_raises_archive_error_naming_it(tmp_path):
    path = tmp_path / "nope.ptdry"
    with pytest.raises(ArchiveError, match=re.escape(str(path)) + ".*no such file"):
        load_object(path)


def test_a_directory_path_raises_archive_error_naming_it(tmp_path):
    with pytest.raises(ArchiveError, match=re.escape(str(tmp_path)) + ".*directory"):
        load_object(tmp_path)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "not a zip"),
        (b"just some text\n" * 20, "not a zip"),
        (b"PK\x03\x04 truncated", "not a zip"),
    ],
    ids=["empty file", "text file", "zip signature only"],
)
def test_a_file_that_is_not_a_zip_raises_archive_error_naming_it(tmp_path, content, problem):
    path = tmp_path / "bad.ptdry"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match=re.escape(str(path)) + ".*" + problem):
        load_object(path)


def test_a_zip_without_a_manifest_is_not_a_ptdry_archive(tmp_path):
    path = tmp_path / "foreign.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ArchiveError, match=re.escape(str(path)) + ".*without manifest.json"):
        load_object(path)


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda m: m.update(format_version=2), r"written by a newer ptdry \(format 2\); upgrade ptdry"),
        (lambda m: m.update(format="something-else"), "not a ptdry archive"),
        (lambda m: m.update(format_version="1"), "format_version"),
        (lambda m: m.pop("definition"), "lacks the class or the definition"),
        (lambda m: m.update(entries=[["x", 1]]), "state does not fit"),
        (lambda m: m["definition"].update(cls="no_such_module:Thing"), "no_such_module"),
        (lambda m: m["definition"]["kwargs"].update(n="four"), "cannot build test_archive:Tied"),
        (lambda m: m.update({"class": "test_archive:Net"}), "not the Module test_archive:Net"),
        (lambda m: m["definition"].update(cls="builtins:dict"), "definition is of builtins:dict"),
        (lambda m: m.update(entries={"not": "a list"}), "state entries"),
        (lambda m: m.update(entries=[["x", {"__tensor_ref__": {"name": "x", "dtype": "float32", "shape": [2]}}]]), "missing"),
    ],
    ids=["newer", "foreign format", "bad version", "no definition", "wrong state", "class gone", "bad argument", "class mismatch", "not a module", "entries", "tensor"],
)
def test_a_manifest_problem_raises_archive_error_naming_the_file(edit, problem):
    data = rewrite(archive_bytes(Tied()), edit)
    with pytest.raises(ArchiveError, match=re.escape("<stream>") + ".*" + problem):
        load_object(io.BytesIO(data))


def test_a_definition_naming_a_function_instead_of_a_module_is_never_called(tmp_path):
    marker = tmp_path / "called"

    def point_at_touch(m):
        m["class"] = m["definition"]["cls"] = "test_archive:_touch"
        m["definition"]["args"], m["definition"]["kwargs"] = [str(marker)], {}

    data = rewrite(archive_bytes(Tied()), point_at_touch)
    with pytest.raises(UntrustedArchiveError, match="definition names test_archive:_touch"):
        load_object(io.BytesIO(data))  # a plain function is not allowed at all
    with pytest.raises(ArchiveError, match="not the Module test_archive:_touch"):
        load_object(io.BytesIO(data), trusted=True)  # and the root must be the Module, trusted or not
    assert not marker.exists()


def test_load_object_refuses_bytes_with_advice():
    with pytest.raises(TypeError, match="io.BytesIO"):
        load_object(archive_bytes(Tied()))


def test_a_manifest_that_is_not_json_raises_archive_error():
    src = zipfile.ZipFile(io.BytesIO(archive_bytes(Tied())))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", b"\xff{not json")
        zf.writestr("tensors.safetensors", src.read("tensors.safetensors"))
    with pytest.raises(ArchiveError, match="<stream>.*manifest.json is not valid JSON"):
        load_object(io.BytesIO(out.getvalue()))


def test_a_missing_member_raises_archive_error_naming_it():
    data = rewrite(archive_bytes(make_experiment()), drop=("arrays/0.npy",))
    with pytest.raises(ArchiveError, match=r"<stream>.*arrays/0.npy is missing"):
        load_object(io.BytesIO(data))


def test_a_state_archive_given_to_load_object_is_refused_with_advice():
    with pytest.raises(ArchiveError, match="only a state"):
        load_object(io.BytesIO(state_to_bytes({"x": 1})))


def test_a_truncated_archive_raises_archive_error_naming_the_file(tmp_path):
    data = archive_bytes(make_experiment())
    path = tmp_path / "cut.ptdry"
    for size in (len(data) // 3, len(data) - 10, 22):
        path.write_bytes(data[:size])
        with pytest.raises(ArchiveError, match=re.escape(str(path))):
            load_object(path)


def test_a_flipped_byte_inside_the_tensors_fails_the_crc_check(tmp_path):
    data = bytearray(archive_bytes(make_experiment()))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("tensors.safetensors")
    name_len, extra_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little"), int.from_bytes(
        data[info.header_offset + 28 : info.header_offset + 30], "little"
    )
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.compress_size - 5] ^= 0xFF  # inside the tensor data, past the header
    path = tmp_path / "flipped.ptdry"
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=re.escape(str(path)) + ".*tensors.safetensors is corrupt.*CRC"):
        load_object(path)


def test_a_text_mode_file_object_is_refused():
    with pytest.raises(ArchiveError, match="binary file object"):
        load_object(io.StringIO("text"))


def test_state_from_bytes_names_its_source_in_errors():
    with pytest.raises(ArchiveError, match="artifact state of abc"):
        state_from_bytes(b"garbage", source="artifact state of abc")


# -- fuzzing and property tests -------------------------------------------------------------
def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.choice(["flip", "truncate", "delete", "duplicate", "insert"])
    i = rng.randrange(len(b))
    j = min(len(b), i + rng.choice([1, 2, 4, 16, 100, 1000]))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del b[i:]
    elif kind == "delete":
        del b[i:j]
    elif kind == "duplicate":
        b[j:j] = b[i:j]
    else:
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 30)))
    return bytes(b)


def test_corrupted_archives_raise_only_ptdry_errors():
    data = archive_bytes(make_experiment())
    rng = random.Random(20240611)
    started, outcomes = time.monotonic(), {"error": 0, "loaded": 0}
    for case in range(400):
        mutated = _mutate(rng, data)
        try:
            obj = load_object(io.BytesIO(mutated))
        except PtdryError:
            outcomes["error"] += 1
            continue
        except Exception as exc:  # pragma: no cover - the failure report
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc}")
        assert isinstance(obj, Module)
        outcomes["loaded"] += 1
    assert outcomes["error"] > 200, outcomes
    assert time.monotonic() - started < 10


def test_corrupted_members_inside_a_well_formed_zip_raise_only_ptdry_errors():
    """Zip CRCs catch most damage; this re-zips damaged members so each parser sees them."""
    src = zipfile.ZipFile(io.BytesIO(archive_bytes(make_experiment())))
    members = {name: src.read(name) for name in src.namelist()}
    rng = random.Random(7)
    started, outcomes = time.monotonic(), {"error": 0, "loaded": 0}
    for case in range(400):
        damaged = rng.choice(sorted(members))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name, member in members.items():
                zf.writestr(name, _mutate(rng, member) if name == damaged and member else member)
        try:
            obj = load_object(io.BytesIO(out.getvalue()))
        except PtdryError:
            outcomes["error"] += 1
            continue
        except Exception as exc:  # pragma: no cover - the failure report
            pytest.fail(f"case {case} ({damaged}): {type(exc).__name__}: {exc}")
        assert isinstance(obj, Module)
        outcomes["loaded"] += 1
    assert outcomes["error"] > 200, outcomes
    assert time.monotonic() - started < 10


# Definition payloads: names that must never be imported or called without trusted=True, mixed
# with allowed ones, markers and garbage. Were any of them run, `ran` would exist afterwards.
_DANGEROUS = [
    "os:system", "subprocess:Popen", "subprocess:run", "builtins:eval", "builtins:exec", "builtins:__import__",
    "builtins:getattr", "importlib:import_module", "pickle:loads", "posix:system", "shutil:rmtree",
    "test_archive:_touch", "torch:load", "torch.nn.functional:torch.load", "numpy:load",
    "ptdry.io.archive:save_object", "ptdry.core.atomic:atomic_write", "ptdry_never_imported:Thing",
]  # fmt: skip
_ALLOWED = ["builtins:dict", "builtins:list", "numpy:float32", "torch.nn.modules.linear:Linear",
            "torch.optim.adam:Adam", "torch.nn.functional:relu", "test_archive:Tied", "test_archive:Holder"]  # fmt: skip
_MARKERS = ["__def__", "__callable__", "__enum__", "__ref__", "__tuple__", "__dict__", "__dtype__", "__device__",
            "__tensor__", "__ndarray__", "__npscalar__", "__bytes__", "__int__", "__float__", "__path__", "__nope__"]  # fmt: skip


def _payload(rng: random.Random, ran: pathlib.Path, depth: int = 0) -> object:
    """A random definition value: markers with good, bad and malformed payloads, nested."""
    name = lambda: rng.choice(_DANGEROUS + _ALLOWED + [42, None, ["os:system"], "", ":", "os:", "a:b.__class__"])  # noqa: E731
    leaves = [None, True, 2, -3, 0.5, "x", str(ran), f"touch {ran}", ["touch", str(ran)], {}, []]
    if depth > 3 or (depth and rng.random() < 0.3):
        return rng.choice(leaves)
    inner = lambda: _payload(rng, ran, depth + 1)  # noqa: E731
    marker = rng.choice(_MARKERS + ["__def__"] * 6 + ["__callable__"] * 3 + ["list", "dict"] * 2)
    if marker == "list":
        return [inner() for _ in range(rng.randint(0, 3))]
    if marker == "dict":
        return {rng.choice(["a", "n", "cls", "node", "args", "kwargs"]): inner() for _ in range(rng.randint(0, 3))}
    if marker == "__def__":
        body = {"cls": name(), "args": [inner() for _ in range(rng.randint(0, 2))], "kwargs": {"k": inner()}}
        if rng.random() < 0.2:
            body[rng.choice(["args", "kwargs", "node", "cls"])] = inner()
        return {"__def__": body}
    payloads = {
        "__callable__": name,
        "__enum__": lambda: rng.choice([[name(), "RED"], name(), ["signal:Signals", "SIGTERM"], [1, 2, 3]]),
        "__ref__": lambda: rng.choice([0, 1, -1, "0", [0], None]),
        "__dtype__": lambda: rng.choice(["float32", "torch.load", "load", "_C", 3]),
        "__tensor__": lambda: {"dtype": rng.choice(["float32", "load"]), "shape": [1], "data": rng.choice(["AAAAAA==", 5])},
        "__ndarray__": lambda: {"dtype": rng.choice(["<f4", "O", "|V4", 7]), "shape": [1], "data": "AAAAAA=="},
        "__npscalar__": lambda: {"dtype": rng.choice(["<f8", "O", "xx"]), "value": inner()},
    }
    return {marker: payloads.get(marker, inner)()}


def test_definition_payloads_raise_only_archive_errors_and_never_import_or_run_anything(tmp_path):
    ran = tmp_path / "ran"
    data = archive_bytes(Tied())
    rng = random.Random(88)
    load_object(io.BytesIO(rewrite(data, lambda m: None)))  # zipfile's own lazy imports (a codec)
    before = set(sys.modules)
    started, outcomes = time.monotonic(), {"error": 0, "loaded": 0}
    for case in range(500):
        where = rng.choice(["kwargs", "root", "cls", "args"])

        def edit(m):
            d = m["definition"]
            if where == "kwargs":
                d["kwargs"] = {rng.choice(["n", "x"]): _payload(rng, ran) for _ in range(rng.randint(1, 3))}
            elif where == "args":
                d["args"] = [_payload(rng, ran) for _ in range(rng.randint(1, 3))]
            elif where == "cls":
                d["cls"] = rng.choice(_DANGEROUS + _ALLOWED)
                m["class"] = d["cls"]
            else:  # a whole definition of random names, or garbage in its place
                root = _payload(rng, ran, 1)
                m["definition"] = root["__def__"] if isinstance(root, dict) and "__def__" in root else root

        try:
            obj = load_object(io.BytesIO(rewrite(data, edit)))
        except ArchiveError:
            outcomes["error"] += 1
            continue
        except Exception as exc:  # pragma: no cover - the failure report
            pytest.fail(f"case {case} ({where}): {type(exc).__name__}: {exc}")
        assert isinstance(obj, Module)
        outcomes["loaded"] += 1
    assert not ran.exists()
    new = {m.partition(".")[0] for m in set(sys.modules) - before}
    assert new <= {"ptdry", "torch", "numpy"}, new
    assert outcomes["error"] > 300 and outcomes["loaded"] > 0, outcomes
    assert time.monotonic() - started < 20


_KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["a.b", "$x", "__tuple__", "__x__", "", "\x00"]))
_TENSOR_DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int8, np.uint8, np.bool_, np.complex64]
_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=12),
    hnp.arrays(st.one_of(hnp.scalar_dtypes(), hnp.unicode_string_dtypes(), hnp.byte_string_dtypes()), _SHAPES),
    hnp.arrays(hnp.scalar_dtypes(), ()).map(lambda a: a[()]),
    hnp.arrays(st.sampled_from(_TENSOR_DTYPES), _SHAPES).map(lambda a: torch.from_numpy(np.array(a))),
    hnp.arrays(np.float32, _SHAPES).map(lambda a: torch.from_numpy(np.array(a)).to(torch.bfloat16)),
)
_TREES = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(_KEYS, children, max_size=3),
        st.dictionaries(st.integers(), children, max_size=2),
    ),
    max_leaves=8,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _TREES, max_size=4))
def test_random_state_trees_round_trip_exactly(state):
    assert_same(state_from_bytes(state_to_bytes(state)), state)
