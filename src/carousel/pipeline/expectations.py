"""Expectation decorators: the runtime's own on Databricks, a small local stand-in elsewhere.

Open-source Spark Declarative Pipelines has no expectations API. Locally, the decorators wrap
the dataset function: `expect*` keeps every row, `expect*_or_drop` keeps the rows whose
predicates all hold, `expect*_or_fail` fails the update at the first row that breaks one. Every
predicate should be NULL-safe (see `carousel.quality.null_safe_rules`), so a row is either kept
or dropped, never neither.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

DatasetFunction = Callable[..., DataFrame]


def _native():
    try:
        from pyspark import pipelines as dp
    except ImportError:  # pragma: no cover - pyspark without the pipelines module
        return None
    return dp if hasattr(dp, "expect_all") else None


def _all_hold(expectations: dict[str, str]) -> Column:
    return reduce(lambda left, right: left & right, (F.expr(p) for p in expectations.values()))


def _failing(expectations: dict[str, str]) -> Column:
    """Raise, naming the first broken expectation, for a row that breaks one; else TRUE."""
    check = F.lit(True)
    for name, predicate in reversed(list(expectations.items())):
        check = F.when(F.expr(predicate), check).otherwise(
            F.raise_error(F.lit(f"expectation '{name}' failed: {predicate}"))
        )
    return check


def _wrapping(transform: Callable[[DataFrame], DataFrame]) -> Callable[[DatasetFunction], DatasetFunction]:
    def decorator(function: DatasetFunction) -> DatasetFunction:
        @functools.wraps(function)
        def wrapped(*args, **kwargs) -> DataFrame:
            return transform(function(*args, **kwargs))

        return wrapped

    return decorator


def expect_all(expectations: dict[str, str]) -> Callable[[DatasetFunction], DatasetFunction]:
    """Record expectations and keep every row."""
    native = _native()
    return native.expect_all(expectations) if native else _wrapping(lambda df: df)


def expect_all_or_drop(expectations: dict[str, str]) -> Callable[[DatasetFunction], DatasetFunction]:
    """Keep only the rows for which every expectation holds."""
    native = _native()
    return (
        native.expect_all_or_drop(expectations) if native else _wrapping(lambda df: df.where(_all_hold(expectations)))
    )


def expect_all_or_fail(expectations: dict[str, str]) -> Callable[[DatasetFunction], DatasetFunction]:
    """Fail the update when any row breaks an expectation."""
    native = _native()
    return native.expect_all_or_fail(expectations) if native else _wrapping(lambda df: df.where(_failing(expectations)))


def expect(name: str, predicate: str) -> Callable[[DatasetFunction], DatasetFunction]:
    """Single-expectation form of `expect_all`."""
    return expect_all({name: predicate})


def expect_or_drop(name: str, predicate: str) -> Callable[[DatasetFunction], DatasetFunction]:
    """Single-expectation form of `expect_all_or_drop`."""
    return expect_all_or_drop({name: predicate})
