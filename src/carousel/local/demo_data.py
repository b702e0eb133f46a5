"""Demo data as landed Delta tables: `carousel generate` writes the raw sources, `--next-day` appends one more day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from carousel.config import parse_day
from carousel.errors import CarouselError
from carousel.progress import stage
from carousel.quality import keep_valid
from carousel.schemas import RAW_DAY_COLUMN
from carousel.storage import read_source, read_table, rows_written_by_last_commit, write_table


def generate(spark: SparkSession, out: str, config) -> dict[str, int]:
    """Write synthetic raw sources as Delta tables under `out`; return rows written per source."""
    from carousel.synthetic import generate_raw

    written = {}
    for source, frame in generate_raw(spark, config).items():
        path = os.path.join(out, source)
        with stage(f"generate {source}", spark=spark) as facts:
            write_table(frame, path, partition_by=RAW_DAY_COLUMN[source])
            written[source] = facts["rows"] = read_table(spark, path).count()
    return written


class NoDataYetError(CarouselError, FileNotFoundError):
    """`generate --next-day` found no raw impressions to follow; the message names the folder."""


def newest_impression_day(spark: SparkSession, impressions: str) -> str | None:
    """The newest `dt` among the valid rows of the raw impressions at `impressions`, or None when it has none."""
    valid = keep_valid(read_source(spark, impressions, "impressions"), "impressions")
    return valid.agg(F.max("dt").alias("newest")).first()["newest"]


def _newest_landed_day(spark: SparkSession, impressions: str) -> str | None:
    """`newest_impression_day` of generated impressions, reading only their newest day partitions, not the history.

    `carousel generate` partitions the impressions by `dt` (`dt=yyyy-MM-dd` folders): the days are
    tried newest first, each partition read alone, until one holds a valid row. Without such
    folders every row is read.
    """
    days = sorted((name[3:] for name in os.listdir(impressions) if _DAY_FOLDER.match(name)), reverse=True)
    if not days:
        return newest_impression_day(spark, impressions)
    raw = read_source(spark, impressions, "impressions")
    for day in days:
        if not keep_valid(raw.where(F.col("dt") == day), "impressions").isEmpty():
            return day
    return None


_DAY_FOLDER = re.compile(r"^dt=\d{4}-\d\d-\d\d$")


def generate_next_day(spark: SparkSession, out: str, config) -> tuple[str, dict[str, int]]:
    """Append one more day of synthetic raw data to the Delta tables under `out`: the day after the newest impressions.

    The day is generated as a one-day period of `config` (its customers, rates and seed), so a
    dirty rate gives that day its dirty rows, and its late events land in the following partition.
    Each day is a draw of its own (`SyntheticConfig.draw` is the day's ordinal): two days differ,
    and the same day from the same seed gives the same rows.

    Returns:
        The new day ('yyyy-MM-dd') and the rows appended per source.

    Raises:
        NoDataYetError: `out` holds no raw impressions with a valid day.
    """
    from carousel.synthetic import generate_raw

    impressions = os.path.join(out, "impressions")
    newest = _newest_landed_day(spark, impressions) if os.path.isdir(impressions) else None
    if newest is None:
        raise NoDataYetError(f"no raw impressions with a valid day under {out}: run `carousel generate` first")
    day = (parse_day(newest) + dt.timedelta(days=1)).isoformat()
    one_day = dataclasses.replace(
        config, window_end=day, window_days=1, history_days=0, draw=dt.date.fromisoformat(day).toordinal()
    )
    appended = {}
    for source, frame in generate_raw(spark, one_day).items():
        path = os.path.join(out, source)
        with stage(f"generate {source} of {day}", spark=spark) as facts:
            write_table(frame, path, mode="append", partition_by=RAW_DAY_COLUMN[source])
            # From the append's own commit: counting the table before and after would read it twice.
            appended[source] = facts["rows"] = rows_written_by_last_commit(spark, path)
    return day, appended
