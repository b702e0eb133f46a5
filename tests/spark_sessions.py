"""Which Spark the tests run on: local Spark by default, Databricks Connect when `CAROUSEL_TEST_SPARK=connect`.

Under Databricks Connect the transformations' tests run on a workspace's compute (serverless, or
the cluster `DATABRICKS_CLUSTER_ID` names; host and credentials as Databricks Connect finds them:
`DATABRICKS_HOST` and a token or OAuth, or a `~/.databrickscfg` profile). A test that needs the
local machine (its files, `spark-pipelines`, killing a process, the local JVM) cannot run there:
it is marked `local_only`, or asks for a local folder (`tmp_path`, `tmp_path_factory`), and is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

KIND_VARIABLE = "CAROUSEL_TEST_SPARK"
KINDS = ("local", "connect")
CLUSTER_VARIABLE = "DATABRICKS_CLUSTER_ID"
LOCAL_ONLY = "local_only"
LOCAL_FOLDER_FIXTURES = frozenset({"tmp_path", "tmp_path_factory"})
SKIP_REASON = "needs the local machine (files, spark-pipelines, a process kill or the local JVM): local Spark only"


def session_kind(environ: Mapping[str, str]) -> str:
    """'local' or 'connect', from `CAROUSEL_TEST_SPARK` (unset or empty: local).

    Raises:
        pytest.UsageError: any other value, naming the variable.
    """
    kind = environ.get(KIND_VARIABLE, "").strip().lower() or "local"
    if kind not in KINDS:
        raise pytest.UsageError(f"{KIND_VARIABLE} must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def check_connect_installed() -> None:
    """Raise `pytest.UsageError` when databricks-connect is not installed in this environment."""
    import importlib.util

    if importlib.util.find_spec("databricks") is None or importlib.util.find_spec("databricks.connect") is None:
        raise pytest.UsageError(
            f"{KIND_VARIABLE}=connect needs databricks-connect, in an environment of its own: run `make test-connect`"
        )


def needs_local_machine(fixture_names: Iterable[str], marker_names: Iterable[str]) -> bool:
    """Whether a test with these fixtures and markers must be skipped under Databricks Connect."""
    return LOCAL_ONLY in set(marker_names) or bool(LOCAL_FOLDER_FIXTURES & set(fixture_names))


def connect_session(environ: Mapping[str, str]):
    """A Databricks Connect session: on the cluster `DATABRICKS_CLUSTER_ID` names, else on serverless compute."""
    from databricks.connect import DatabricksSession

    cluster = environ.get(CLUSTER_VARIABLE, "").strip()
    builder = DatabricksSession.builder
    builder = builder.clusterId(cluster) if cluster else builder.serverless()
    session = builder.getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")  # as local Spark: the expected times are UTC
    return session


def local_session():
    """The local SparkSession of the test run: UTC, 4 shuffle partitions, UI off."""
    from carousel.spark import local_spark

    # Spark's 1 GiB default driver ran out of room to broadcast late in a full run (test_incremental).
    # Kafka too: the Kafka tests read and produce topics through this session.
    return local_spark("carousel-tests", cores=2, shuffle_partitions=4, driver_memory="4g", kafka=True)
