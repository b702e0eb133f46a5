"""One local SparkSession for the whole test session: UTC, 4 shuffle partitions, UI off.

The test process itself runs in UTC too: PySpark hands collected timestamps back as naive times
of the process's zone, and only in UTC can they be read back exactly over the whole range (a
naive 0001-01-01 has no local offset Python can compute).
"""

from __future__ import annotations

import os
import time

import pytest

os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture(scope="session")
def spark():
    from carousel.spark import local_spark

    # Spark's 1 GiB default driver ran out of room to broadcast late in a full run (test_incremental).
    return local_spark("carousel-tests", cores=2, shuffle_partitions=4, driver_memory="4g")
