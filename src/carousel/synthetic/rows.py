"""The demo data's rows, generated lazily with native Spark expressions only (`generate_raw`)."""

from __future__ import annotations

import datetime as dt
import math

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from carousel.schemas import DAY_FORMAT, RAW_SCHEMAS
from carousel.synthetic.config import (
    ACTIVITY_SIGMA,
    DIRTY_KINDS,
    EXTRA_COLUMN,
    SIZES_PER_ITEM,
    SyntheticConfig,
)
from carousel.synthetic.dirty import corrupted, with_contract_types

_MS_PER_DAY = 86_400_000
_MS_PER_HOUR = 3_600_000
_MAX_INGEST_LAG_MS = 15 * 60 * 1000
_ROWS_PER_PARTITION = {
    "clicks": 1_000_000,
    "add_to_carts": 1_000_000,
    "orders": 1_000_000,
    "impressions": 200_000,  # wide rows: ten structs each
}
# Candidate draws per shown slot: enough that Zipf collisions rarely exhaust them.
_CANDIDATES_PER_SLOT = 3
_CLEAN = -1

# Streams keep the draws of different purposes independent although they share row keys.
_S_ACTIVITY_1, _S_ACTIVITY_2 = 1, 2
_S_COUNT = 3
_S_HEAVY = 4
_S_DAY, _S_TIME, _S_LATE, _S_ITEM, _S_SIZE, _S_LAG = 10, 11, 12, 13, 14, 15
_S_DIRTY_COUNT, _S_DIRTY_PICK, _S_DIRTY_KIND = 20, 21, 22
_S_LOGIN, _S_SHOWN, _S_FALLBACK, _S_IS_ORDER = 30, 31, 32, 33
_S_FAVORITE, _S_FAVORITE_PICK, _S_FAVORITE_SLOT, _S_SHOWN_FAVORITE_PICK, _S_SHOWN_FAVORITE_SLOT = 40, 41, 42, 43, 44
_SOURCE_CODE = {"impressions": 0, "clicks": 1, "add_to_carts": 2, "orders": 3}


def generate_raw(spark: SparkSession, config: SyntheticConfig = SyntheticConfig()) -> dict[str, DataFrame]:
    """Return lazily generated raw DataFrames keyed 'impressions', 'clicks', 'add_to_carts', 'orders'.

    Each has the columns of `RAW_SCHEMAS[source]` with exactly those types, plus `EXTRA_COLUMN`.
    With `dirty_rate` > 0, about `dirty_rate` times as many dirty rows as clean ones are appended
    to each source, the kinds of `DIRTY_KINDS` in about equal numbers.

    Args:
        spark: the session the DataFrames belong to; its time zone does not change the rows.
        config: scale, shape and seed.

    Returns:
        The four raw sources; nothing is computed until an action runs on them.
    """
    return {
        "impressions": _impressions(spark, config),
        "clicks": _actions(spark, config, "clicks"),
        "add_to_carts": _actions(spark, config, "add_to_carts"),
        "orders": _actions(spark, config, "orders"),
    }


# ---------------------------------------------------------------------------------------------
# Random draws


def _uniform(*parts: Column | int) -> Column:
    """A double in [0, 1), a pure function of `parts` (ints become literals)."""
    hashed = F.xxhash64(*[part if isinstance(part, Column) else F.lit(part) for part in parts])
    # The top 53 bits fill a double's mantissa exactly, so the result never rounds up to 1.
    return F.shiftrightunsigned(hashed, 11).cast("double") / float(1 << 53)


def _draw(config: SyntheticConfig, *parts: Column | int) -> Column:
    """A uniform draw of the rows (not of the customers' traits): of the seed and, unless 0, of `config.draw`."""
    if config.draw == 0:  # the seed's own draw: the rows a config without `draw` always had
        return _uniform(config.seed, *parts)
    return _uniform(config.seed, config.draw, *parts)


def _standard_normal(u1: Column, u2: Column) -> Column:
    """A N(0, 1) draw from two independent uniforms (Box-Muller)."""
    # 1 - u1 lies in (0, 1], so the log is finite.
    return F.sqrt(F.lit(-2.0) * F.log(F.lit(1.0) - u1)) * F.cos(F.lit(2.0 * math.pi) * u2)


def _zipf_item(u: Column, items: int, exponent: float = 1.0) -> Column:
    """An item id in 1..items with P(k) roughly proportional to k ** -exponent.

    The floor of a continuous power law on [1, items + 1) drawn by inverting its CDF.
    """
    if exponent == 1.0:
        raw = F.floor(F.exp(u * F.lit(math.log(items + 1.0))))
    else:
        # F(x) = (1 - x^(1-s)) / (1 - M^(1-s)) on [1, M), so x = (1 - u (1 - M^(1-s)))^(1 / (1-s)).
        one_minus_s = 1.0 - exponent
        span = 1.0 - (items + 1.0) ** one_minus_s
        raw = F.floor(F.pow(F.lit(1.0) - u * F.lit(span), F.lit(1.0 / one_minus_s)))
    return F.least(F.greatest(raw, F.lit(1)), F.lit(items)).cast("int")


def _favorite_at(config: SyntheticConfig, customer: Column, slot: Column) -> Column:
    """The customer's favorite number `slot` (0..favorite_items-1)."""
    # Always hashed as an int: the hash of a long differs from the hash of the same int.
    return _zipf_item(
        _uniform(config.seed, _S_FAVORITE, customer, slot.cast("int")), config.items, config.zipf_exponent
    )


def _favorite_item(config: SyntheticConfig, customer: Column, u: Column) -> Column:
    """One of the customer's `favorite_items` favorites, picked by the uniform draw u."""
    return _favorite_at(config, customer, F.floor(u * F.lit(config.favorite_items)))


def _favorites(config: SyntheticConfig, customer: Column) -> Column:
    """The customer's favorite items, as an array."""
    return F.transform(
        F.sequence(F.lit(0), F.lit(config.favorite_items - 1)), lambda slot: _favorite_at(config, customer, slot)
    )


def _stochastic_round(expected: Column, u: Column) -> Column:
    """floor(expected + u): an int whose mean is `expected`, so totals stay unbiased."""
    return F.floor(expected + u).cast("int")


def _one_to(n: Column) -> Column:
    """The array 1..n, empty when n < 1 (sequence(1, 0) would count down)."""
    return F.when(n >= 1, F.sequence(F.lit(1), n)).otherwise(F.array().cast("array<int>"))


def _partitions(expected_rows: float, source: str, customers: int) -> int:
    # Only the file count depends on this: every draw is a hash, not a per-partition stream.
    return max(1, min(customers, math.ceil(expected_rows / _ROWS_PER_PARTITION[source])))


# ---------------------------------------------------------------------------------------------
# Customers


def _customers(spark: SparkSession, config: SyntheticConfig, partitions: int) -> DataFrame:
    """customer_id and `activity_z`, the standard normal behind the customer's activity weight."""
    customer = F.col("id")
    z = _standard_normal(_uniform(config.seed, _S_ACTIVITY_1, customer), _uniform(config.seed, _S_ACTIVITY_2, customer))
    return spark.range(1, config.customers + 1, numPartitions=partitions).select(
        customer.cast("int").alias("customer_id"), z.alias("activity_z")
    )


def _lognormal_mean_one(z: Column, sigma: float) -> Column:
    """exp(sigma z - sigma^2 / 2): lognormal with mean 1, so scaling by it keeps totals."""
    return F.exp(F.lit(sigma) * z - F.lit(sigma * sigma / 2.0))


def _is_heavy(config: SyntheticConfig, customer: Column) -> Column:
    """Whether the customer is one of the `heavy_customer_share` heavy ones (a draw of its own stream)."""
    return _uniform(config.seed, _S_HEAVY, customer) < F.lit(config.heavy_customer_share)


def _activity_weight(config: SyntheticConfig, customer: Column) -> Column:
    """The customer's activity weight: lognormal with mean 1, or `heavy_weight` for a heavy customer."""
    weight = _lognormal_mean_one(F.col("activity_z"), ACTIVITY_SIGMA)
    if config.heavy_customer_share == 0:
        return weight
    return F.when(_is_heavy(config, customer), F.lit(config.heavy_weight)).otherwise(weight)


def _dirty_kind(config: SyntheticConfig, source: str, *keys: Column) -> Column:
    """Index into DIRTY_KINDS[source], spread evenly over the kinds."""
    kinds = len(DIRTY_KINDS[source])
    return F.floor(_draw(config, _S_DIRTY_KIND, _SOURCE_CODE[source], *keys) * kinds).cast("int")


# ---------------------------------------------------------------------------------------------
# Actions: clicks, add-to-carts, orders


def _action_keys(spark: SparkSession, config: SyntheticConfig, source: str) -> DataFrame:
    """(customer_id, k, dirty_kind): the k-th action of a customer; dirty rows repeat a clean k."""
    partitions = _partitions(config.expected_actions(source), source, config.customers)
    customers = _customers(spark, config, partitions)
    code = _SOURCE_CODE[source]
    customer = F.col("customer_id")
    per_customer = config.typical_actions(source)
    weight = _activity_weight(config, customer)
    count = _stochastic_round(F.lit(per_customer) * weight, _draw(config, _S_COUNT, code, customer))
    counted = customers.select(customer, count.alias("n"))
    clean = counted.select(customer, F.explode(_one_to(F.col("n"))).alias("k"), F.lit(_CLEAN).alias("dirty_kind"))
    if config.dirty_rate == 0:
        return clean
    # A separate small explode per customer picks the rows to corrupt, so the big clean branch
    # pays nothing for dirtiness and stays identical whatever dirty_rate is.
    dirty_count = _stochastic_round(
        F.col("n") * F.lit(config.dirty_rate), _draw(config, _S_DIRTY_COUNT, code, customer)
    )
    j = F.col("j")
    picked = F.floor(_draw(config, _S_DIRTY_PICK, code, customer, j) * F.col("n")).cast("int") + 1
    dirty = (
        counted.select(customer, "n", F.explode(_one_to(dirty_count)).alias("j"))
        .select(customer, picked.alias("k"), _dirty_kind(config, source, customer, j).alias("dirty_kind"))
        # Dirty rows are few; spread over as many partitions as the clean ones they would make
        # a crowd of tiny files.
        .coalesce(max(1, math.ceil(partitions * config.dirty_rate)))
    )
    return clean.unionByName(dirty)


def _action_draws(config: SyntheticConfig, source: str) -> list[Column]:
    """The per-action random draws, as columns named for the later steps."""
    code, customer, k = _SOURCE_CODE[source], F.col("customer_id"), F.col("k")

    def draw(stream: int) -> Column:
        return _draw(config, stream, code, customer, k)

    late = draw(_S_LATE) < F.lit(config.late_event_rate)
    # A late event is one that happened just before midnight and landed in the next partition.
    ms_in_day = F.when(late, F.lit(23 * _MS_PER_HOUR) + F.floor(draw(_S_TIME) * _MS_PER_HOUR)).otherwise(
        F.floor(draw(_S_TIME) * _MS_PER_DAY)
    )
    return [
        F.floor(draw(_S_DAY) * config.action_days).cast("int").alias("day"),
        late.alias("late"),
        ms_in_day.cast("long").alias("ms_in_day"),
        F.when(
            draw(_S_FAVORITE_PICK) < F.lit(config.favorite_action_rate),
            _favorite_item(config, customer, draw(_S_FAVORITE_SLOT)),
        )
        .otherwise(_zipf_item(draw(_S_ITEM), config.items, config.zipf_exponent))
        .alias("item"),
        (F.floor(draw(_S_SIZE) * SIZES_PER_ITEM) + 1).cast("int").alias("size"),
        F.floor(draw(_S_LAG) * _MAX_INGEST_LAG_MS).cast("long").alias("lag_ms"),
    ]


def _action_columns(config: SyntheticConfig, source: str) -> list[Column]:
    """The contract columns plus EXTRA_COLUMN, from the draws of `_action_draws`."""
    start_ms = (config.history_start - dt.date(1970, 1, 1)).days * _MS_PER_DAY
    day_start_ms = F.lit(start_ms) + F.col("day").cast("long") * _MS_PER_DAY
    event_ms = day_start_ms + F.col("ms_in_day")
    # Late events were ingested after midnight, in the next day's landing batch.
    ingested_ms = F.when(F.col("late"), day_start_ms + _MS_PER_DAY).otherwise(event_ms) + F.col("lag_ms")
    # DATE arithmetic and formatting never consult the session time zone.
    partition_day = F.date_add(F.lit(config.history_start), F.col("day") + F.col("late").cast("int"))
    event_time = F.timestamp_millis(event_ms)
    item = F.col("item")
    if source == "clicks":
        values = {"dt": F.date_format(partition_day, DAY_FORMAT), "item_id": item, "click_time": event_time}
    else:
        values = {
            "config_id": item,
            "simple_id": item * 100 + F.col("size"),
            "occurred_at": event_time,
        }
        if source == "orders":
            values["order_date"] = partition_day
        else:
            values["dt"] = F.date_format(partition_day, DAY_FORMAT)
    values["customer_id"] = F.col("customer_id")
    values[EXTRA_COLUMN] = F.timestamp_millis(ingested_ms)
    return [values[name].alias(name) for name in [*RAW_SCHEMAS[source].fieldNames(), EXTRA_COLUMN]] + [
        F.col("dirty_kind")
    ]


def _actions(spark: SparkSession, config: SyntheticConfig, source: str) -> DataFrame:
    keys = _action_keys(spark, config, source)
    rows = keys.select("customer_id", "k", "dirty_kind", *_action_draws(config, source)).select(
        *_action_columns(config, source)
    )
    if config.dirty_rate > 0:
        rows = corrupted(rows, source)
    return with_contract_types(rows, source)


# ---------------------------------------------------------------------------------------------
# Impressions


def _login_probability(config: SyntheticConfig, z: Column) -> Column:
    """P(a customer has an impression row on a day): rises with activity, averages login_rate.

    The tilt is weight ** a scaled to mean 1 over the lognormal customers (a = login_activity_exponent),
    so a = 1 makes the probability login_rate x weight; heavy customers get their weight's tilt.
    """
    a = config.login_activity_exponent
    # E[exp(a sigma z - (a sigma)^2/2)] = 1 for z ~ N(0, 1), so the mean stays login_rate up to the cap.
    tilt = _lognormal_mean_one(z, a * ACTIVITY_SIGMA)
    if config.heavy_customer_share > 0:
        # weight ** a = exp(a sigma z - a sigma^2 / 2), times exp(a (1 - a) sigma^2 / 2) is the tilt above.
        heavy_tilt = config.heavy_weight**a * math.exp(a * (1.0 - a) * ACTIVITY_SIGMA**2 / 2.0)
        tilt = F.when(_is_heavy(config, F.col("customer_id")), F.lit(heavy_tilt)).otherwise(tilt)
    return F.least(F.lit(config.login_rate) * tilt, F.lit(config.login_probability_cap))


def _impression_keys(spark: SparkSession, config: SyntheticConfig) -> DataFrame:
    """(customer_id, day, dirty_kind): day is the window day index of a customer's login."""
    expected = config.customers * config.window_days * config.login_rate
    customers = _customers(spark, config, _partitions(expected, "impressions", config.customers))
    customer, day = F.col("customer_id"), F.col("day")
    logged_in = _draw(config, _S_LOGIN, customer, day) < _login_probability(config, F.col("activity_z"))
    clean = (
        customers.select(customer, "activity_z", F.explode(_window_day_indexes(config)).alias("day"))
        .where(logged_in)
        .select(customer, day, F.lit(_CLEAN).alias("dirty_kind"))
    )
    if config.dirty_rate == 0:
        return clean
    code = _SOURCE_CODE["impressions"]
    # Impressions are small (customers x window days x login rate), so re-deriving them for the
    # dirty branch costs little.
    picked = _draw(config, _S_DIRTY_PICK, code, customer, day) < F.lit(config.dirty_rate)
    dirty = clean.where(picked).select(
        customer, day, _dirty_kind(config, "impressions", customer, day).alias("dirty_kind")
    )
    return clean.unionByName(dirty)


def _window_day_indexes(config: SyntheticConfig) -> Column:
    """The array 0..window_days-1; day index d is window_start + d."""
    return F.sequence(F.lit(0), F.lit(config.window_days - 1))


def _shown_items(config: SyntheticConfig) -> Column:
    """items_per_impression distinct Zipf-popular item ids for the row's (customer_id, day)."""
    n, items = config.items_per_impression, config.items
    customer, day = F.col("customer_id"), F.col("day")
    candidates = F.transform(
        F.sequence(F.lit(0), F.lit(n * _CANDIDATES_PER_SLOT - 1)),
        lambda i: F.when(
            _draw(config, _S_SHOWN_FAVORITE_PICK, customer, day, i) < F.lit(config.favorite_shown_rate),
            _favorite_item(config, customer, _draw(config, _S_SHOWN_FAVORITE_SLOT, customer, day, i)),
        ).otherwise(_zipf_item(_draw(config, _S_SHOWN, customer, day, i), items, config.zipf_exponent)),
    )
    # n consecutive ids (mod items) are always distinct, so the list is never short even
    # when the Zipf draws collide a lot (tiny catalogues).
    start = F.floor(_draw(config, _S_FALLBACK, customer, day) * items)
    fallback = F.transform(
        F.sequence(F.lit(0), F.lit(n - 1)), lambda j: (F.pmod(start + j, F.lit(items)) + 1).cast("int")
    )
    return F.slice(F.array_distinct(F.concat(candidates, fallback)), 1, n)


def _impression_columns(config: SyntheticConfig) -> list[Column]:
    customer, day = F.col("customer_id"), F.col("day")
    seed = config.seed
    dt_text = F.date_format(F.date_add(F.lit(config.window_start), day), DAY_FORMAT)
    # The base rate is lowered so that, with about favorite_shown_rate of the shown items being
    # favorites ordered favorite_order_lift times as often, the mean stays about order_rate.
    base_rate = config.order_rate / (1 + (config.favorite_order_lift - 1) * config.favorite_shown_rate)
    favorites = _favorites(config, customer)
    impressions = F.transform(
        _shown_items(config),
        lambda item, position: F.struct(
            item.alias("item_id"),
            (
                _draw(config, _S_IS_ORDER, customer, day, position)
                < F.when(
                    F.array_contains(favorites, item), F.lit(min(1.0, base_rate * config.favorite_order_lift))
                ).otherwise(F.lit(base_rate))
            ).alias("is_order"),
        ),
    )
    # A corrupted copy is a different ranking; only clean rows and exact duplicates share an id.
    is_exact_copy = F.col("dirty_kind") == DIRTY_KINDS["impressions"].index("duplicate")
    variant = F.when(is_exact_copy, F.lit(_CLEAN)).otherwise(F.col("dirty_kind"))
    draw = [] if config.draw == 0 else [F.lit(str(config.draw))]  # another draw, other rankings
    ranking_key = F.concat_ws("|", F.lit(str(seed)), *draw, dt_text, customer.cast("string"), variant.cast("string"))
    ranking_id = F.substring(F.sha2(ranking_key, 256), 1, 32)
    start_ms = (config.window_start - dt.date(1970, 1, 1)).days * _MS_PER_DAY
    # The day's impression log lands in the early hours of the next day.
    ingested_ms = (
        F.lit(start_ms + _MS_PER_DAY + 2 * _MS_PER_HOUR)
        + day.cast("long") * _MS_PER_DAY
        + F.floor(_draw(config, _S_LAG, customer, day) * _MS_PER_HOUR)
    )
    return [
        dt_text.alias("dt"),
        ranking_id.alias("ranking_id"),
        customer.alias("customer_id"),
        impressions.alias("impressions"),
        F.timestamp_millis(ingested_ms).alias(EXTRA_COLUMN),
        F.col("dirty_kind"),
    ]


def _impressions(spark: SparkSession, config: SyntheticConfig) -> DataFrame:
    rows = _impression_keys(spark, config).select(*_impression_columns(config))
    if config.dirty_rate > 0:
        rows = corrupted(rows, "impressions")
    return with_contract_types(rows, "impressions")
