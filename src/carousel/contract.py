"""The contract of every table the project writes: name, columns (type, one sentence each) and codes.

The one source of truth for them, free of Spark imports so that the GPU loader reads it as well as
the pipeline. The pipeline's dataset declarations (schemas with column comments), the gold
validation, the lineage page, the loader's columns, the public API's column order and the tests
all derive from it. Types are Spark SQL type names, as `DESCRIBE` and DDL write them. The raw
inputs' contract is `carousel.schemas.RAW_SCHEMAS`.
"""

from __future__ import annotations

from dataclasses import dataclass

PADDING = 0
CLICK = 1
ADD_TO_CART = 2
ORDER = 3


@dataclass(frozen=True)
class ActionSource:
    """Where a raw source keeps an action's fields: when it happened, the item, its day, and its type code."""

    occurred_at: str
    item_id: str
    day: str
    action_type: int


ACTION_SOURCES: dict[str, ActionSource] = {
    "clicks": ActionSource("click_time", "item_id", "dt", CLICK),
    "add_to_carts": ActionSource("occurred_at", "config_id", "dt", ADD_TO_CART),
    "orders": ActionSource("occurred_at", "config_id", "order_date", ORDER),
}
"""Raw source -> its action fields: the one mapping from sources to actions (silver, the benchmarks' floors)."""

PADDING_INDEX = 0
UNKNOWN_INDEX = 1
FIRST_ITEM_INDEX = 2
FIRST_VOCABULARY_VERSION = 1
"""Embedding indices of `item_vocabulary_gold`: 0 padding, 1 an item the vocabulary does not know, then known items;
and the version the vocabulary starts at (a re-rank makes the next one)."""


def sql_text(text: str) -> str:
    """`text` as the inside of a single-quoted SQL string literal (backslashes and quotes escaped)."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table the project writes."""

    name: str
    type: str
    description: str

    def ddl(self) -> str:
        """The column as DDL with its description as comment (Unity Catalog shows it)."""
        return f"{self.name} {self.type} COMMENT '{sql_text(self.description)}'"


@dataclass(frozen=True)
class TableSpec:
    """One table (or view) the project writes: its name, what a row is, its columns in order."""

    name: str
    comment: str
    columns: tuple[ColumnSpec, ...]
    partition_by: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def types(self) -> dict[str, str]:
        """Column name -> Spark SQL type name."""
        return {column.name: column.type for column in self.columns}

    @property
    def descriptions(self) -> dict[str, str]:
        """Column name -> its one sentence."""
        return {column.name: column.description for column in self.columns}

    def ddl(self) -> str:
        """The schema as DDL with column comments, for a dataset declaration's `schema`."""
        return ", ".join(column.ddl() for column in self.columns)


_DT = "The impression day, 'yyyy-MM-dd', of the valid impression rows in the window."
_CUSTOMER_ID = "The customer who was shown the carousel that day (a positive id)."
_ALIGNED = "one entry per item shown to the customer that day, ordered by (ranking_id, position)"
_ACTIONS = (
    "Item ids (config_id for add-to-carts and orders) of the customer's N most recent valid actions of days "
    "strictly before dt and on or after dt - lookback_days (a click's or add-to-cart's dt, an order's order_date), "
    "newest first by event time, ties broken by type (order, add-to-cart, click) then higher item id, "
    "duplicates kept, 0-padded at the end to exactly N."
)
_ACTION_TYPES = "The type of each entry of actions at the same index: 1 click, 2 add-to-cart, 3 order, 0 padding."

HISTORY_COLUMNS = (
    ColumnSpec("dt", "string", f"{_DT} Partition column."),
    ColumnSpec("customer_id", "int", _CUSTOMER_ID),
    ColumnSpec("actions", "array<int>", _ACTIONS),
    ColumnSpec("action_types", "array<tinyint>", _ACTION_TYPES),
)
SHOWN_COLUMNS = (
    ColumnSpec(
        "ranking_ids", "array<string>", f"The ranking_id of the impression row each item was shown in, {_ALIGNED}."
    ),
    ColumnSpec(
        "positions",
        "array<int>",
        f"The 0-based index of each shown item in its impression row's impressions array, {_ALIGNED}.",
    ),
    ColumnSpec("item_ids", "array<int>", f"The id of each shown item (the model's `impressions` input), {_ALIGNED}."),
    ColumnSpec(
        "labels", "array<boolean>", f"Whether each shown item was ordered (its is_order, the label), {_ALIGNED}."
    ),
)

ACTIONS_SILVER = TableSpec(
    "actions_silver",
    "One row per valid action: customer, item, type, time, day.",
    (
        ColumnSpec("customer_id", "int", "The customer who acted (a positive id)."),
        ColumnSpec("item_id", "int", "The item acted on: item_id of a click, config_id of an add-to-cart or order."),
        ColumnSpec("action_type", "tinyint", "1 click, 2 add-to-cart, 3 order."),
        ColumnSpec("occurred_at", "timestamp", "When it happened (click_time of a click): orders the history."),
        ColumnSpec(
            "action_day", "date", "The day it counts for (a click's or add-to-cart's dt, an order's order_date)."
        ),
    ),
)
CUSTOMER_HISTORIES_GOLD = TableSpec(
    "customer_histories_gold",
    "One row per customer-day: actions and action_types, exactly N each, newest first, 0-padded.",
    HISTORY_COLUMNS,
    partition_by=("dt",),
)
TRAINING_EXAMPLES_GOLD = TableSpec(
    "training_examples_gold",
    "One row per customer-day with impressions: the history once, the shown items and labels as aligned arrays.",
    HISTORY_COLUMNS + SHOWN_COLUMNS,
    partition_by=("dt",),
)
ITEM_VOCABULARY_GOLD = TableSpec(
    "item_vocabulary_gold",
    "One row per item id ever seen in actions or shown items: its embedding index, which never changes once given.",
    (
        ColumnSpec(
            "item_id", "int", "An item id (item_id of clicks and shown items, config_id of add-to-carts and orders)."
        ),
        ColumnSpec(
            "item_index",
            "int",
            f"Its embedding index: {PADDING_INDEX} is padding and {UNKNOWN_INDEX} unknown items (never in the table); "
            f"items get {FIRST_ITEM_INDEX}, {FIRST_ITEM_INDEX + 1}, ... in the order they first appear, "
            "the items new in one update by descending count in it, ties by ascending item id. "
            "It never changes within a version.",
        ),
        ColumnSpec(
            "occurrences",
            "bigint",
            "How often the item occurs in actions_silver and among the shown items of impressions_bronze so far.",
        ),
        ColumnSpec(
            "vocabulary_version",
            "int",
            f"The vocabulary's version, the same on every row: {FIRST_VOCABULARY_VERSION} at first, one more at each "
            "explicit re-rank (`carousel rerank-vocabulary`), which alone gives known items new indices.",
        ),
    ),
)
TRAINING_EXAMPLES = TableSpec(
    "training_examples",
    "One row per impression (shown item): the public API's view of training_examples_gold.",
    (
        ColumnSpec("dt", "string", _DT),
        ColumnSpec("ranking_id", "string", "The id of the ranking (one impression row) the item was shown in."),
        ColumnSpec("customer_id", "int", _CUSTOMER_ID),
        ColumnSpec("position", "int", "The 0-based index of the item in its impression row's impressions array."),
        ColumnSpec(
            "item_id",
            "int",
            "The id of the shown item (the model's `impressions` input; map it to an embedding index).",
        ),
        ColumnSpec("is_order", "boolean", "Whether the customer ordered the shown item: the label."),
        ColumnSpec("actions", "array<int>", _ACTIONS),
        ColumnSpec("action_types", "array<tinyint>", _ACTION_TYPES),
    ),
)

KAFKA_SOURCES = ("clicks", "add_to_carts")
"""The raw sources that may come from a Kafka topic instead of a landed table."""
KAFKA_LINEAGE_COLUMNS = (
    ColumnSpec("kafka_topic", "string", "The Kafka topic the message was read from."),
    ColumnSpec("kafka_partition", "int", "The topic's partition the message was read from."),
    ColumnSpec(
        "kafka_offset", "bigint", "The message's offset in its partition: with the topic and partition, its identity."
    ),
    ColumnSpec(
        "kafka_timestamp",
        "timestamp",
        "The message's Kafka timestamp: producer's create time, or the broker's append time if the topic logs that.",
    ),
)
"""Columns that the bronze and quarantine tables of a source read from Kafka add after the contract's."""

GOLD_TABLES = (CUSTOMER_HISTORIES_GOLD, TRAINING_EXAMPLES_GOLD, ITEM_VOCABULARY_GOLD)
DESCRIBED_TABLES = {table.name: table for table in GOLD_TABLES}
"""The tables whose columns the lineage page describes one by one."""

SOURCE_RECONCILIATION = "source_reconciliation"
RECONCILIATION_PROGRESS = "reconciliation_progress"
"""Per raw source (and Kafka partition): what the updates so far reconciled, where the next one starts."""
RUN_METRICS = TableSpec(
    "run_metrics",
    "One row per fact of every local run (carousel pipeline, build, advance): what it read, kept, wrote and took.",
    (
        ColumnSpec("run_id", "string", "The run: its start time and a random suffix, so ids sort by start."),
        ColumnSpec("command", "string", "What ran: pipeline, build or advance."),
        ColumnSpec("status", "string", "succeeded or failed."),
        ColumnSpec("started_at", "timestamp", "When the run started."),
        ColumnSpec("finished_at", "timestamp", "When the run ended, succeeded or failed."),
        ColumnSpec("subject", "string", "What the fact is about: a raw source, a table, a stage or flow, the command."),
        ColumnSpec(
            "metric",
            "string",
            "rows_read, rows_kept, rows_quarantined, rows_processed, rows_written, seconds, delta_version, "
            "source_version or settings_fingerprint (see carousel.run_metrics).",
        ),
        ColumnSpec("value", "double", "The fact's value."),
        ColumnSpec("error", "string", "The first line of a failed run's error; null when it succeeded."),
    ),
)
CUSTOMER_ACTION_STATE = TableSpec(
    "customer_action_state",
    "One row per customer with actions in the lookback: what the gold engine's next day starts from.",
    (
        ColumnSpec("customer_id", "int", "The customer (a positive id)."),
        ColumnSpec(
            "actions",
            "array<struct<occurred_at:timestamp,action_type:tinyint,item_id:int,action_day:date>>",
            "Its actions of days [as_of - lookback_days, as_of) that a history of as_of or later can still show, "
            "newest first; as_of is the day of the newest gold_progress row.",
        ),
    ),
)
GOLD_PROGRESS = TableSpec(
    "gold_progress",
    "One row per finished gold step: what it read and wrote, so the next step reads only what is newer.",
    (
        ColumnSpec("finished_at", "timestamp", "When the step finished."),
        ColumnSpec("actions_version", "bigint", "The version of actions_silver the step read up to."),
        ColumnSpec("impressions_version", "bigint", "The version of impressions_bronze the step read up to."),
        ColumnSpec("state_as_of", "date", "The day customer_action_state serves: it holds the actions before it."),
        ColumnSpec("state_version", "bigint", "The version of customer_action_state the step left."),
        ColumnSpec("vocabulary_version", "bigint", "The Delta version of item_vocabulary_gold the step left."),
        ColumnSpec("newest_day", "string", "The newest impression day seen so far."),
        ColumnSpec("window_start", "string", "The first day of the window the step covered."),
        ColumnSpec("days_built", "array<string>", "The impression days the step built (what the checks look at)."),
    ),
)


def bronze(source: str) -> str:
    """The bronze table of a raw source: its rows that pass every rule, typed to the contract."""
    return f"{source}_bronze"


def quarantine(source: str) -> str:
    """The quarantine table of a raw source: its rows that break a rule, with the rules and the raw row."""
    return f"{source}_quarantine"


def bronze_comment(source: str) -> str:
    """The table comment of `bronze(source)`."""
    return f"Raw {source.replace('_', '-')} that pass carousel.quality.RULES['{source}']."


def quarantine_comment(source: str) -> str:
    """The table comment of `quarantine(source)`."""
    return f"Raw {source.replace('_', '-')} rejected by carousel.quality.RULES['{source}']."


LOADER_COLUMNS = ("actions", "action_types", "item_ids", "labels")
"""The columns of `training_examples_gold` the GPU loader feeds to the model."""
LOADER_ORDER_COLUMN = "customer_id"
"""The loader lays a day's rows out in this column's order (one row per customer-day), not in the read order."""
