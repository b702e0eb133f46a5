"""One local SparkSession for the whole test session: UTC, 4 shuffle partitions, UI off."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    from carousel.spark import local_spark

    return local_spark("carousel-tests", cores=2, shuffle_partitions=4)
