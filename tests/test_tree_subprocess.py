"""A 3-level tree's definition and state survive a trip through JSON into a fresh process."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import torch

from ptdry import ObjectDef, State

import _tree_classes
from _tree_classes import Experiment, make_tree

HERE = pathlib.Path(__file__).resolve().parent

CHILD = textwrap.dedent(
    """
    import json, sys, pathlib
    import numpy as np
    from ptdry import ObjectDef, State
    import _tree_classes  # the classes the tree is made of: loading imports no module by itself

    work = pathlib.Path(sys.argv[1])
    definition = ObjectDef.from_dict(json.loads((work / "definition.json").read_text()))
    tree = definition.build()
    state = State.from_document(json.loads((work / "state.json").read_text()))
    tree.load_state_dict(state)

    again = tree.state_dict()
    (work / "child_definition.json").write_text(json.dumps(tree.definition().to_dict()))
    (work / "child_state.json").write_text(json.dumps(again.to_document()))
    # the tensors once more, through NumPy only (independent of ptdry's codec)
    tensors = {k: v.detach().numpy() for k, v in again.items() if hasattr(v, "detach")}
    np.savez(work / "child_tensors.npz", **tensors)
    (work / "child_info.json").write_text(json.dumps({
        "type": type(tree).__module__ + ":" + type(tree).__qualname__,
        "dry_id": tree.dry_id,
        "trainer_id": tree.trainer.dry_id,
        "steps": tree.trainer.steps,
        "has_adam_state": len(tree.trainer.optimizer.state) > 0,
    }))
    """
)


def _bytes(value):
    if isinstance(value, torch.Tensor):
        return (str(value.dtype), tuple(value.shape), value.detach().contiguous().numpy().tobytes())
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return {k: _bytes(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_bytes(v) for v in value)
    return (type(value).__name__, value)


def _run_child(work: pathlib.Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    script = work / "child.py"
    script.write_text(CHILD)
    done = subprocess.run(
        [sys.executable, str(script), str(work)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_three_level_tree_rebuilt_in_a_subprocess_has_an_equal_definition_and_state(tmp_path):
    tree = make_tree()
    assert math.isfinite(tree(steps=2))  # two optimizer steps: non-trivial Adam state
    definition = tree.definition()
    state = tree.state_dict()
    assert tree.trainer.steps == 2 and len(tree.trainer.optimizer.state) == 2 * 2  # 4 params

    (tmp_path / "definition.json").write_text(json.dumps(definition.to_dict()))
    (tmp_path / "state.json").write_text(json.dumps(state.to_document()))
    _run_child(tmp_path)

    child_dict = json.loads((tmp_path / "child_definition.json").read_text())
    assert child_dict == json.loads(json.dumps(definition.to_dict()))
    assert ObjectDef.from_dict(child_dict) == definition
    assert ObjectDef.from_dict(child_dict).category_hash == definition.category_hash

    info = json.loads((tmp_path / "child_info.json").read_text())
    assert info == {
        "type": "_tree_classes:Experiment",
        "dry_id": tree.dry_id,
        "trainer_id": tree.trainer.dry_id,
        "steps": 2,
        "has_adam_state": True,
    }

    child_state = State.from_document(json.loads((tmp_path / "child_state.json").read_text()))
    assert list(child_state) == list(state)
    assert _bytes(dict(child_state)) == _bytes(dict(state))

    with np.load(tmp_path / "child_tensors.npz") as npz:
        tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
        assert sorted(npz.files) == sorted(tensors)
        for key, tensor in tensors.items():
            assert npz[key].tobytes() == tensor.detach().numpy().tobytes(), key


def test_tree_state_loaded_in_this_process_continues_training_identically(tmp_path):
    tree = make_tree()
    tree(steps=2)
    definition = json.loads(json.dumps(tree.definition().to_dict()))
    state = State.from_document(json.loads(json.dumps(tree.state_dict().to_document())))

    twin = ObjectDef.from_dict(definition).build()
    assert isinstance(twin, Experiment) and twin is not tree
    twin.load_state_dict(state)
    assert tree(steps=1) == twin(steps=1)
    for (name, a), (_, b) in zip(tree.trainer.net.named_parameters(), twin.trainer.net.named_parameters()):
        assert torch.equal(a, b), name


def test_helper_classes_are_importable_by_their_class_path():
    assert _tree_classes.Experiment.__module__ == "_tree_classes"
