"""The local runner around `spark-pipelines run`: a port per run, a failure to start named, Spark settings, summary.

The pipelines run here are tiny (one materialized view of three numbers): what is tested is the
runner, not the carousel pipeline (tests/test_pipeline.py runs that one).
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from carousel.engine import GoldReport
from carousel.local.spark_pipelines import LocalPipeline, PipelineRunError, resolved_jars, start_failure
from carousel.local.summary import RunSummary
from carousel.spark import delta_package, kafka_package

TINY_VIEW = """from pyspark import pipelines as dp


@dp.materialized_view(name="numbers")
def numbers():
    return spark.range(3)  # noqa: F821
"""


def _spark_defaults(pipeline: LocalPipeline) -> dict[str, str]:
    lines = (pipeline.conf_dir / "spark-defaults.conf").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines)


def test_spark_loads_the_kafka_package_only_for_a_run_that_reads_a_topic(tmp_path):
    pipeline = LocalPipeline(tmp_path)
    pipeline.write_spark_defaults("1g", 2)
    assert _spark_defaults(pipeline)["spark.jars.packages"] == delta_package()
    pipeline.write_spark_defaults("1g", 2, kafka=True)
    assert _spark_defaults(pipeline)["spark.jars.packages"] == f"{delta_package()},{kafka_package()}"


@pytest.mark.local_only
def test_a_run_is_handed_the_jars_this_session_resolved_instead_of_resolving_them_again(spark, tmp_path):
    jars = resolved_jars(spark, kafka=True)  # the test session loads Delta and Kafka
    names = {Path(jar).name for jar in jars}
    assert any(name.startswith("io.delta_delta-spark_") for name in names), names
    assert any(name.startswith("org.apache.spark_spark-sql-kafka-0-10_") for name in names), names
    assert all(Path(jar).is_file() for jar in jars)
    pipeline = LocalPipeline(tmp_path)
    pipeline.write_spark_defaults("1g", 2, jars=jars)
    assert _spark_defaults(pipeline)["spark.jars"] == ",".join(jars)
    assert "spark.jars.packages" not in _spark_defaults(pipeline)


def test_each_run_binds_a_port_the_system_picks(tmp_path):
    pipeline = LocalPipeline(tmp_path)
    pipeline.write_spark_defaults("1g", 2)
    assert _spark_defaults(pipeline)["spark.connect.grpc.binding.port"] == "0"


def test_a_port_taken_is_named_as_the_reason_a_run_did_not_start():
    output = [
        "26/12/07 03:53:49 WARN Utils: Set SPARK_LOCAL_IP if you need to bind to another address",
        "java.net.BindException: Failed to bind to address 0.0.0.0/0.0.0.0:15002: Service "
        "'org.apache.spark.sql.connect.service.SparkConnectService' failed after 0 retries (starting from 15002)!",
        "\tat org.apache.spark.util.Utils$.startServiceOnPort(Utils.scala:2345)",
        "pyspark.errors.exceptions.base.PySparkRuntimeError: [JAVA_GATEWAY_EXITED] Java gateway process exited.",
    ]
    reason = start_failure(output)
    assert reason.startswith("its Spark Connect server could not bind port 15002 (java.net.BindException: ")


def test_a_pipeline_file_that_fails_is_named_as_the_reason_a_run_did_not_start():
    output = [
        "2026-12-07 03:51:04: Registering graph elements...",
        "Traceback (most recent call last):",
        '  File "clicks_bronze.py", line 9, in <module>',
        "carousel.schemas.MissingColumnError: table 'clicks' lacks required column 'dt'",
    ]
    assert start_failure(output) == (
        "the pipeline did not start: carousel.schemas.MissingColumnError: table 'clicks' lacks required column 'dt'"
    )
    assert start_failure(["nothing went wrong here"]) is None


def test_a_table_without_a_flow_time_shows_a_dash_not_nan():
    summary = RunSummary(rows={"clicks_bronze": 12, "actions_silver": 30}, seconds={"clicks_bronze": 2.5})
    lines = summary.lines()
    [bronze] = [line for line in lines if "clicks_bronze" in line]
    [silver] = [line for line in lines if "actions_silver" in line]
    assert (bronze.split()[-2:], silver.split()[-1]) == (["2.5", "s"], "-")
    assert "nan" not in "\n".join(lines)


def test_the_gold_tables_show_the_seconds_of_the_gold_stage_that_wrote_them():
    gold = GoldReport(seconds={"gold_step.days": 12.5, "gold_step.vocabulary": 3.5, "gold_step.state": 9.0})
    rows = {"customer_histories_gold": 5, "training_examples_gold": 5, "item_vocabulary_gold": 40}
    lines = RunSummary(rows=rows, gold=gold).lines()
    seconds = {line.split()[0]: line.split()[-2] for line in lines if line.strip().split()[0] in rows}
    assert seconds == {
        "customer_histories_gold": "12.5",
        "training_examples_gold": "12.5",
        "item_vocabulary_gold": "3.5",
    }


def _tiny(root: Path, port: int = 0, jars: list[str] | None = None) -> LocalPipeline:
    """A pipeline under `root` of one materialized view, its Spark settings written (the server binding `port`)."""
    pipeline = LocalPipeline(root)
    transformations = root / "transformations"
    transformations.mkdir(parents=True)
    (transformations / "numbers.py").write_text(TINY_VIEW)
    pipeline.spec.write_text(
        "\n".join(
            [
                "name: tiny",
                f"storage: {(root / 'storage').resolve().as_uri()}",
                "catalog: spark_catalog",
                "database: default",
                "libraries:",
                "  - glob:",
                "      include: transformations/**",
            ]
        )
        + "\n"
    )
    pipeline.write_spark_defaults("1g", 2, port=port, jars=jars)
    return pipeline


def _outcome(pipeline: LocalPipeline) -> dict[str, float] | str:
    try:
        return pipeline.run_spec(cores=1)
    except PipelineRunError as error:
        return error.headline


@pytest.fixture(scope="module")
def runs_at_once(spark, tmp_path_factory) -> dict:
    """Three tiny pipelines started together: two free to bind, one whose port another program holds.

    The two handed the jars this session resolved, the third resolving Spark's packages itself.
    """
    root = tmp_path_factory.mktemp("runs_at_once")
    jars = resolved_jars(spark)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pipelines = {
            "first": _tiny(root / "first", jars=jars),
            "second": _tiny(root / "second", jars=jars),
            "port_taken": _tiny(root / "port_taken", port=port),
        }
        with ThreadPoolExecutor(len(pipelines)) as pool:
            outcomes = dict(zip(pipelines, pool.map(_outcome, pipelines.values()), strict=True))
    return {"outcomes": outcomes, "pipelines": pipelines, "taken_port": port}


@pytest.mark.slow
@pytest.mark.local_only
def test_two_runs_started_at_once_both_complete(runs_at_once):
    outcomes = runs_at_once["outcomes"]
    assert set(outcomes["first"]) == {"numbers"}, outcomes["first"]
    assert set(outcomes["second"]) == {"numbers"}, outcomes["second"]


@pytest.mark.slow
@pytest.mark.local_only
def test_a_run_that_cannot_bind_its_port_says_so_in_its_headline(runs_at_once):
    headline = runs_at_once["outcomes"]["port_taken"]
    assert isinstance(headline, str) and headline.startswith("spark-pipelines run failed (exit "), headline
    assert f"its Spark Connect server could not bind port {runs_at_once['taken_port']} (java.net.BindException" in (
        headline
    )
    assert runs_at_once["pipelines"]["port_taken"].log_file.is_file()


def test_a_table_its_append_flows_fill_takes_from_the_first_start_to_the_last_end():
    from carousel.local.spark_pipelines import _append_flow_targets

    # add_to_carts_bronze has "_to_" in its name but is a table's own flow: no table "carts_bronze".
    started = {
        "clicks_to_actions_silver": 10.0,
        "add_to_carts_to_actions_silver": 11.0,
        "clicks_bronze": 1.0,
        "add_to_carts_bronze": 2.0,
    }
    finished = {
        "clicks_to_actions_silver": 20.0,
        "add_to_carts_to_actions_silver": 24.0,
        "clicks_bronze": 5.0,
        "add_to_carts_bronze": 6.0,
    }
    assert _append_flow_targets(started, finished) == {"actions_silver": 14.0}
