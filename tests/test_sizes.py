"""The tree stays readable: no module over 400 lines, no function over 60 without its reason beside it (no Spark)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "src").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
REASON = "# Long on purpose:"


def long_modules(paths: list[Path]) -> list[str]:
    return [
        f"{path.relative_to(REPO)}: {lines}"
        for path in paths
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]


def long_functions_without_reason(path: Path, root: Path = REPO) -> list[str]:
    """The functions of `path` over `MAX_FUNCTION_LINES` lines without `REASON` on the line above them."""
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            above = lines[first - 2].strip() if first >= 2 else ""
            if length > MAX_FUNCTION_LINES and not above.startswith(REASON):
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_module_over_400_lines():
    assert long_modules(SOURCES) == []


def test_every_long_function_says_why():
    assert [found for path in SOURCES for found in long_functions_without_reason(path)] == []


def test_the_checks_see_a_long_function_and_its_reason(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(61))
    plain = tmp_path / "plain.py"
    plain.write_text("def f():\n" + body)
    reasoned = tmp_path / "reasoned.py"
    reasoned.write_text(f"{REASON} one table of constants.\ndef f():\n" + body)
    assert long_functions_without_reason(plain, tmp_path) == ["plain.py:1 f (62 lines)"]
    assert long_functions_without_reason(reasoned, tmp_path) == []
