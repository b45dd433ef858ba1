"""Inference and export stand apart from training: nothing they import, directly or through another module,
is the training loop (``salt.train``)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import salt

PACKAGE = Path(salt.__file__).resolve().parent
# The packages that load trained runs without training, and the script that imports them.
APART = ("inference", "export")


def _imported(path: Path) -> set[str]:
    """Every module ``path`` names in an import statement, lazy imports inside functions included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_inference_or_export_file_names_the_training_package() -> None:
    files = [path for package in APART for path in sorted((PACKAGE / package).rglob("*.py"))]
    assert files
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(
            n for n in _imported(path) if n.split(".")[:2] == ["salt", "train"]
        )
        for path in files
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_importing_inference_and_export_loads_no_training_module() -> None:
    # Every module of both packages, in a fresh interpreter: what they pull in through other modules counts too.
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"for package in {list(APART)!r}:\n"
        "    root = importlib.import_module('salt.' + package)\n"
        "    for info in pkgutil.walk_packages(root.__path__, root.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'salt.train' or m.startswith('salt.train.'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
