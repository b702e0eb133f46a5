"""Lineage of the declarative pipeline, generated from its own dataset files, and the gold tables' columns.

`pipeline_graph` imports every file of the transformations folder the way `spark-pipelines`
does (a module-global `spark`, a graph element registry active), but with a recording registry
and a recording session: raw sources resolve to empty DataFrames of their contract's schema,
`spark.read.table(name)` resolves to an empty DataFrame of that dataset's output, and each
dataset function is called once, upstream first, to learn what it reads and what it returns.
Nothing is read from disk and nothing is run.

`render_markdown` turns the graph into `docs/lineage.md`: a Mermaid picture by layer, the
datasets, and a column-by-column description of the gold tables (`GOLD_COLUMN_DESCRIPTIONS`, from
`carousel.contract`), which must name exactly the columns the pipeline produces, so the page cannot drift.

    python -m carousel.lineage            # rewrite docs/lineage.md
    python -m carousel.lineage --check    # exit 1 when docs/lineage.md is out of date
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.pipelines.flow import AutoCdcFlow, Flow
from pyspark.pipelines.graph_element_registry import GraphElementRegistry, graph_element_registration_context
from pyspark.pipelines.output import MaterializedView, Output, Sink, StreamingTable, Table, TemporaryView
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from carousel.contract import DESCRIBED_TABLES
from carousel.errors import CarouselError
from carousel.local_pipeline import TRANSFORMATIONS
from carousel.pipeline_settings import PREFIX, SOURCE_KEYS
from carousel.schemas import RAW_SCHEMAS

RAW_URI_SCHEME = "raw://"
RAW_NODE_PREFIX = "raw."
DEFAULT_OUT = Path("docs/lineage.md")
REGENERATE_COMMAND = "python -m carousel.lineage"

LAYERS: dict[str, str] = {
    "raw": "Raw sources",
    "bronze": "Bronze",
    "quarantine": "Quarantine",
    "silver": "Silver",
    "gold": "Gold",
    "views": "Views",
    "other": "Other datasets",
}
"""Layer -> heading, in the order the picture and the tables show them."""

_LAYER_SUFFIXES = {"_bronze": "bronze", "_quarantine": "quarantine", "_silver": "silver", "_gold": "gold"}

GOLD_COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    name: table.descriptions for name, table in DESCRIBED_TABLES.items()
}
"""Table -> column -> one sentence, for every gold table and the per-impression view (`carousel.contract`)."""


class LineageError(CarouselError, RuntimeError):
    """The pipeline definition cannot be turned into a graph; the message names the file or dataset."""


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


@dataclass(frozen=True)
class Dataset:
    """One output of the pipeline.

    Attributes:
        name: the dataset's name, as the files register it.
        kind: 'materialized view', 'streaming table', 'temporary view' or 'sink'.
        comment: the dataset's comment, if any.
        partition_cols: the partition columns of a table, else empty.
        schema: what its flow returns.
        source_file: the file that defines it, relative to the transformations folder.
        declared_schema: the schema the file declares for a table (DDL), if any.
    """

    name: str
    kind: str
    comment: str | None
    partition_cols: tuple[str, ...]
    schema: T.StructType
    source_file: str
    declared_schema: str | None = None

    @property
    def layer(self) -> str:
        return layer_of(self.name, self.kind)


@dataclass(frozen=True)
class PipelineGraph:
    """The datasets of the pipeline and who reads whom.

    Attributes:
        datasets: every output, sorted by name.
        edges: (upstream, downstream) pairs, sorted; a raw source is `raw.<source>`.
    """

    datasets: tuple[Dataset, ...]
    edges: tuple[tuple[str, str], ...]

    def dataset(self, name: str) -> Dataset:
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise KeyError(f"the pipeline defines no dataset '{name}'")

    @property
    def raw_sources(self) -> tuple[str, ...]:
        return tuple(sorted({up for up, _ in self.edges if up.startswith(RAW_NODE_PREFIX)}))

    def upstream(self, name: str) -> set[str]:
        return {up for up, down in self.edges if down == name}

    def downstream(self, name: str) -> set[str]:
        return {down for up, down in self.edges if up == name}


def layer_of(name: str, kind: str | None = None) -> str:
    """The layer of a node: raw for `raw.*`, views for temporary views, else by the name's suffix."""
    if name.startswith(RAW_NODE_PREFIX):
        return "raw"
    if kind == "temporary view":
        return "views"
    for suffix, layer in _LAYER_SUFFIXES.items():
        if name.endswith(suffix):
            return layer
    return "other"


def raw_uri(source: str) -> str:
    """The location `pipeline_graph` configures for a raw source: a path that is never read."""
    return f"{RAW_URI_SCHEME}{source}"


def default_configuration() -> dict[str, str]:
    """Every raw source at its `raw_uri`; every other setting at its default."""
    return {key: raw_uri(source) for source, key in SOURCE_KEYS.items()}


# --- recording the definitions -------------------------------------------------------------


class RecordingRegistry(GraphElementRegistry):
    """A graph element registry that only keeps what the files register."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.flows: list[Flow] = []

    def register_output(self, output: Output) -> None:
        self.outputs.append(output)

    def register_flow(self, flow: Flow) -> None:
        self.flows.append(flow)

    def register_auto_cdc_flow(self, flow: AutoCdcFlow) -> None:
        raise LineageError(
            f"auto CDC flow into '{flow.target}' ({flow.source_code_location.filename}): "
            "the lineage generator does not support auto CDC flows"
        )

    def register_sql(self, sql_text: str, file_path: Path) -> None:
        raise LineageError(f"SQL file '{file_path}': the lineage generator does not support SQL definitions")


class _NotYetKnown(Exception):
    """A flow read a dataset whose output is not known yet: evaluate it again later."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _RecordingConf:
    """`spark.conf` answering the pipeline's `carousel.*` settings from a dict, anything else from the session."""

    def __init__(self, conf: Any, configuration: Mapping[str, str]) -> None:
        self._conf = conf
        self._configuration = configuration

    def get(self, key: str, *default: Any) -> Any:
        if key in self._configuration:
            return self._configuration[key]
        if key.startswith(PREFIX):  # never the session's own value: the page must not depend on it
            return default[0] if default else None
        return self._conf.get(key, *default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conf, name)


class _RecordingReader:
    """`spark.read`: pipeline datasets and `raw://` sources become empty DataFrames, each read recorded."""

    def __init__(self, session: RecordingSession) -> None:
        self._session = session

    def table(self, name: str) -> DataFrame:
        return self._session.table(name)

    def format(self, source: str) -> _RecordingReader:
        return self

    def option(self, key: str, value: Any) -> _RecordingReader:
        return self

    def options(self, **options: Any) -> _RecordingReader:
        return self

    def load(self, path: str | None = None, *args: Any, **kwargs: Any) -> DataFrame:
        if isinstance(path, str) and path.startswith(RAW_URI_SCHEME):
            return self._session.raw(path)
        raise LineageError(f"read of '{path}': only `{RAW_URI_SCHEME}<source>` paths can be read while recording")

    def parquet(self, *paths: str, **options: Any) -> DataFrame:
        if len(paths) == 1:
            return self.load(paths[0])
        raise LineageError(f"read of {paths}: only one `{RAW_URI_SCHEME}<source>` path can be read while recording")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session.spark.read, name)


class RecordingSession:
    """The `spark` the dataset files get: a real session, except for configuration and reads.

    Attributes:
        spark: the real (classic) session that builds the empty DataFrames.
        datasets: the names of every output the files register (known once all are imported).
        schemas: dataset name -> output schema, for the datasets evaluated so far.
        reads: the nodes read since the last `start_recording`.
    """

    def __init__(self, spark: SparkSession, configuration: Mapping[str, str]) -> None:
        self.spark = spark
        self.conf = _RecordingConf(spark.conf, configuration)
        self.read = _RecordingReader(self)
        self.datasets: set[str] = set()
        self.schemas: dict[str, T.StructType] = {}
        self.reads: set[str] = set()
        self._reader: str | None = None

    def start_recording(self, reader: str | None) -> None:
        """Forget the reads so far; later reads are by `reader` (a dataset), or by a file at import when None."""
        self.reads = set()
        self._reader = reader

    def table(self, name: str) -> DataFrame:
        """An empty DataFrame of dataset `name`'s output.

        Raises:
            LineageError: no file of the pipeline defines `name`.
            _NotYetKnown: its output is not known yet.
        """
        if self._reader is None:
            raise LineageError(f"a pipeline file reads table '{name}' at import; read it inside a dataset function")
        if name not in self.datasets:
            raise LineageError(f"dataset '{self._reader}' reads table '{name}', which no file of the pipeline defines")
        self.reads.add(name)
        if name not in self.schemas:
            raise _NotYetKnown(name)
        return self.spark.createDataFrame([], self.schemas[name])

    def raw(self, uri: str) -> DataFrame:
        """An empty DataFrame of the raw source at `uri` (`raw://<source>`), with its contract's schema."""
        source = uri[len(RAW_URI_SCHEME) :].strip("/")
        if source not in RAW_SCHEMAS:
            raise LineageError(f"raw source '{uri}' is none of {sorted(RAW_SCHEMAS)}")
        self.reads.add(RAW_NODE_PREFIX + source)
        return self.spark.createDataFrame([], RAW_SCHEMAS[source])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.spark, name)


def _definition_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for file in files:
        if file.suffix != ".py":
            raise LineageError(f"'{file}': the lineage generator reads only Python definition files")
    return files


def _import_definitions(file: Path, session: RecordingSession) -> None:
    """Execute one definition file like `spark-pipelines` does; the module stays out of `sys.modules`."""
    module_spec = importlib.util.spec_from_file_location(file.stem, str(file))
    if module_spec is None or module_spec.loader is None:
        raise LineageError(f"cannot import pipeline file '{file}'")
    module = importlib.util.module_from_spec(module_spec)
    module.__dict__["spark"] = session
    module_spec.loader.exec_module(module)


def _kind(output: Output) -> str:
    if isinstance(output, MaterializedView):
        return "materialized view"
    if isinstance(output, StreamingTable):
        return "streaming table"
    if isinstance(output, TemporaryView):
        return "temporary view"
    if isinstance(output, Sink):
        return "sink"
    raise LineageError(f"output '{output.name}' is of an unknown kind: {type(output).__name__}")


def _evaluate_flows(flows: list[Flow], session: RecordingSession) -> set[tuple[str, str]]:
    """Call every flow, upstream first (a flow that reads an output not known yet is tried again later).

    Returns:
        (node read, flow target) for every read inside a flow function.
    """
    edges: set[tuple[str, str]] = set()
    pending = list(flows)
    waiting: dict[str, str] = {}
    while pending:
        progressed = False
        for flow in list(pending):
            session.start_recording(flow.target)
            try:
                result = flow.func()
            except _NotYetKnown as unknown:
                waiting[flow.name] = unknown.name
                continue
            if not isinstance(result, DataFrame):
                raise LineageError(f"flow '{flow.name}' returned {type(result).__name__}, not a DataFrame")
            session.schemas.setdefault(flow.target, result.schema)
            edges |= {(upstream, flow.target) for upstream in session.reads}
            pending.remove(flow)
            waiting.pop(flow.name, None)
            progressed = True
        if not progressed:
            stuck = ", ".join(f"'{name}' waits on '{table}'" for name, table in sorted(waiting.items()))
            raise LineageError(f"the flows read each other in a cycle, or read a dataset with no flow: {stuck}")
    return edges


def pipeline_graph(
    spark: SparkSession,
    transformations: Path = TRANSFORMATIONS,
    configuration: Mapping[str, str] | None = None,
) -> PipelineGraph:
    """Return the datasets and edges of the pipeline defined by the files under `transformations`.

    Args:
        spark: a classic local session; it only analyses empty DataFrames.
        transformations: the folder of dataset files (`carousel.local_pipeline.TRANSFORMATIONS`).
        configuration: pipeline settings the files read with `spark.conf.get`; by default every
            raw source at `raw://<source>` and every other `carousel.*` setting at its default.

    Returns:
        One `Dataset` per registered output, and an edge from every node a flow reads (inside
        its function; a file's reads at import are not edges) to the flow's target.

    Raises:
        LineageError: a file cannot be recorded (SQL, auto CDC, a read of an undefined table, a cycle).
    """
    configuration = default_configuration() if configuration is None else configuration
    registry = RecordingRegistry()
    session = RecordingSession(spark, configuration)
    files: dict[str, str] = {}
    with graph_element_registration_context(registry):
        for file in _definition_files(transformations):
            registered = len(registry.outputs)
            session.start_recording(None)
            _import_definitions(file, session)
            for output in registry.outputs[registered:]:
                files[output.name] = file.relative_to(transformations).as_posix()
    names = [output.name for output in registry.outputs]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise LineageError(f"datasets defined more than once: {', '.join(duplicated)}")
    session.datasets = set(names)
    edges = _evaluate_flows(registry.flows, session)
    datasets = []
    for output in registry.outputs:
        if output.name not in session.schemas:
            raise LineageError(f"dataset '{output.name}' ({files[output.name]}) has no flow")
        partition_cols = tuple(output.partition_cols or ()) if isinstance(output, Table) else ()
        declared = output.schema if isinstance(output, Table) and isinstance(output.schema, str) else None
        datasets.append(
            Dataset(
                output.name,
                _kind(output),
                output.comment,
                partition_cols,
                session.schemas[output.name],
                files[output.name],
                declared,
            )
        )
    return PipelineGraph(tuple(sorted(datasets, key=lambda d: d.name)), tuple(sorted(edges)))


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
        "`carousel.lineage` imports every file under `src/carousel_pipeline/transformations/` with a recording",
        "graph registry and session, and calls each dataset function once on empty inputs. A new dataset file",
        f"shows up here once the page is regenerated with `{REGENERATE_COMMAND}`; `--check` fails while it is stale,",
        "and so does `tests/test_lineage.py`.",
        "",
        "## Table graph",
        "",
        "```mermaid",
        mermaid(graph),
        "```",
        "",
        "Cylinders are raw sources (a table or a path, from the pipeline configuration `carousel.source.<source>`),",
        "boxes materialized views, rounded boxes temporary views. A dotted arrow carries the rows a quality rule",
        "rejects (`carousel.quality.RULES`) into a quarantine table.",
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
        "The gold tables (what the GPU loader reads) and the per-impression view (the rows of the public",
        "`carousel.build_training_examples`). N is the pipeline setting `carousel.history_length` (1000 by",
        "default), lookback_days `carousel.lookback_days` (365 by default).",
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
    """`python -m carousel.lineage [--out docs/lineage.md] [--check]`."""
    parser = argparse.ArgumentParser(prog="python -m carousel.lineage", description=__doc__.splitlines()[0])
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
