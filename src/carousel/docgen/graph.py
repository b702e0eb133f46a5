"""The pipeline as a graph: its datasets (`Dataset`), who reads whom (`PipelineGraph`), and their layers."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T

from carousel.errors import CarouselError
from carousel.pipeline.settings import SOURCE_KEYS

RAW_URI_SCHEME = "raw://"
RAW_NODE_PREFIX = "raw."

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


class LineageError(CarouselError, RuntimeError):
    """The pipeline definition cannot be turned into a graph; the message names the file or dataset."""


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
