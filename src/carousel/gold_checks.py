"""Invariants of the gold tables, checked after every pipeline update.

Every check returns the rows that break an invariant, as `dt`, `customer_id`, `invariant`,
so an empty result means the table is sound and a non-empty one says where to look.
`check_gold` turns non-empty results into one `GoldValidationError`; the daily job's
`carousel-validate` (`carousel.tasks.validation`) reads the tables and runs it.

Leakage ("no action from the impression's day or later") cannot be read off the gold arrays:
they hold item ids, not days. What the check can do is bound it: a history may not hold more
real actions than actions_silver has for that customer on days before dt (and, when
lookback_days is given, on or after dt - lookback_days). That catches a history that took in
same-day or later actions, or reached too far back, whenever doing so made it longer than the
customer's earlier actions allow. It cannot see a leak that only changed which actions fill an
already full history of N; the unit tests of `carousel.history` guard that case.

All checks are native Spark expressions (higher-order functions, one aggregation or window
per check), so they scale with the tables. Nothing is collected but counts per invariant and
five example keys for each broken one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from carousel import contract
from carousel.contract import ORDER, PADDING
from carousel.errors import CarouselError
from carousel.schemas import DAY_FORMAT

CUSTOMER_HISTORIES_GOLD = contract.CUSTOMER_HISTORIES_GOLD.name
TRAINING_EXAMPLES_GOLD = contract.TRAINING_EXAMPLES_GOLD.name
ACTIONS_SILVER = contract.ACTIONS_SILVER.name
GOLD_PROGRESS = contract.GOLD_PROGRESS.name
SHOWN_COLUMNS = tuple(column.name for column in contract.SHOWN_COLUMNS)

EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    table.name: table.types for table in (contract.CUSTOMER_HISTORIES_GOLD, contract.TRAINING_EXAMPLES_GOLD)
}
# Of actions_silver, only the columns the leakage bound reads.
EXPECTED_COLUMNS[ACTIONS_SILVER] = {name: contract.ACTIONS_SILVER.types[name] for name in ("customer_id", "action_day")}
"""Per table, column -> Spark type name (`carousel.contract`); nullability not compared, extra columns allowed."""

REQUIRED_TABLES = (CUSTOMER_HISTORIES_GOLD, TRAINING_EXAMPLES_GOLD)
OPTIONAL_TABLES = (ACTIONS_SILVER,)

INVARIANTS: dict[str, str] = {
    "table_exists": "the table can be read",
    "schema": "the columns and their types are those the loader expects",
    "key_valid": "dt is a 'yyyy-MM-dd' day and customer_id is not null",
    "one_row_per_customer_day": "no two rows share (dt, customer_id)",
    "actions_length": "actions has exactly N entries",
    "action_types_length": "action_types has exactly N entries",
    "action_type_known": "every type is 0 (padding), 1 (click), 2 (add-to-cart) or 3 (order)",
    "padding_at_end": "no real action follows a padding entry",
    "padding_item_is_zero": "the item id is 0 wherever the type is 0",
    "real_action_item_positive": "the item id is > 0 wherever the type is > 0",
    "shown_arrays_aligned": "ranking_ids, positions, item_ids and labels have the same length",
    "shown_items_present": "the row shows at least one item",
    "no_more_actions_than_before_dt": (
        "no more real actions than actions_silver holds for the customer before dt, within the lookback"
    ),
}
"""Invariant name -> what holds for a sound row; the order in which failures are reported."""

EXAMPLES_PER_INVARIANT = 5


@dataclass(frozen=True)
class InvariantFailure:
    """One invariant broken in one table: how often, and a few (dt, customer_id) keys where."""

    table: str
    invariant: str
    count: int
    examples: tuple[tuple[str | None, int | None], ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        if self.detail:
            return f"{self.table}: '{self.invariant}' broken: {self.detail}"
        keys = ", ".join(f"({dt}, {customer_id})" for dt, customer_id in self.examples)
        return (
            f"{self.table}: {self.count} row(s) break '{self.invariant}' ({INVARIANTS[self.invariant]}); "
            f"e.g. (dt, customer_id) = {keys}"
        )


class GoldValidationError(CarouselError, ValueError):
    """The gold tables break at least one invariant; `failures` lists each one."""

    def __init__(self, failures: Sequence[InvariantFailure]) -> None:
        self.failures = tuple(failures)
        super().__init__("gold tables break their invariants:\n" + "\n".join(f"  - {f}" for f in self.failures))


def schema_problems(frame: DataFrame, expected: Mapping[str, str]) -> list[str]:
    """Return one message per expected column that is missing or has another type; no Spark job runs."""
    actual = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
    problems = []
    for column, type_name in expected.items():
        if column not in actual:
            problems.append(f"column '{column}' is missing")
        elif actual[column] != type_name:
            problems.append(f"column '{column}' is {actual[column]}, expected {type_name}")
    return problems


def _sound_or_null_array(rule: Column) -> Column:
    # A NULL array is reported once, by the length rules, not again by every element rule.
    return F.coalesce(rule, F.lit(True))


def _at_shared_indexes(condition) -> Column:
    """TRUE when `condition(item, type)` holds at every index that actions and action_types share."""
    shared = F.least(F.size("actions"), F.size("action_types"))
    # Slicing to the shared length first keeps a length mismatch (its own rule) from posing
    # as NULL entries here.
    holds = F.zip_with(F.slice("actions", 1, shared), F.slice("action_types", 1, shared), condition)
    return _sound_or_null_array(F.forall(holds, lambda ok: ok))


def _padding_at_end() -> Column:
    types = F.col("action_types")
    first_padding = F.array_position(types, PADDING).cast("int")
    # greatest(): slice() rejects a start of 0 even in the branch that when() does not take.
    tail = F.slice(types, F.greatest(first_padding, F.lit(1)), F.size(types))
    all_padding = F.forall(tail, lambda t: F.coalesce(t == PADDING, F.lit(True)))
    return _sound_or_null_array(F.when(first_padding == 0, F.lit(True)).otherwise(all_padding))


def history_rules(history_length: int) -> dict[str, Column]:
    """Invariant name -> predicate that is TRUE for a sound history row (NULL counts as broken)."""
    day = F.try_to_date("dt", DAY_FORMAT)
    return {
        # The round trip rejects days Spark parses leniently ('2025-3-1').
        "key_valid": (F.date_format(day, DAY_FORMAT) == F.col("dt")) & F.col("customer_id").isNotNull(),
        "actions_length": F.size("actions") == history_length,
        "action_types_length": F.size("action_types") == history_length,
        "action_type_known": _sound_or_null_array(
            F.forall("action_types", lambda t: F.coalesce(t.between(PADDING, ORDER), F.lit(False)))
        ),
        "padding_at_end": _padding_at_end(),
        "padding_item_is_zero": _at_shared_indexes(
            lambda item, t: F.when(t == PADDING, F.coalesce(item == 0, F.lit(False))).otherwise(F.lit(True))
        ),
        "real_action_item_positive": _at_shared_indexes(
            lambda item, t: F.when(t > PADDING, F.coalesce(item > 0, F.lit(False))).otherwise(F.lit(True))
        ),
    }


def shown_items_rules() -> dict[str, Column]:
    """Invariant name -> predicate that is TRUE for a sound training_examples_gold row's shown arrays."""
    sizes = [F.size(column) for column in SHOWN_COLUMNS]
    return {
        "shown_arrays_aligned": reduce(lambda left, right: left & right, (size == sizes[0] for size in sizes[1:])),
        "shown_items_present": sizes[0] > 0,
    }


def _name_if_broken(name: str, rule: Column) -> Column:
    # NULL reads as broken, so a rule that cannot be evaluated on a row never passes it silently.
    return F.when(F.coalesce(rule, F.lit(False)), F.lit(None)).otherwise(F.lit(name))


def rule_violations(frame: DataFrame, rules: Mapping[str, Column]) -> DataFrame:
    """Return one row per (row of `frame`, rule it breaks): `dt`, `customer_id`, `invariant`."""
    broken = F.array_compact(F.array(*(_name_if_broken(name, rule) for name, rule in rules.items())))
    return frame.select("dt", "customer_id", F.explode(broken).alias("invariant"))


def duplicate_key_violations(frame: DataFrame) -> DataFrame:
    """Return one row per (dt, customer_id) held by more than one row of `frame`."""
    return (
        frame.groupBy("dt", "customer_id")
        .count()
        .where(F.col("count") > 1)
        .select("dt", "customer_id", F.lit("one_row_per_customer_day").alias("invariant"))
    )


def leakage_violations(histories: DataFrame, actions: DataFrame, lookback_days: int | None = None) -> DataFrame:
    """Return one row per history with more real actions than the customer had before its dt.

    Args:
        histories: `dt`, `customer_id`, `action_types` (customer_histories_gold).
        actions: `customer_id`, `action_day` date (actions_silver).
        lookback_days: when given, only actions of days [dt - lookback_days, dt) are available.

    Returns:
        `dt`, `customer_id`, `invariant` ('no_more_actions_than_before_dt'). Rows whose key is
        invalid are left to the 'key_valid' rule.
    """
    day = F.unix_date(F.try_to_date("dt", DAY_FORMAT))
    wanted = histories.select(
        "dt",
        "customer_id",
        day.alias("day"),
        F.size(F.filter("action_types", lambda t: t > PADDING)).alias("real_actions"),
        F.lit(0).cast("long").alias("actions_that_day"),
    ).where(F.col("day").isNotNull() & F.col("customer_id").isNotNull())
    # Counting per customer-day first keeps the window below as small as the gold table, not
    # as large as the actions.
    daily = (
        actions.where(F.col("action_day").isNotNull())
        .groupBy("customer_id", F.unix_date("action_day").alias("day"))
        .agg(F.count(F.lit(1)).alias("actions_that_day"))
        .select(
            F.lit(None).cast("string").alias("dt"),
            "customer_id",
            "day",
            F.lit(None).cast("int").alias("real_actions"),
            "actions_that_day",
        )
    )
    start = Window.unboundedPreceding if lookback_days is None else -lookback_days
    before_dt = Window.partitionBy("customer_id").orderBy("day").rangeBetween(start, -1)
    available = F.coalesce(F.sum("actions_that_day").over(before_dt), F.lit(0))
    return (
        wanted.unionByName(daily)
        .select("dt", "customer_id", "real_actions", available.alias("available"))
        .where(F.col("dt").isNotNull() & (F.col("real_actions") > F.col("available")))
        .select("dt", "customer_id", F.lit("no_more_actions_than_before_dt").alias("invariant"))
    )


def gold_violations(
    histories: DataFrame,
    history_length: int,
    actions: DataFrame | None = None,
    lookback_days: int | None = None,
) -> DataFrame:
    """Return one row per broken invariant of customer_histories_gold: `dt`, `customer_id`, `invariant`.

    Args:
        histories: customer_histories_gold, one row per (dt, customer_id).
        history_length: N, the length every array must have.
        actions: actions_silver; when given, histories are also bounded by the actions before dt.
        lookback_days: narrows that bound to the lookback window (see `leakage_violations`).
    """
    violations = rule_violations(histories, history_rules(history_length)).unionByName(
        duplicate_key_violations(histories)
    )
    if actions is not None:
        violations = violations.unionByName(leakage_violations(histories, actions, lookback_days))
    return violations


def training_examples_violations(training_examples: DataFrame, history_length: int) -> DataFrame:
    """Return one row per broken invariant of training_examples_gold: `dt`, `customer_id`, `invariant`."""
    rules = {**history_rules(history_length), **shown_items_rules()}
    return rule_violations(training_examples, rules).unionByName(duplicate_key_violations(training_examples))


def summarize(table: str, violations: DataFrame) -> list[InvariantFailure]:
    """Return one failure per broken invariant, in `INVARIANTS` order, with up to five example keys."""
    counts = {row["invariant"]: row["count"] for row in violations.groupBy("invariant").count().collect()}
    failures = []
    for invariant in sorted(counts, key=list(INVARIANTS).index):
        examples = (
            violations.where(F.col("invariant") == invariant)
            .select("dt", "customer_id")
            .orderBy("dt", "customer_id")
            .limit(EXAMPLES_PER_INVARIANT)
            .collect()
        )
        keys = tuple((row["dt"], row["customer_id"]) for row in examples)
        failures.append(InvariantFailure(table, invariant, counts[invariant], keys))
    return failures


def check_schemas(tables: Mapping[str, DataFrame]) -> None:
    """Raise `GoldValidationError` naming every missing or mistyped column of `tables`."""
    schema_failures = [
        InvariantFailure(name, "schema", len(problems), detail="; ".join(problems))
        for name, frame in tables.items()
        if (problems := schema_problems(frame, EXPECTED_COLUMNS[name]))
    ]
    if schema_failures:
        raise GoldValidationError(schema_failures)


def check_gold(tables: Mapping[str, DataFrame], history_length: int, lookback_days: int | None = None) -> None:
    """Raise `GoldValidationError` naming every broken invariant of the given gold tables.

    Args:
        tables: table name -> DataFrame. customer_histories_gold and training_examples_gold
            are required; with actions_silver the leakage bound is checked too.
        history_length: N, the length every history array must have.
        lookback_days: narrows the leakage bound to the lookback window.
    """
    unknown = set(tables) - set(REQUIRED_TABLES) - set(OPTIONAL_TABLES)
    missing = set(REQUIRED_TABLES) - set(tables)
    if unknown or missing:
        raise ValueError(f"check_gold needs {REQUIRED_TABLES}, may take {OPTIONAL_TABLES}; got {sorted(tables)}")

    # The row checks would only fail on the same missing or mistyped columns.
    check_schemas(tables)

    histories = gold_violations(
        tables[CUSTOMER_HISTORIES_GOLD], history_length, tables.get(ACTIONS_SILVER), lookback_days
    )
    examples = training_examples_violations(tables[TRAINING_EXAMPLES_GOLD], history_length)
    failures = summarize(CUSTOMER_HISTORIES_GOLD, histories) + summarize(TRAINING_EXAMPLES_GOLD, examples)
    if failures:
        raise GoldValidationError(failures)


def only_days(tables: Mapping[str, DataFrame], days: Sequence[str], lookback_days: int | None) -> dict[str, DataFrame]:
    """The rows of `tables` the checks of impression days `days` read: their gold rows and their customers' actions.

    Its cost grows with the customers of those days, not with the history: actions_silver is cut
    to those customers and to the days their histories can reach.
    """
    kept = {name: frame.where(F.col("dt").isin(list(days))) for name, frame in tables.items() if name != ACTIONS_SILVER}
    if ACTIONS_SILVER in tables and days:
        customers = kept[CUSTOMER_HISTORIES_GOLD].select("customer_id").distinct()
        first = F.to_date(F.lit(min(days)))
        earliest = F.date_sub(first, lookback_days) if lookback_days is not None else None
        actions = tables[ACTIONS_SILVER].where(F.col("action_day") < F.to_date(F.lit(max(days))))
        actions = actions.where(F.col("action_day") >= earliest) if earliest is not None else actions
        kept[ACTIONS_SILVER] = actions.join(customers, "customer_id", "left_semi")
    elif ACTIONS_SILVER in tables:
        kept[ACTIONS_SILVER] = tables[ACTIONS_SILVER].limit(0)
    return kept
