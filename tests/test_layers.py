"""The package's layers are real: imports only point down (DESIGN.md), with no cycles.

Every ``import ptdry...`` in every file counts, including those inside functions: an import
deferred to call time is still a dependency. Light imports are checked in fresh processes.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ptdry"

#: Layer of each top-level part of the package; a file may import its own part and lower
#: layers only (siblings on one row of DESIGN.md's drawing do not import each other).
LAYERS = {
    "errors": 0,
    "core": 1,
    "io": 2,
    "data": 2,
    "context": 2,
    "metrics": 2,
    "db": 3,
    "train": 4,
    "tf": 5,
    "sweep": 6,
    "cli": 7,
    "ui": 7,
    "__main__": 8,
    "__init__": 8,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _part(module: str) -> str:
    """``ptdry.core.module`` -> ``core``; ``ptdry`` -> ``__init__``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, imported ptdry module)`` for every import in the file, at any depth."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {  # `if TYPE_CHECKING:` imports are for annotations, never executed
        id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
        for stmt in block.body for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "ptdry"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ptdry":
                continue
            out.append((node.lineno, target))
            for alias in node.names:  # `from ptdry.core import module` imports ptdry.core.module
                sub = f"{target}.{alias.name}"
                if _file_of(sub) is not None:
                    out.append((node.lineno, sub))
    return out


def _file_of(module: str) -> Path | None:
    rel = Path(*module.split(".")[1:])
    for candidate in (PACKAGE / rel / "__init__.py", (PACKAGE / rel).with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(_module_name(p)) for p in _files()}
    assert parts <= set(LAYERS), f"add {sorted(parts - set(LAYERS))} to LAYERS (and DESIGN.md)"


def test_imports_only_point_down():
    upward = []
    for path in _files():
        here = _part(_module_name(path))
        for line, target in _imports(path):
            there = _part(target)
            if there == here or there == "__init__" and target != "ptdry":
                continue
            if target == "ptdry" and here not in ("__main__", "__init__"):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports ptdry (the whole package)")
            elif LAYERS[there] >= LAYERS[here] and there != here:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports {target} ({there})")
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_no_import_cycles_between_files():
    graph: dict[str, set[str]] = {}
    for path in _files():
        name = _module_name(path)
        targets = set()
        for _, target in _imports(path):
            file = _file_of(target)
            if file is not None and file.name != "__init__.py":  # packages' __init__ only re-export
                targets.add(_module_name(file))
        if path.name != "__init__.py":
            graph[name] = targets - {name}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


LIGHT = ["ptdry", "ptdry.errors", "ptdry.core", "ptdry.db", "ptdry.cli.main", "ptdry.data.provider", "ptdry.data.reader"]


@pytest.mark.parametrize("module", LIGHT)
def test_importing_stays_light(module):
    code = (
        f"import sys, {module}\n"
        "heavy = ('torch', 'tensorflow', 'pandas', 'matplotlib', 'h5py', 'lmdb', 'PIL')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import {module} loaded {out}"


def test_cli_help_does_not_import_torch():
    code = (
        "import sys\nfrom ptdry.cli.main import main\n"
        "try:\n    main(['runs', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stderr.strip().splitlines()[-1] == "False"


def test_python_dash_m_ptdry_works_like_the_ptdry_command():
    proc = subprocess.run([sys.executable, "-m", "ptdry", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "runs" in proc.stdout and "usage: ptdry" in proc.stdout


def test_public_names_resolve_lazily():
    code = (
        "import sys, ptdry\n"
        "assert 'torch' not in sys.modules\n"
        "ptdry.ObjectDef; assert 'torch' not in sys.modules\n"
        "ptdry.Trainer; ptdry.DataLoader; assert 'torch' not in sys.modules\n"  # framework-neutral
        "ptdry.Model; assert 'torch' in sys.modules\n"
        "assert sorted(dir(ptdry)) == sorted(set(dir(ptdry)))\n"
        "assert set(ptdry.__all__) <= set(dir(ptdry))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_of_ptdry_raises_attribute_error():
    import ptdry

    with pytest.raises(AttributeError, match="module 'ptdry' has no attribute 'Nope'"):
        ptdry.Nope  # noqa: B018
