"""What every benchmark shares: the child process's environment, the data's folders, the records and their formatting.

Each measured case runs in a process of its own (`child_env`), appends its record as one JSON line
(`append_records`), and the reports format the records with the helpers below.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
GIB = 1024 * MIB


def child_env() -> dict[str, str]:
    """The environment of a measured child process: this checkout's package first, the JVM's zone UTC."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    env["TZ"] = "UTC"  # the JVM's default zone, which Spark's default session time zone follows
    return env


def raw_dir(data_dir: Path, scale: str) -> Path:
    """Where a scale's raw data lives under the benchmark's data folder."""
    return data_dir / scale / "raw"


def window_start(window_end: str, impression_days: int | None) -> str | None:
    """The first of the last `impression_days` days ending at `window_end` ('yyyy-MM-dd'); None = every day."""
    if not impression_days:
        return None
    last = dt.date.fromisoformat(window_end)
    return (last - dt.timedelta(days=impression_days - 1)).isoformat()


def append_records(results: Path, records: Iterable[dict], **stamp: object) -> None:
    """Append each record (with `stamp`'s fields) to the JSON-lines file `results`."""
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as file:
        for record in records:
            file.write(json.dumps({**record, **stamp}) + "\n")


def seconds_of(record: dict | None) -> float | None:
    """A record's seconds; None when it did not run or has none."""
    return None if record is None else record.get("seconds")


def fmt_seconds(record: dict | None) -> str:
    """A record's seconds as a table shows them, or why there are none."""
    if record is None:
        return "not run"
    if "timed_out_after_s" in record:
        return f"> {record['timed_out_after_s']} (stopped)"
    if "failed_exit_code" in record:
        return f"failed (exit {record['failed_exit_code']})"
    return f"{record['seconds']:.1f}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """`numerator / denominator`, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def ratio_text(numerator: float | None, denominator: float | None) -> str:
    """`ratio` as a table shows it: `1.23x`, or `n/a`."""
    return fmt_ratio(ratio(numerator, denominator))


def mib(value: int | None) -> str:
    return "" if value is None else f"{value / MIB:,.0f}"


def gib(value: int | None) -> str:
    return "" if value is None else f"{value / GIB:.2f}"
