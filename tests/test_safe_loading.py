"""Loading never runs code unless the user said ``trusted=True``; archives cannot inflate without bound.

Archives and database documents name classes and functions by path. Without
``trusted=True`` loading imports and calls only allowed ones (see ``ptdry.core.allowed``);
anything else is refused *before* it is imported or called, naming its path in the tree and
its name. The payloads below would leave a marker file behind if they ever ran.
"""

from __future__ import annotations

import enum
import io
import json
import os
import sys
import uuid
import zipfile

import pytest
import torch

import ptdry
from ptdry import DBInterface, Module, ObjectDef, Repo, Session
from ptdry.core import allowed as allowed_module
from ptdry.errors import ArchiveError, ConfigError, UntrustedArchiveError
from ptdry.io.archive import load_object, save_object, state_from_bytes, state_to_bytes


# -- objects under test (module level: definitions name classes by import path) ---------------
class Holder(Module):
    """A Module whose arguments can hold a nested definition, a callable and an enum."""

    def __init__(self, net=None, fn=None, mode=None, items=()):
        self.net, self.fn, self.mode, self.items = net, fn, mode, list(items)


class Shade(enum.Enum):
    DARK = 1
    LIGHT = 2


def halve(x):
    return x / 2


def archive(obj) -> bytes:
    buf = io.BytesIO()
    save_object(obj, buf)
    return buf.getvalue()


def with_manifest(data: bytes, edit) -> io.BytesIO:
    """A copy of an archive whose manifest went through ``edit(manifest)``."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            member = src.read(name)
            if name == "manifest.json":
                manifest = json.loads(member)
                edit(manifest)
                member = json.dumps(manifest).encode()
            dst.writestr(name, member)
    return io.BytesIO(out.getvalue())


def kwarg(name, value):
    """An edit setting keyword argument ``name`` of the archive's root definition."""
    return lambda m: m["definition"]["kwargs"].__setitem__(name, value)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "ran"
    yield path
    assert not path.exists(), "a payload ran"


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """A module on sys.path that leaves a marker when imported; yields (module name, marker)."""
    name = f"ptdry_probe_{uuid.uuid4().hex[:8]}"
    imported = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        "import pathlib, torch\n"
        f"pathlib.Path({str(imported)!r}).write_text('imported')\n"
        "def act(*a, **k):\n    return 'called'\n"
        "class Net(torch.nn.Module):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, imported
    sys.modules.pop(name, None)


@pytest.fixture
def registry(monkeypatch):
    """An empty registry for this test (ptdry.allow is process-wide)."""
    monkeypatch.setattr(allowed_module, "_REGISTRY", {})
    return allowed_module._REGISTRY


# -- the attacks of the issue -------------------------------------------------------------------
def test_os_system_as_a_nested_definition_is_refused_naming_its_path_and_runs_nothing(marker):
    payload = {"__def__": {"cls": "os:system", "args": [f"touch {marker}"], "kwargs": {}}}
    data = with_manifest(archive(Holder()), kwarg("net", payload))
    with pytest.raises(UntrustedArchiveError, match=r"archive <stream>: definition\.net names os:system, which ptdry does not"):
        load_object(data)


def test_subprocess_popen_as_a_callable_is_refused_naming_its_path_and_runs_nothing(marker):
    data = with_manifest(archive(Holder(items=[1, 2])), kwarg("items", [1, {"__callable__": "subprocess:Popen"}]))
    with pytest.raises(UntrustedArchiveError, match=r"definition\.items\[1\] names subprocess:Popen.*pass trusted=True"):
        load_object(data)


def test_the_refusal_says_how_to_allow_the_name():
    data = with_manifest(archive(Holder()), kwarg("fn", {"__callable__": "subprocess:Popen"}))
    with pytest.raises(UntrustedArchiveError, match=r"ptdry\.allow\(Popen\) after importing it, or pass allowed=\[Popen\]"):
        load_object(data)


@pytest.mark.parametrize(
    "name",
    [
        "builtins:eval",
        "builtins:exec",
        "builtins:getattr",
        "builtins:__import__",
        "builtins:open",
        "importlib:import_module",
        "pickle:loads",
        "shutil:rmtree",
        "os:popen",
        "os.path:join",
        "torch:load",
        "torch.hub:load",
        "torch.nn.functional:torch.load",  # an allowed module's attribute leading elsewhere
        "torch.nn.modules.module:Module.load_state_dict",
        "numpy:load",
        "ptdry.io.archive:save_object",
        "ptdry.core.atomic:atomic_write",
        "ptdry.core.allowed:allow",
        "ptdry.db.server:EmbeddedServer",
        "collections:OrderedDict",
        "test_safe_loading:halve",  # the user's own function: allowed only when registered
        "not a name",
    ],
)
def test_dangerous_names_are_refused_as_callables_and_as_definitions(name, marker):
    as_callable = with_manifest(archive(Holder()), kwarg("fn", {"__callable__": name}))
    with pytest.raises(UntrustedArchiveError, match=rf"definition\.fn names {name}, which"):
        load_object(as_callable)
    as_definition = with_manifest(archive(Holder()), kwarg("net", {"__def__": {"cls": name, "args": [str(marker)]}}))
    with pytest.raises(UntrustedArchiveError, match=rf"definition\.net names {name}, which"):
        load_object(as_definition)


def test_a_refused_root_class_is_named_at_the_root_of_the_definition():
    data = with_manifest(archive(Holder()), lambda m: m["definition"].update(cls="os:system"))
    with pytest.raises(UntrustedArchiveError, match=r"<stream>: definition names os:system"):
        load_object(data)


def test_nothing_in_the_tree_is_built_when_one_name_is_refused(tmp_path):
    class_made = tmp_path / "built"
    data = with_manifest(
        archive(Holder()),
        lambda m: m["definition"]["kwargs"].update(
            net={"__def__": {"cls": "test_safe_loading:Recorder", "args": [str(class_made)]}},
            fn={"__callable__": "os:system"},
        ),
    )
    with pytest.raises(UntrustedArchiveError, match=r"definition\.fn names os:system"):
        load_object(data)
    assert not class_made.exists()


class Recorder(Module):
    def __init__(self, path):
        open(path, "w").close()


def test_a_callable_of_a_module_not_imported_yet_is_refused_without_importing_it(probe):
    name, imported = probe
    data = with_manifest(archive(Holder()), kwarg("fn", {"__callable__": f"{name}:act"}))
    before = set(sys.modules)
    with pytest.raises(UntrustedArchiveError, match=rf"definition\.fn names {name}:act.*its module {name} is not imported"):
        load_object(data)
    assert name not in sys.modules and not imported.exists()
    assert set(sys.modules) == before


def test_a_network_class_of_a_module_not_imported_yet_loads_once_the_user_imports_it(probe):
    name, imported = probe
    edit = kwarg("net", {"__def__": {"cls": f"{name}:Net"}})
    with pytest.raises(UntrustedArchiveError, match=rf"definition\.net names {name}:Net.*import it first"):
        load_object(with_manifest(archive(Holder()), edit))
    assert not imported.exists()
    module = __import__(name)  # the user imports their own module: a torch.nn.Module subclass is allowed
    loaded = load_object(with_manifest(archive(Holder()), edit))
    assert loaded.net.cls is module.Net
    with pytest.raises(UntrustedArchiveError, match=rf"{name}:act.*neither a ptdry Module"):
        load_object(with_manifest(archive(Holder()), kwarg("fn", {"__callable__": f"{name}:act"})))


def test_an_enum_of_a_module_not_imported_is_refused_and_one_already_imported_loads(probe):
    name, imported = probe
    data = with_manifest(archive(Holder()), kwarg("mode", {"__enum__": [f"{name}:Colour", "RED"]}))
    with pytest.raises(UntrustedArchiveError, match=rf"definition\.mode names {name}:Colour.*not imported"):
        load_object(data)
    assert not imported.exists()
    assert load_object(io.BytesIO(archive(Holder(mode=Shade.DARK)))).mode is Shade.DARK


def test_an_enum_path_must_name_an_enum_class():
    data = with_manifest(archive(Holder()), kwarg("mode", {"__enum__": ["os:environ", "copy"]}))
    with pytest.raises(ArchiveError, match=r"os:environ"):
        load_object(data)


def test_a_dtype_marker_gives_only_dtypes_never_other_attributes_of_torch():
    data = with_manifest(archive(Holder()), kwarg("fn", {"__dtype__": "torch.load"}))
    with pytest.raises(ArchiveError, match=r"'load' is not a torch dtype"):
        load_object(data)


def test_a_callable_in_the_state_is_refused_naming_its_state_key():
    data = state_to_bytes({"x": 1})
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    manifest = json.loads(src.read("manifest.json"))
    manifest["entries"] = [["x", {"opt": [{"__callable__": "subprocess:Popen"}]}]]
    with zipfile.ZipFile(out, "w") as dst:
        dst.writestr("manifest.json", json.dumps(manifest))
    with pytest.raises(UntrustedArchiveError, match=r"state from <bytes>: state\['x'\]\.opt\[0\] names subprocess:Popen"):
        state_from_bytes(out.getvalue())
    assert state_from_bytes(out.getvalue(), trusted=True)["x"]["opt"][0].__name__ == "Popen"


# -- what loads by default, and how to allow more ------------------------------------------------
def test_model_classes_optimizers_losses_and_containers_load_by_default():
    from ptdry import Criterion, Optimizer
    from ptdry.train.nets import MLP

    obj = Holder(
        net=ObjectDef(MLP, 4, 3),
        fn=torch.nn.functional.cross_entropy,
        items=[Optimizer(torch.optim.Adam, lr=0.1), Criterion(torch.nn.CrossEntropyLoss), ObjectDef(dict, a=1)],
        mode=Shade.LIGHT,
    )
    loaded = load_object(io.BytesIO(archive(obj)))
    assert loaded.net.cls is MLP and loaded.fn is torch.nn.functional.cross_entropy and loaded.mode is Shade.LIGHT
    assert loaded.items[0].optimizer_cls is torch.optim.Adam and loaded.items[2].cls is dict


def test_a_registered_function_loads_and_an_unregistered_one_needs_allowed_or_trust(registry):
    data = archive(Holder(fn=halve))
    with pytest.raises(UntrustedArchiveError, match=r"definition\.fn names test_safe_loading:halve"):
        load_object(io.BytesIO(data))
    assert load_object(io.BytesIO(data), allowed=[halve]).fn is halve
    assert load_object(io.BytesIO(data), trusted=True).fn is halve
    assert ptdry.allow(halve) is halve and registry == {"test_safe_loading:halve": halve}
    assert load_object(io.BytesIO(data)).fn is halve


def test_allow_works_as_a_decorator_on_a_module_level_function(registry, tmp_path, monkeypatch):
    (tmp_path / "mylab_losses.py").write_text(
        "import ptdry\n\n@ptdry.allow\ndef scaled(x, scale=2.0):\n    return scale * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import mylab_losses

    assert registry == {"mylab_losses:scaled": mylab_losses.scaled}
    monkeypatch.delitem(sys.modules, "mylab_losses")


def test_allow_refuses_local_classes_and_lambdas(registry):
    with pytest.raises(ConfigError, match=r"allow\(\) needs a class or function defined at module level.*Local"):

        @ptdry.allow
        class Local:
            pass

    with pytest.raises(ConfigError, match=r"allow\(\) needs a class or function defined at module level.*lambda"):
        ptdry.allow(lambda x: x)
    with pytest.raises(ConfigError, match=r"allowed must be a list of classes or functions; received 'halve'"):
        load_object(io.BytesIO(archive(Holder())), allowed="halve")
    assert registry == {}


# -- database documents -------------------------------------------------------------------------
def test_a_tampered_database_document_is_refused_by_every_way_of_loading_it(db_name, marker):
    repo = Repo(f"mongomock://{db_name}")
    rec = repo.add_object(Holder(items=[1]))
    payload = {"__def__": {"cls": "os:system", "args": [f"touch {marker}"]}}
    repo.modules.update_one({"_id": rec.id}, {"$set": {"definition.kwargs.items": [payload]}})
    fresh = Repo(f"mongomock://{db_name}")
    expected = rf"cannot load stored object {rec.id}: definition\.items\[0\] names os:system"
    for load in (
        lambda: fresh.get_obj_by_id(rec.id),
        lambda: fresh.get_one({"_id": rec.id}),
        lambda: fresh.get({"_id": rec.id}),
        lambda: fresh.find({"_id": rec.id})[0].load(),
    ):
        with pytest.raises(UntrustedArchiveError, match=expected):
            load()


def test_a_trusted_repo_loads_what_a_default_one_refuses(db_name):
    repo = Repo(f"mongomock://{db_name}")
    rec = repo.add_object(Holder(fn=halve))
    with pytest.raises(UntrustedArchiveError, match=r"definition\.fn names test_safe_loading:halve"):
        Repo(f"mongomock://{db_name}").get_obj_by_id(rec.id)
    assert Repo(f"mongomock://{db_name}", allowed=[halve]).get_obj_by_id(rec.id).fn is halve
    assert Repo(f"mongomock://{db_name}", trusted=True).get_obj_by_id(rec.id).fn is halve


@pytest.mark.slow
def test_session_load_and_resume_refuse_a_tampered_run_document(db_name, marker):
    sys.path.insert(0, os.path.dirname(__file__))
    from _session_job import make_session

    db = DBInterface(f"mongomock://{db_name}")
    session = make_session(db, epochs=1)
    session.run()
    assert Session.load(session.dry_id, db=db).dry_id == session.dry_id  # untampered: loads by default
    doc = db.collection("modules").find_one({"_id": session.dry_id})
    path = "definition.kwargs.trainer.__def__.kwargs.callbacks"
    callbacks = doc["definition"]["kwargs"]["trainer"]["__def__"]["kwargs"]["callbacks"]
    callbacks.append({"__def__": {"cls": "subprocess:Popen", "args": [["touch", str(marker)]]}})
    db.collection("modules").update_one({"_id": session.dry_id}, {"$set": {path: callbacks}})
    where = rf"definition\.trainer\.callbacks\[{len(callbacks) - 1}\] names subprocess:Popen"
    with pytest.raises(UntrustedArchiveError, match=rf"stored object {session.dry_id}: {where}"):
        Session.load(session.dry_id, db=db)
    with pytest.raises(UntrustedArchiveError, match=where):
        Session.resume(session.dry_id, db=db)


# -- decompression cap ---------------------------------------------------------------------------
def _blob_archive(blob_bytes: int) -> bytes:
    """An archive of a Module whose state holds one bytes value (stored compressed)."""
    data = archive(Blob(b"\0" * 5000))
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            if name != "blobs/0.bin":
                dst.writestr(name, src.read(name))
                continue
            with dst.open(name, "w", force_zip64=True) as w:
                for start in range(0, blob_bytes, len(chunk)):
                    w.write(chunk[: blob_bytes - start])
    return out.getvalue()


class Blob(Module):
    def __init__(self, payload=b""):
        self.payload = payload

    def extra_state(self):
        return {"payload": self.payload}

    def load_extra_state(self, state):
        self.payload = state["payload"]


def test_a_400_kb_archive_inflating_to_400_mb_is_refused_with_a_way_to_raise_the_cap(tmp_path):
    path = tmp_path / "bomb.zip"
    path.write_bytes(_blob_archive(400 * 1024 * 1024))
    assert path.stat().st_size < 600_000
    pattern = (
        rf"cannot load archive {path}: member blobs/0.bin declares 419,430,400 bytes.*limit of 268,435,456 "
        r"bytes \(a zip bomb\?\); if you trust the file, pass a larger max_bytes to load_object or set "
        r"\$PTDRY_MAX_ARCHIVE_BYTES"
    )
    with pytest.raises(ArchiveError, match=pattern):
        load_object(path)


def test_the_cap_is_raised_or_lowered_per_call_or_by_environment(monkeypatch):
    data = _blob_archive(3 * 1024 * 1024)
    assert len(load_object(io.BytesIO(data)).payload) == 3 * 1024 * 1024
    with pytest.raises(ArchiveError, match=r"blobs/0.bin declares 3,145,728 bytes.*limit of 2,000,000 bytes"):
        load_object(io.BytesIO(data), max_bytes=2_000_000)
    monkeypatch.setenv("PTDRY_MAX_ARCHIVE_BYTES", "2000000")
    with pytest.raises(ArchiveError, match=r"limit of 2,000,000 bytes.*pass a larger max_bytes to load_object"):
        load_object(io.BytesIO(data))
    assert len(load_object(io.BytesIO(data), max_bytes=4_000_000).payload) == 3 * 1024 * 1024
    with pytest.raises(ArchiveError, match=r"limit of 2,000,000 bytes.*max_bytes to state_from_bytes"):
        state_from_bytes(data)


class Wide(Module):
    def __init__(self, n=512):
        self.layer = torch.nn.Linear(n, n)


def test_big_tensors_stored_uncompressed_do_not_count_against_the_cap():
    wide = Wide()  # 1 MB of weights, stored as they are
    loaded = load_object(io.BytesIO(archive(wide)), max_bytes=100_000)
    assert torch.equal(loaded.layer.weight, wide.layer.weight)


def test_a_member_whose_header_understates_its_size_is_reported_corrupt_not_read_in_full():
    data = bytearray(_blob_archive(1024 * 1024))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("blobs/0.bin")
    # forge the size the central directory records (the one zipfile trusts): 1 MiB -> 6000 bytes
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46 : entry + 57] != b"blobs/0.bin":  # the name follows the 46-byte header
        entry = data.index(b"PK\x01\x02", entry + 4)
    assert int.from_bytes(data[entry + 24 : entry + 28], "little") == 1024 * 1024
    data[entry + 24 : entry + 28] = (6000).to_bytes(4, "little")
    data = bytes(data)
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("blobs/0.bin").file_size == 6000
    with pytest.raises(ArchiveError, match=r"member blobs/0.bin is corrupt"):
        load_object(io.BytesIO(data), max_bytes=20_000)  # the manifest (~7 KB) and the 6000 declared fit


@pytest.mark.parametrize(
    "value, problem",
    [(0, "max_bytes must be a positive number of bytes; received 0"), ("1GB", "max_bytes must be a positive number")],
)
def test_a_bad_cap_is_refused_naming_it(value, problem):
    with pytest.raises(ConfigError, match=problem):
        load_object(io.BytesIO(archive(Holder())), max_bytes=value)


def test_a_bad_cap_in_the_environment_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("PTDRY_MAX_ARCHIVE_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"\$PTDRY_MAX_ARCHIVE_BYTES must be a whole number of bytes; received 'lots'"):
        load_object(io.BytesIO(archive(Holder())))
