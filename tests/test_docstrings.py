"""Every example in ptdry's docstrings runs and prints what it says (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import ptdry


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(ptdry.__path__, "ptdry.") if not m.name.endswith("__main__"))


def _examples() -> list[tuple[str, str]]:
    out = []
    finder = doctest.DocTestFinder(exclude_empty=True)
    for name in _modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples and test.name.startswith(name):
                out.append((name, test.name))
    return out


@pytest.mark.parametrize("module, name", _examples(), ids=[n for _, n in _examples()])
def test_docstring_example(module, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    finder = doctest.DocTestFinder(exclude_empty=True)
    (test,) = [t for t in finder.find(importlib.import_module(module), module) if t.name == name]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    result = runner.run(test, out=out.append)
    assert result.failed == 0, "".join(out)
