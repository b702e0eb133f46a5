"""docs/lineage.md, generated from the pipeline's own dataset files, with the gold tables' columns.

`render_markdown` turns the recorded graph (`carousel.docgen.recording.pipeline_graph`) into
`docs/lineage.md`: a Mermaid picture by layer, the datasets, and a column-by-column description
of the gold tables (`GOLD_COLUMN_DESCRIPTIONS`, from `carousel.contract`), which must name
exactly the columns the pipeline produces, so the page cannot drift.

    python -m carousel.docgen.lineage            # rewrite docs/lineage.md
    python -m carousel.docgen.lineage --check    # exit 1 when docs/lineage.md is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from carousel.contract import DESCRIBED_TABLES
from carousel.docgen.graph import LAYERS, Dataset, LineageError, PipelineGraph, layer_of
from carousel.docgen.recording import pipeline_graph
from carousel.errors import CarouselError
from carousel.tasks import gold_step

DEFAULT_OUT = Path("docs/lineage.md")
REGENERATE_COMMAND = "python -m carousel.docgen.lineage"

GOLD_COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    name: table.descriptions for name, table in DESCRIBED_TABLES.items()
}
"""Table -> column -> one sentence, for every gold table and the per-impression rows (`carousel.contract`)."""


class ColumnDescriptionError(CarouselError, ValueError):
    """`GOLD_COLUMN_DESCRIPTIONS` does not match the columns the pipeline produces."""

    def __init__(self, table: str, column: str | None, message: str) -> None:
        super().__init__(message)
        self.table = table
        self.column = column


class MissingColumnDescriptionError(ColumnDescriptionError):
    """A described table has a column without a description."""

    def __init__(self, table: str, column: str) -> None:
        super().__init__(
            table,
            column,
            f"table '{table}' column '{column}' has no description: add one to "
            f"the table's columns in carousel.contract, then run `{REGENERATE_COMMAND}`",
        )


class UnknownColumnDescriptionError(ColumnDescriptionError):
    """A description names a column, or a table, the pipeline does not produce."""

    def __init__(self, table: str, column: str | None, present: Sequence[str]) -> None:
        what = f"table '{table}' column '{column}'" if column else f"table '{table}'"
        super().__init__(
            table,
            column,
            f"carousel.contract describes {what}, which the pipeline does not produce "
            f"(present: {', '.join(present) or 'none'})",
        )


# --- the page ------------------------------------------------------------------------------


def _node_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _node(name: str, kind: str | None) -> str:
    shapes: dict[str | None, Callable[[str], str]] = {
        None: lambda label: f'[("{label}")]',  # a raw source: a cylinder
        "materialized view": lambda label: f'["{label}"]',
        "streaming table": lambda label: f'[["{label}"]]',
        "temporary view": lambda label: f'(["{label}"])',
        "sink": lambda label: f'>"{label}"]',
        gold_step.KIND: lambda label: f'{{{{"{label}"}}}}',
    }
    return _node_id(name) + shapes[kind](name)


def _layered(graph: PipelineGraph) -> dict[str, list[tuple[str, str | None]]]:
    """Layer -> (node, kind) in name order; a raw source's kind is None."""
    nodes: list[tuple[str, str | None]] = [(raw, None) for raw in graph.raw_sources]
    nodes += [(d.name, d.kind) for d in graph.datasets]
    layered: dict[str, list[tuple[str, str | None]]] = {layer: [] for layer in LAYERS}
    for name, kind in nodes:
        layered[layer_of(name, kind)].append((name, kind))
    return {layer: members for layer, members in layered.items() if members}


def mermaid(graph: PipelineGraph) -> str:
    """The table graph as a Mermaid `flowchart LR`, one subgraph per layer; rejected rows are dotted arrows."""
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    for layer, members in _layered(graph).items():
        lines.append(f'    subgraph layer_{layer}["{LAYERS[layer]}"]')
        for name, kind in members:
            node_id = _node_id(name)
            if node_id in ids:
                raise LineageError(f"nodes '{ids[node_id]}' and '{name}' get the same Mermaid id '{node_id}'")
            ids[node_id] = name
            lines.append(f"        {_node(name, kind)}")
        lines.append("    end")
    kinds = {d.name: d.kind for d in graph.datasets}
    for upstream, downstream in graph.edges:
        arrow = "-.->" if layer_of(downstream, kinds.get(downstream)) == "quarantine" else "-->"
        lines.append(f"    {_node_id(upstream)} {arrow} {_node_id(downstream)}")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code_list(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names) or "-"


def described_tables(graph: PipelineGraph, descriptions: Mapping[str, Mapping[str, str]]) -> list[Dataset]:
    """Every gold dataset and every dataset `descriptions` names, in layer then name order.

    Raises:
        UnknownColumnDescriptionError: `descriptions` names a table the pipeline does not define.
    """
    names = [d.name for d in graph.datasets]
    for table in descriptions:
        if table not in names:
            raise UnknownColumnDescriptionError(table, None, names)
    layer_order = list(LAYERS)
    described = [d for d in graph.datasets if d.layer == "gold" or d.name in descriptions]
    return sorted(described, key=lambda d: (layer_order.index(d.layer), d.name))


def _column_rows(dataset: Dataset, descriptions: Mapping[str, Mapping[str, str]]) -> list[str]:
    described = descriptions.get(dataset.name, {})
    columns = dataset.schema.fieldNames()
    for column in described:
        if column not in columns:
            raise UnknownColumnDescriptionError(dataset.name, column, columns)
    rows = []
    for column_field in dataset.schema.fields:
        description = (described.get(column_field.name) or "").strip()
        if not description:
            raise MissingColumnDescriptionError(dataset.name, column_field.name)
        rows.append(f"| `{column_field.name}` | `{column_field.dataType.simpleString()}` | {_cell(description)} |")
    return rows


# Long on purpose: the page's sections in the order the page shows them.
def render_markdown(
    graph: PipelineGraph, descriptions: Mapping[str, Mapping[str, str]] = GOLD_COLUMN_DESCRIPTIONS
) -> str:
    """Return the lineage page: the table graph as a picture, the datasets, and the gold tables' columns.

    Args:
        graph: from `pipeline_graph`.
        descriptions: table -> column -> description, for every gold table (and any other table it names).

    Raises:
        MissingColumnDescriptionError: a described table has a column without a description.
        UnknownColumnDescriptionError: a description names a table or column the pipeline does not produce.
    """
    layer_order = list(LAYERS)
    lines = [
        "# Lineage",
        "",
        f"<!-- Generated by `{REGENERATE_COMMAND}` from src/carousel_pipeline/transformations. Do not edit. -->",
        "",
        "The tables of the declarative pipeline and what each reads, generated from the dataset files themselves:",
        "`carousel.docgen.lineage` imports every file under `src/carousel_pipeline/transformations/` with a",
        "recording graph registry and session, and calls each dataset function once on empty inputs. A new dataset",
        f"file shows up here once the page is regenerated with `{REGENERATE_COMMAND}`; `--check` fails while it is",
        "stale, and so does `tests/test_lineage.py`.",
        "",
        "## Table graph",
        "",
        "```mermaid",
        mermaid(graph),
        "```",
        "",
        "Cylinders are raw sources (a table or a path, from the pipeline configuration `carousel.source.<source>`),",
        "double boxes streaming tables (each update reads only the rows new since the last), boxes materialized",
        "views, hexagons the tables the gold step writes after each update (`carousel.tasks.gold_step`: only",
        "the new or changed impression days). A dotted arrow carries the rows a quality rule rejects",
        "(`carousel.quality.RULES`) into a quarantine table.",
        "",
        "## Datasets",
        "",
        "| dataset | layer | kind | partitioned by | reads | description |",
        "|---|---|---|---|---|---|",
    ]
    for dataset in sorted(graph.datasets, key=lambda d: (layer_order.index(d.layer), d.name)):
        lines.append(
            f"| `{dataset.name}` | {dataset.layer} | {dataset.kind} | {_code_list(dataset.partition_cols)} "
            f"| {_code_list(sorted(graph.upstream(dataset.name)))} | {_cell(dataset.comment or '')} |"
        )
    lines += [
        "",
        "## Columns of the gold tables",
        "",
        "The gold tables (what the GPU loader reads; `carousel.gold.unpack_training_examples` turns the packed",
        "table into the rows of the public `carousel.build_training_examples`). N is the setting",
        "`carousel.history_length` (1000 by default), lookback_days `carousel.lookback_days` (365 by default).",
    ]
    for dataset in described_tables(graph, descriptions):
        lines += [
            "",
            f"### `{dataset.name}`",
            "",
            f"{dataset.kind.capitalize()} (`{dataset.source_file}`). {dataset.comment or ''}".rstrip(),
            "",
            "| column | type | description |",
            "|---|---|---|",
            *_column_rows(dataset, descriptions),
        ]
    return "\n".join(lines) + "\n"


def sync_page(path: Path, page: str, check: bool) -> bool:
    """Write `page` to `path`, or with `check` only compare; return whether `path` already held `page`."""
    current = path.read_text() if path.is_file() else None
    if not check and current != page:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page)
    return current == page


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m carousel.docgen.lineage [--out docs/lineage.md] [--check]`."""
    parser = argparse.ArgumentParser(prog="python -m carousel.docgen.lineage", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the page to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the page is out of date")
    args = parser.parse_args(argv)

    from carousel.spark import local_spark

    spark = local_spark("carousel-lineage", cores=1, shuffle_partitions=1)
    page = render_markdown(pipeline_graph(spark))
    current = sync_page(args.out, page, args.check)
    if args.check and not current:
        print(f"{args.out} is out of date: regenerate it with `{REGENERATE_COMMAND} --out {args.out}`", file=sys.stderr)
        return 1
    print(f"{args.out} is up to date" if current else f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
