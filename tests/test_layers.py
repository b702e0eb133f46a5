"""The package's layers: a module imports only from its own layer and those below it (read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "contract, errors and Spark-free helpers",
        (
            "carousel",
            "carousel.contract",
            "carousel.errors",
            "carousel.config",
            "carousel.locations",
            "carousel.console",
        ),
    ),
    (
        "transformations (no table I/O)",
        (
            "carousel.actions",
            "carousel.history",
            "carousel.gold",
            "carousel.examples",
            "carousel.quality",
            "carousel.schemas",
            "carousel.incremental",
            "carousel.vocabulary",
            "carousel.kafka_source",
            "carousel.reconciliation",
            "carousel.gold_checks",
            "carousel.progress",
            "carousel.synthetic",
            "carousel.baseline.features",
            "carousel.baseline.metrics",
            "carousel.baseline.model",
            "carousel.baseline.summary",
        ),
    ),
    (
        "table I/O (paths and Unity Catalog names)",
        ("carousel.storage", "carousel.spark", "carousel.run_metrics", "carousel.loader"),
    ),
    ("the gold engine", ("carousel.engine",)),
    (
        "what ships to the pipeline",
        ("carousel.pipeline", "carousel_pipeline"),
    ),
    (
        "the job tasks",
        ("carousel.tasks", "carousel.baseline.run", "carousel.baseline.report", "carousel.baseline.plots"),
    ),
    (
        "the local development harness",
        ("carousel.local", "carousel.batch", "carousel.notebook"),
    ),
    ("the docs generator", ("carousel.docgen",)),
    ("the command line", ("carousel.cli",)),
)
"""Lowest first; a module belongs to the layer of the longest name that is it or a package holding it."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    """The index in `LAYERS` of `module`'s layer; None for a module outside the project."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def project_imports(path: Path) -> set[str]:
    """The project's modules that `path` imports when it runs, at the top or inside a function."""
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    tree = ast.parse(path.read_text())
    # Imports for type hints only (`if TYPE_CHECKING:`) never run.
    hints_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in hints_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            # `from carousel import contract` imports the module carousel.contract
            found |= {f"{base}.{alias.name}" for alias in node.names if layer_of(f"{base}.{alias.name}") is not None}
    return {name for name in found if name.split(".")[0] in ("carousel", "carousel_pipeline")}


SOURCES = sorted((SRC / "carousel").rglob("*.py")) + sorted((SRC / "carousel_pipeline").rglob("*.py"))


def test_every_module_has_a_layer():
    assert [_module_name(path) for path in SOURCES if layer_of(_module_name(path)) is None] == []


def imports_from_above(module: str, imported: set[str]) -> list[str]:
    """The modules of `imported` in a layer above `module`'s, each with its layer's name."""
    own = layer_of(module)
    return sorted(
        f"{name} ({LAYERS[layer][0]})" for name in imported if (layer := layer_of(name)) is not None and layer > own
    )


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: _module_name(path))
def test_a_module_imports_nothing_from_a_layer_above_its_own(path):
    module = _module_name(path)
    assert imports_from_above(module, project_imports(path)) == [], f"{module} ({LAYERS[layer_of(module)][0]})"


def test_the_check_reads_imports_and_finds_one_from_above():
    engine = project_imports(SRC / "carousel" / "engine" / "build.py")
    assert {"carousel.storage", "carousel.history", "carousel.contract"} <= engine
    assert imports_from_above("carousel.history", {"carousel.engine", "carousel.contract"}) == [
        "carousel.engine (the gold engine)"
    ]
    assert imports_from_above("carousel.kafka_source", {"carousel.pipeline.settings"}) == [
        "carousel.pipeline.settings (what ships to the pipeline)"
    ]
