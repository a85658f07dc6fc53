"""Package `__init__` files only re-export: a docstring, imports, `__all__` (and `__version__`), no logic."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mcp_anything"
FACES = sorted(PACKAGE.rglob("__init__.py"))


def _is_reexport(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return True  # the docstring
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    # `__all__`, and metadata such as `__version__`
    return len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id in ("__all__", "__version__")


@pytest.mark.parametrize("face", FACES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_package_face_only_reexports(face: Path) -> None:
    tree = ast.parse(face.read_text())
    logic = [f"line {node.lineno}: {type(node).__name__}" for node in tree.body if not _is_reexport(node)]
    assert not logic, f"{face.relative_to(PACKAGE.parent)} holds more than re-exports: {logic}"


def test_every_face_is_checked() -> None:
    assert PACKAGE / "__init__.py" in FACES and len(FACES) > 1
