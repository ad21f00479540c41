"""Packages talk through each other's public names only.

A module may import another mmfeat package's names only from that package
(``from mmfeat.fusion import ...``), never from its private modules or its
private names; shared internals live in ``mmfeat.utils`` (and the exception
family in ``mmfeat.exceptions``).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mmfeat"
SHARED = {"utils", "exceptions"}


def _private_imports(package=PACKAGE):
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent)
        own = rel.parts[1] if len(rel.parts) > 2 else None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module):
                continue
            parts = node.module.split(".")
            if parts[0] != "mmfeat" or len(parts) < 2:
                continue
            other = parts[1]
            if other == own or other in SHARED or (own is None and len(parts) == 2):
                continue  # its own package (the root's modules: mmfeat._persistence)
            private = [p for p in parts[2:] if p.startswith("_")] or [
                a.name for a in node.names if a.name.startswith("_")
            ]
            if other.startswith("_") and len(parts) == 2:
                private = private or [other]  # mmfeat._persistence
            if private:
                found.append(f"{rel}:{node.lineno} {node.module} {private}")
    return found


def test_no_module_imports_another_packages_private_names():
    assert _private_imports() == []


def test_the_check_finds_private_imports(tmp_path):
    fake = tmp_path / "mmfeat" / "cli"
    fake.mkdir(parents=True)
    (fake / "_x.py").write_text(
        "from mmfeat.fusion._base import Base\n"
        "from mmfeat.scoring import _walk\n"
        "from mmfeat._persistence import load\n"
        "from mmfeat.utils._state import CheckedStateMixin\n"
        "from mmfeat.cli._main import main\n"
    )
    assert _private_imports(tmp_path / "mmfeat") == [
        "mmfeat/cli/_x.py:1 mmfeat.fusion._base ['_base']",
        "mmfeat/cli/_x.py:2 mmfeat.scoring ['_walk']",
        "mmfeat/cli/_x.py:3 mmfeat._persistence ['_persistence']",
    ]
