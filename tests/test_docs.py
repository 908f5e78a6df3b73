"""The docs build with ``mkdocs --strict``, and every ```python block in them (and in the
README) runs: the blocks of one page run in order, in one namespace, like a reader would."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_docs_examples_run(page, tmp_path, monkeypatch, embedded_server):
    # embedded_server: pages may use DBInterface() (the embedded default); the session's
    # server is the one they get, and it is stopped when the tests end.
    monkeypatch.chdir(tmp_path)
    # A real (registered) module, so classes a page defines have an importable path.
    module = types.ModuleType("__docs__")
    monkeypatch.setitem(sys.modules, "__docs__", module)
    for i, match in enumerate(BLOCK.finditer(page.read_text())):
        code = compile(match.group(1), f"{page.name}[block {i}]", "exec")
        exec(code, module.__dict__)


def test_docs_build_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_error_tree_in_the_docs_is_the_one_in_errors_py():
    import re

    import ptdry.errors

    tree = re.search(r"    PtdryError\n.*?\n\n", ptdry.errors.__doc__, re.S).group(0)
    text = "\n".join(line[4:] for line in tree.rstrip().splitlines())
    assert text in (ROOT / "docs" / "core.md").read_text()
