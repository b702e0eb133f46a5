"""Record the pipeline's graph from its own dataset files, without running anything.

`pipeline_graph` imports every file of the transformations folder the way `spark-pipelines`
does (a module-global `spark`, a graph element registry active), but with a recording registry
and a recording session: raw sources resolve to empty DataFrames of their contract's schema,
`spark.read.table(name)` resolves to an empty DataFrame of that dataset's output, and each
dataset function is called once, upstream first, to learn what it reads and what it returns.
Nothing is read from disk and nothing is run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyspark.pipelines.flow import AutoCdcFlow, Flow
from pyspark.pipelines.graph_element_registry import GraphElementRegistry, graph_element_registration_context
from pyspark.pipelines.output import MaterializedView, Output, Sink, StreamingTable, Table, TemporaryView
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from carousel import contract
from carousel.docgen.graph import (
    RAW_NODE_PREFIX,
    RAW_URI_SCHEME,
    Dataset,
    LineageError,
    PipelineGraph,
    default_configuration,
)
from carousel.local.spark_pipelines import TRANSFORMATIONS
from carousel.pipeline.settings import PREFIX
from carousel.schemas import RAW_SCHEMAS
from carousel.tasks import gold_step

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

    def schema(self, schema: Any) -> _RecordingReader:
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
        # A stream of a dataset stands for its rows as a batch would: only columns and reads matter here.
        self.readStream = _RecordingReader(self)
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
        transformations: the folder of dataset files (`carousel.local.spark_pipelines.TRANSFORMATIONS`).
        configuration: pipeline settings the files read with `spark.conf.get`; by default every
            raw source at `raw://<source>` and every other `carousel.*` setting at its default.

    Returns:
        One `Dataset` per registered output, and an edge from every node a flow reads (inside
        its function; a file's reads at import are not edges) to the flow's target; for the
        project's own folder, also the gold tables the gold step writes after each update, with
        the step's reads as edges.

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
    if transformations == TRANSFORMATIONS:  # the project's own pipeline, which the gold step follows
        datasets += _gold_step_tables(spark)
        edges |= {(upstream, table) for table, upstreams in gold_step.READS.items() for upstream in upstreams}
    return PipelineGraph(tuple(sorted(datasets, key=lambda d: d.name)), tuple(sorted(edges)))


def _gold_step_tables(spark: SparkSession) -> list[Dataset]:
    """The tables the gold step writes after the pipeline (`carousel.tasks.gold_step`), from the contract."""
    tables = [table for table in contract.GOLD_TABLES if table.name in gold_step.READS]
    return [
        Dataset(
            table.name,
            gold_step.KIND,
            table.comment,
            table.partition_by,
            spark.createDataFrame([], ", ".join(f"`{name}` {kind}" for name, kind in table.types.items())).schema,
            "../carousel/tasks/gold_step.py",
            table.ddl(),
        )
        for table in tables
    ]
