"""Every table the project writes agrees with `carousel.contract`: pipeline, validation, loader and page."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from carousel import contract
from carousel.docgen.lineage import GOLD_COLUMN_DESCRIPTIONS
from carousel.docgen.recording import pipeline_graph
from carousel.gold_checks import EXPECTED_COLUMNS

SRC = Path(__file__).resolve().parents[1] / "src"
PIPELINE_TABLES = (
    contract.ACTIONS_SILVER,
    contract.CUSTOMER_HISTORIES_GOLD,
    contract.TRAINING_EXAMPLES_GOLD,
    contract.ITEM_VOCABULARY_GOLD,
)
"""The contract's tables the pipeline and its gold step write (tests/test_gold_step.py reads what the step wrote)."""


@pytest.fixture(scope="module")
def graph(spark):
    return pipeline_graph(spark)


@pytest.mark.parametrize("table", PIPELINE_TABLES, ids=lambda table: table.name)
def test_the_pipeline_produces_each_table_of_the_contract_column_for_column(graph, table):
    dataset = graph.dataset(table.name)
    produced = {field.name: field.dataType.simpleString() for field in dataset.schema.fields}
    assert list(produced) == list(table.column_names)
    assert produced == table.types
    assert dataset.comment == table.comment
    assert dataset.partition_cols == table.partition_by


@pytest.mark.parametrize("table", PIPELINE_TABLES, ids=lambda table: table.name)
def test_the_pipeline_declares_the_contract_schema_with_its_comments(graph, table):
    # Every table passes the contract's DDL, comments included.
    assert graph.dataset(table.name).declared_schema == table.ddl()


def test_ddl_quotes_a_description_with_an_apostrophe():
    column = contract.ColumnSpec("dt", "string", "The customer's day, 'yyyy-MM-dd'.")
    assert column.ddl() == "dt string COMMENT 'The customer\\'s day, \\'yyyy-MM-dd\\'.'"


def test_validation_lineage_and_loader_read_the_contract():
    for table in (contract.CUSTOMER_HISTORIES_GOLD, contract.TRAINING_EXAMPLES_GOLD):
        assert EXPECTED_COLUMNS[table.name] == table.types
    assert GOLD_COLUMN_DESCRIPTIONS == {name: table.descriptions for name, table in contract.DESCRIBED_TABLES.items()}
    assert set(contract.LOADER_COLUMNS) <= set(contract.TRAINING_EXAMPLES_GOLD.column_names)


def test_the_contract_imports_without_spark():
    blocked = "import sys; sys.modules['pyspark'] = None; import carousel.contract; print('ok')"
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr


def _string_constants(path: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant)]


def test_each_gold_table_name_is_spelled_out_once_in_the_package():
    # Code elsewhere names the tables through the contract; the pipeline files' module
    # docstrings ("customer_histories_gold: ...") are prose, not declarations.
    names = {table.name for table in contract.GOLD_TABLES} | {contract.TRAINING_EXAMPLES.name}
    found: dict[str, list[str]] = {name: [] for name in names}
    for path in sorted((SRC / "carousel").rglob("*.py")):
        for value in _string_constants(path):
            if isinstance(value, str) and value in names:
                found[value].append(path.relative_to(SRC).as_posix())
    assert found == {name: ["carousel/contract.py"] for name in names}
