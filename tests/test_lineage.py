"""The lineage graph recorded from the pipeline's own dataset files, and the generated docs/lineage.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pyspark.sql import types as T

from carousel.docgen.graph import Dataset, LineageError, PipelineGraph, layer_of
from carousel.docgen.lineage import (
    GOLD_COLUMN_DESCRIPTIONS,
    REGENERATE_COMMAND,
    MissingColumnDescriptionError,
    UnknownColumnDescriptionError,
    mermaid,
    render_markdown,
    sync_page,
)
from carousel.docgen.recording import pipeline_graph
from carousel.local.spark_pipelines import TRANSFORMATIONS
from carousel.schemas import RAW_SCHEMAS

LINEAGE_PAGE = Path(__file__).resolve().parents[1] / "docs" / "lineage.md"

# Written out by hand from the dataset files present when this test was written; files added
# later bring more edges, which the structural tests below still check.
EXPECTED_EDGES = {
    ("raw.impressions", "impressions_bronze"),
    ("raw.clicks", "clicks_bronze"),
    ("raw.add_to_carts", "add_to_carts_bronze"),
    ("raw.orders", "orders_bronze"),
    ("raw.impressions", "impressions_quarantine"),
    ("raw.clicks", "clicks_quarantine"),
    ("raw.add_to_carts", "add_to_carts_quarantine"),
    ("raw.orders", "orders_quarantine"),
    ("clicks_bronze", "actions_silver"),
    ("add_to_carts_bronze", "actions_silver"),
    ("orders_bronze", "actions_silver"),
    ("impressions_bronze", "customer_histories_gold"),
    ("actions_silver", "customer_histories_gold"),
    ("impressions_bronze", "training_examples_gold"),
    ("customer_histories_gold", "training_examples_gold"),
}


@pytest.fixture(scope="module")
def graph(spark) -> PipelineGraph:
    return pipeline_graph(spark)


def by_layer(graph: PipelineGraph, layer: str) -> list[str]:
    return [d.name for d in graph.datasets if d.layer == layer]


def test_every_dataset_file_is_in_the_graph(graph):
    files = {p.relative_to(TRANSFORMATIONS).as_posix() for p in TRANSFORMATIONS.rglob("*.py")}
    assert {d.source_file for d in graph.datasets} == files | {"../carousel/tasks/gold_step.py"}


def test_the_hand_written_edges_are_all_there(graph):
    assert EXPECTED_EDGES <= set(graph.edges)


def test_every_bronze_and_quarantine_table_reads_only_its_raw_source(graph):
    assert sorted(by_layer(graph, "bronze")) == sorted(f"{source}_bronze" for source in RAW_SCHEMAS)
    assert sorted(by_layer(graph, "quarantine")) == sorted(f"{source}_quarantine" for source in RAW_SCHEMAS)
    for source in RAW_SCHEMAS:
        assert graph.upstream(f"{source}_bronze") == {f"raw.{source}"}
        assert graph.upstream(f"{source}_quarantine") == {f"raw.{source}"}
    assert graph.raw_sources == tuple(sorted(f"raw.{source}" for source in RAW_SCHEMAS))


def test_silver_and_gold_read_what_they_read(graph):
    assert graph.upstream("actions_silver") == {"clicks_bronze", "add_to_carts_bronze", "orders_bronze"}
    assert graph.upstream("customer_histories_gold") == {"impressions_bronze", "actions_silver"}
    assert graph.upstream("training_examples_gold") == {"impressions_bronze", "customer_histories_gold"}


def test_no_raw_source_or_quarantine_table_feeds_silver_gold_or_views(graph):
    fed = {"silver", "gold", "views"}
    for name in [*graph.raw_sources, *by_layer(graph, "quarantine")]:
        assert not {layer_of(down, graph.dataset(down).kind) for down in graph.downstream(name)} & fed, name


def test_every_edge_joins_known_nodes(graph):
    nodes = {d.name for d in graph.datasets} | set(graph.raw_sources)
    assert {node for edge in graph.edges for node in edge} <= nodes


def test_kinds_partitions_and_gold_schemas(graph):
    assert graph.dataset("impressions_bronze").kind == "streaming table"
    assert graph.dataset("actions_silver").kind == "streaming table"
    assert graph.dataset("training_examples_gold").kind == "gold step table"
    assert graph.dataset("customer_histories_gold").partition_cols == ("dt",)
    assert graph.dataset("training_examples_gold").partition_cols == ("dt",)
    assert graph.dataset("customer_histories_gold").schema.simpleString() == (
        "struct<dt:string,customer_id:int,actions:array<int>,action_types:array<tinyint>>"
    )


def test_the_dataset_files_stay_out_of_sys_modules(spark):
    stems = {p.stem for p in TRANSFORMATIONS.rglob("*.py")}
    before = set(sys.modules)
    pipeline_graph(spark)
    assert not (set(sys.modules) - before) & stems


def test_the_committed_page_is_what_the_pipeline_generates(graph):
    message = f"docs/lineage.md is out of date: regenerate it with `{REGENERATE_COMMAND}` from the repository root"
    assert LINEAGE_PAGE.is_file(), message
    assert LINEAGE_PAGE.read_text() == render_markdown(graph), message


def test_the_page_describes_every_gold_column(graph):
    page = render_markdown(graph)
    for table, columns in GOLD_COLUMN_DESCRIPTIONS.items():
        assert f"### `{table}`" in page
        for column in columns:
            assert f"| `{column}` |" in page
    assert "```mermaid\nflowchart LR" in page
    assert "clicks_bronze --> actions_silver" in page
    assert "raw_clicks -.-> clicks_quarantine" in page


def test_a_gold_column_without_description_is_named(graph):
    descriptions = {table: dict(columns) for table, columns in GOLD_COLUMN_DESCRIPTIONS.items()}
    del descriptions["training_examples_gold"]["labels"]
    with pytest.raises(MissingColumnDescriptionError, match="'training_examples_gold' column 'labels'") as raised:
        render_markdown(graph, descriptions)
    assert (raised.value.table, raised.value.column) == ("training_examples_gold", "labels")


# --- without Spark: a small hand-made graph -----------------------------------------------------

SMALL = PipelineGraph(
    datasets=(
        Dataset("clicks_bronze", "materialized view", "Valid clicks.", (), T.StructType(), "clicks_bronze.py"),
        Dataset("clicks_quarantine", "materialized view", None, (), T.StructType(), "clicks_quarantine.py"),
        Dataset(
            "scores_gold",
            "materialized view",
            "Scores | per day.",
            ("dt",),
            T.StructType([T.StructField("dt", T.StringType()), T.StructField("score", T.ArrayType(T.IntegerType()))]),
            "scores_gold.py",
        ),
    ),
    edges=(
        ("clicks_bronze", "scores_gold"),
        ("raw.clicks", "clicks_bronze"),
        ("raw.clicks", "clicks_quarantine"),
    ),
)
SMALL_DESCRIPTIONS = {"scores_gold": {"dt": "The day.", "score": "The scores."}}


def test_a_gold_table_missing_from_the_descriptions_is_named_with_its_first_column():
    with pytest.raises(MissingColumnDescriptionError, match="'scores_gold' column 'dt'"):
        render_markdown(SMALL, {})


def test_an_empty_description_counts_as_missing():
    with pytest.raises(MissingColumnDescriptionError, match="'scores_gold' column 'score'"):
        render_markdown(SMALL, {"scores_gold": {"dt": "The day.", "score": "  "}})


def test_a_description_of_a_column_that_does_not_exist_is_named():
    descriptions = {"scores_gold": {**SMALL_DESCRIPTIONS["scores_gold"], "scores": "A typo."}}
    with pytest.raises(UnknownColumnDescriptionError, match="'scores_gold' column 'scores'") as raised:
        render_markdown(SMALL, descriptions)
    assert (raised.value.table, raised.value.column) == ("scores_gold", "scores")


def test_a_description_of_a_table_that_does_not_exist_is_named():
    with pytest.raises(UnknownColumnDescriptionError, match="table 'gone_gold'"):
        render_markdown(SMALL, {**SMALL_DESCRIPTIONS, "gone_gold": {"dt": "The day."}})


def test_the_small_page():
    page = render_markdown(SMALL, SMALL_DESCRIPTIONS)
    assert mermaid(SMALL) in page
    assert mermaid(SMALL).splitlines() == [
        "flowchart LR",
        '    subgraph layer_raw["Raw sources"]',
        '        raw_clicks[("raw.clicks")]',
        "    end",
        '    subgraph layer_bronze["Bronze"]',
        '        clicks_bronze["clicks_bronze"]',
        "    end",
        '    subgraph layer_quarantine["Quarantine"]',
        '        clicks_quarantine["clicks_quarantine"]',
        "    end",
        '    subgraph layer_gold["Gold"]',
        '        scores_gold["scores_gold"]',
        "    end",
        "    clicks_bronze --> scores_gold",
        "    raw_clicks --> clicks_bronze",
        "    raw_clicks -.-> clicks_quarantine",
    ]
    assert "| `scores_gold` | gold | materialized view | `dt` | `clicks_bronze` | Scores \\| per day. |" in page
    assert "| `score` | `array<int>` | The scores. |" in page


def test_layers():
    assert layer_of("raw.clicks") == "raw"
    assert layer_of("clicks_bronze", "materialized view") == "bronze"
    assert layer_of("examples_gold", "temporary view") == "views"
    assert layer_of("source_reconciliation", "materialized view") == "other"


def test_sync_page_writes_and_checks(tmp_path):
    page = tmp_path / "docs" / "lineage.md"
    assert not sync_page(page, "one\n", check=True)
    assert not page.exists()
    assert not sync_page(page, "one\n", check=False)
    assert page.read_text() == "one\n"
    assert sync_page(page, "one\n", check=True)
    assert not sync_page(page, "two\n", check=True)
    assert page.read_text() == "one\n"


# --- files the generator has never seen ---------------------------------------------------------

HEADER = "from pyspark import pipelines as dp\n\n"


def write_files(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, body in files.items():
        (folder / name).write_text(HEADER + body)
    return folder


def test_a_new_file_shows_up_whatever_order_the_files_come_in(spark, tmp_path):
    folder = write_files(
        tmp_path / "transformations",
        {
            "a_gold.py": (
                "@dp.materialized_view(name='a_gold')\n"
                "def a_gold():\n"
                "    return spark.read.table('b_silver').selectExpr('customer_id + 1 AS next_id')\n"
            ),
            "b_silver.py": (
                "@dp.temporary_view(name='b_silver')\n"
                "def b_silver():\n"
                "    return spark.read.parquet(spark.conf.get('carousel.source.clicks'))\n"
            ),
        },
    )
    small = pipeline_graph(spark, folder)
    assert small.edges == (("b_silver", "a_gold"), ("raw.clicks", "b_silver"))
    assert small.dataset("a_gold").schema.simpleString() == "struct<next_id:int>"
    assert small.dataset("b_silver").kind == "temporary view"


def test_a_read_of_an_undefined_table_names_the_reader_and_the_table(spark, tmp_path):
    folder = write_files(
        tmp_path / "transformations",
        {"x.py": "@dp.materialized_view(name='x_gold')\ndef x():\n    return spark.read.table('nope')\n"},
    )
    with pytest.raises(LineageError, match="dataset 'x_gold' reads table 'nope'"):
        pipeline_graph(spark, folder)


def test_a_cycle_is_named(spark, tmp_path):
    body = "@dp.materialized_view(name='{me}')\ndef f():\n    return spark.read.table('{other}')\n"
    folder = write_files(
        tmp_path / "transformations",
        {"p.py": body.format(me="p", other="q"), "q.py": body.format(me="q", other="p")},
    )
    with pytest.raises(LineageError, match="cycle.*'p' waits on 'q'"):
        pipeline_graph(spark, folder)
