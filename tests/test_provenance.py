"""Provenance: git commit, branch, dirty flag and capped diff; the command line and torch
threads; the user's source files stored once however many runs use them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ptdry import Module, Repo
from ptdry.db import provenance as prov
from ptdry.db.sources import SOURCE_PREFIX, definition_names


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(autouse=True)
def _fresh_git_state(monkeypatch):
    monkeypatch.setattr(prov, "GIT_TTL", -1.0)  # ask git every time


@pytest.fixture
def repo_dir(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "T")
    (tmp_path / "train.py").write_text("lr = 0.1\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_a_clean_repository_gives_commit_branch_and_no_diff(repo_dir):
    state = prov.git_state(str(repo_dir))
    assert len(state["commit"]) == 40 and state["branch"] == "main" and state["dirty"] is False
    assert "diff" not in state and state["root"] == str(repo_dir)


def test_a_dirty_tree_stores_its_diff(repo_dir):
    (repo_dir / "train.py").write_text("lr = 0.2\n")
    state = prov.git_state(str(repo_dir))
    assert state["dirty"] is True and state["diff_truncated"] is False
    assert "-lr = 0.1\n+lr = 0.2" in state["diff"]


def test_a_huge_diff_is_capped_and_says_so(repo_dir, monkeypatch):
    monkeypatch.setattr(prov, "DIFF_LIMIT", 1000)
    (repo_dir / "train.py").write_text("x = 1\n" * 5000)
    state = prov.git_state(str(repo_dir))
    assert state["diff_truncated"] is True and len(state["diff"].encode()) <= 1000


def test_a_detached_head_has_no_branch(repo_dir):
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True).stdout.strip()
    git(repo_dir, "checkout", "-q", commit)
    assert prov.git_state(str(repo_dir))["branch"] is None


def test_outside_a_repository_or_without_git_there_is_no_git_state(tmp_path, repo_dir, monkeypatch):
    assert prov.git_state(str(tmp_path.parent)) is None
    monkeypatch.setenv("PATH", "")
    assert prov.git_state(str(repo_dir)) is None


class Stored(Module):
    def __init__(self, size=3):
        self.size = size


class Outer(Module):
    def __init__(self, inner=None):
        self.inner = inner if inner is not None else Stored()


def test_runs_record_the_command_line_threads_and_their_source_files(db_name):
    repo = Repo(f"mongomock://{db_name}")
    rec = repo.add_object(Outer())
    assert rec["command"]["argv"] == sys.argv and rec["command"]["executable"] == sys.executable
    assert rec["torch_threads"] is None or rec["torch_threads"] >= 1
    files = {s["file"]: s for s in rec["sources"]}
    assert files["test_provenance.py"]["module"] == "test_provenance"
    assert files["test_provenance.py"]["path"] == __file__
    assert f"{SOURCE_PREFIX}test_provenance.py" in [a["name"] for a in rec["artifacts"]]
    nested = repo.modules.find_one({"parent": rec.id})
    assert "sources" not in nested and "command" not in nested


def test_source_files_are_stored_once_across_runs(db_name, tmp_path):
    repo = Repo(f"mongomock://{db_name}")
    first, second = repo.add_object(Stored(1)), repo.add_object(Stored(2))
    ref = {a["name"]: a["ref"] for a in first["artifacts"]}[f"{SOURCE_PREFIX}test_provenance.py"]
    assert {a["name"]: a["ref"] for a in second["artifacts"]}[f"{SOURCE_PREFIX}test_provenance.py"] == ref
    assert repo.db.db["fs.files"].count_documents({"filename": f"{SOURCE_PREFIX}test_provenance.py"}) == 1
    repo.add_object(repo.get_obj_by_id(first.id))  # stored again: the sources are not repeated
    again = repo.modules.find_one({"_id": first.id})
    assert [a["name"] for a in again["artifacts"]].count(f"{SOURCE_PREFIX}test_provenance.py") == 1
    repo.delete({"_id": first.id})
    assert repo.db.db["fs.files"].count_documents({"filename": f"{SOURCE_PREFIX}test_provenance.py"}) == 1  # still used
    repo.delete({"_id": second.id})
    assert repo.db.db["fs.files"].count_documents({"filename": f"{SOURCE_PREFIX}test_provenance.py"}) == 0


def test_a_run_keeps_the_provenance_of_its_first_store(db_name, repo_dir, monkeypatch):
    monkeypatch.setattr(prov, "_script_dir", lambda: str(repo_dir))
    repo = Repo(f"mongomock://{db_name}")
    obj = Stored(1)
    first = repo.add_object(obj)
    assert first["git"]["dirty"] is False and first["git"]["branch"] == "main"
    (repo_dir / "train.py").write_text("lr = 0.5\n")  # edited while the run trains
    assert repo.add_object(obj)["git"] == first["git"]  # its end is stored with its start's code
    later = repo.add_object(Stored(2))  # a new run of the same process sees the edit
    assert later["git"]["dirty"] is True and "+lr = 0.5" in later["git"]["diff"]
    assert repo.modules.find_one({"_id": later.id, "parent": None})["git"]["diff"] == later["git"]["diff"]


def test_definition_names_lists_classes_and_functions():
    import torch

    from ptdry import Criterion

    names = definition_names(Outer(Stored()).definition().to_dict())
    assert names == {"test_provenance:Outer", "test_provenance:Stored"}
    assert "torch.nn.functional:l1_loss" in definition_names(Criterion(torch.nn.functional.l1_loss).definition().to_dict())
