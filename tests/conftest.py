"""One SparkSession for the whole test session: local Spark (UTC, 4 shuffle partitions, UI off) by
default, Databricks Connect with `CAROUSEL_TEST_SPARK=connect` (see `spark_sessions`).

The test process itself runs in UTC too: PySpark hands collected timestamps back as naive times
of the process's zone, and only in UTC can they be read back exactly over the whole range (a
naive 0001-01-01 has no local offset Python can compute).
"""

from __future__ import annotations

import os
import time

import pytest
from spark_sessions import (
    SKIP_REASON,
    check_connect_installed,
    connect_session,
    local_session,
    needs_local_machine,
    session_kind,
)

os.environ["TZ"] = "UTC"
time.tzset()


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a bad `CAROUSEL_TEST_SPARK`, or `connect` without databricks-connect, before any test runs."""
    if session_kind(os.environ) == "connect":
        check_connect_installed()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under Databricks Connect, skip the tests that need the local machine (see `spark_sessions`)."""
    if session_kind(os.environ) != "connect":
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if needs_local_machine(item.fixturenames, (marker.name for marker in item.iter_markers())):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def spark():
    if session_kind(os.environ) == "connect":
        return connect_session(os.environ)
    return local_session()
