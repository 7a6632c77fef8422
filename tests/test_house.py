"""The house rules of docs/architecture.md that hold for the code itself: the layers point one way (import-linter's
contracts in .importlinter), and modules and functions stay small (no module over 450 lines, no function over 60,
outside migrations and the tests)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
# The tests and their harness (testing/) are held to their own measure; migrations are generated.
NOT_MEASURED = {".venv", "var", "tests", "testing", "node_modules"}

# Modules and functions excused from the limits, each with its size: none today. An entry that fits the limits
# again must leave the list (the test says so), so the list stays exact.
LONG_MODULES = {
}
LONG_FUNCTIONS = {
}


def _modules() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py")
                  if not NOT_MEASURED & set(path.relative_to(ROOT).parts[:1])
                  and not path.relative_to(ROOT).parts[0].startswith(".")
                  and "migrations" not in path.parts)


def _function_lengths(path: Path) -> dict[str, int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def _over(sizes: dict[str, int], limit: int, allowed: dict[str, int]) -> tuple[list[str], list[str]]:
    """What breaks the limit without an entry, and the entries that fit again."""
    broken = [f"{name}: {size} lines (limit {limit})" for name, size in sorted(sizes.items())
              if size > limit and name not in allowed]
    stale = [f"{name}: now {sizes.get(name, 0)} lines, remove it from the list" for name in sorted(allowed)
             if sizes.get(name, 0) <= limit]
    return broken, stale


def test_house_layers_point_one_way() -> None:
    """import-linter's contracts: the layers, adread and the agent apart from the portal, no circles."""
    linter = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert linter, "lint-imports is not installed: pip install -r requirements-dev.txt"
    result = subprocess.run([linter, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_house_no_module_over_450_lines() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in _modules()}
    broken, stale = _over(sizes, MAX_MODULE_LINES, LONG_MODULES)
    assert not broken, "split these along their seams:\n" + "\n".join(broken)
    assert not stale, "\n".join(stale)


def test_house_no_function_over_60_lines() -> None:
    sizes = {f"{path.relative_to(ROOT)}:{name}": size
             for path in _modules() for name, size in _function_lengths(path).items()}
    broken, stale = _over(sizes, MAX_FUNCTION_LINES, LONG_FUNCTIONS)
    assert not broken, "split these into named steps:\n" + "\n".join(broken)
    assert not stale, "\n".join(stale)
