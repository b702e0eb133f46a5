"""What a command-line user sees for bad input: one line and exit 1 for the project's errors, exit 2 for a bad option.

The console scripts run as a user runs them (`carousel`, `carousel-validate`, `carousel-train` of
this environment, in a subprocess). Only the two `slow` tests start Spark in one; a bad option or a
missing local source fails before any Spark starts, which the tests see from stderr holding
nothing but argparse's usage and the error line.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import pytest
from builders import ADD_TO_CARTS_DDL, IMPRESSIONS_DDL, ORDERS_DDL, at, day

from carousel.console import day as day_option
from carousel.console import error_line, knob, number, run_command, whole_number
from carousel.errors import CarouselError, KnobRangeError

pytestmark = pytest.mark.local_only  # runs the installed scripts, which start local Spark

SCRIPTS = Path(sys.executable).parent
SPARK_OPTIONS = ("--driver-memory", "1g", "--shuffle-partitions", "2")


def run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPTS / script), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that are not argparse's usage message."""
    lines = stderr.splitlines()
    if lines and lines[0].startswith("usage:"):
        # The usage message: its first line, then lines indented under it.
        lines = [line for line in lines[1:] if not line.startswith(" ")]
    return lines


# --- the helper, in-process: no Spark -------------------------------------------------------


def test_run_command_returns_what_the_body_returns():
    assert run_command("prog", lambda: 42) == 42


def _raise(error: BaseException):
    def body():
        raise error

    return body


def test_an_error_of_the_project_is_one_line_and_exit_1(capsys):
    with pytest.raises(SystemExit) as raised:
        run_command("carousel", _raise(KnobRangeError("lookback_days", 0, "a whole number from 1 to 9")))
    # SystemExit with a message: Python prints it to stderr and exits 1.
    assert raised.value.code == "carousel: error: lookback_days must be a whole number from 1 to 9, got 0"
    assert capsys.readouterr().err == ""


def test_verbose_prints_the_traceback_first(capsys):
    with pytest.raises(SystemExit) as raised:
        run_command("carousel", _raise(CarouselError("table 'clicks' lacks required column 'click_time'")), True)
    assert raised.value.code == "carousel: error: table 'clicks' lacks required column 'click_time'"
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "carousel.errors.CarouselError: table 'clicks' lacks required column 'click_time'" in err


def test_a_multi_line_message_becomes_one_line():
    error = CarouselError("gold tables break their invariants:\n  - a: 1 row(s) break 'x'\n  - b: 'schema' broken")
    assert error_line(error) == "gold tables break their invariants: a: 1 row(s) break 'x'; b: 'schema' broken"


def test_an_error_with_a_headline_shows_it_and_points_to_verbose():
    error = CarouselError("spark-pipelines run failed (exit 1)\nline 1 of its output\nline 2")
    error.headline = "spark-pipelines run failed (exit 1)"
    with pytest.raises(SystemExit) as raised:
        run_command("carousel", _raise(error))
    assert raised.value.code == "carousel: error: spark-pipelines run failed (exit 1) (--verbose shows the details)"


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    with pytest.raises(SystemExit) as raised:
        run_command("carousel", _raise(KeyboardInterrupt()))
    assert raised.value.code == 130
    assert capsys.readouterr().err == "carousel: interrupted\n"


def test_any_other_exception_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_command("carousel", lambda: 1 / 0)


def test_every_named_error_of_the_project_is_a_carousel_error_and_keeps_its_old_base():
    from carousel.baseline.model import BaselineInputError
    from carousel.config import DayFormatError
    from carousel.docgen.graph import LineageError
    from carousel.docgen.lineage import ColumnDescriptionError
    from carousel.engine import MissingGoldInputError
    from carousel.errors import ConfigError
    from carousel.gold_checks import GoldValidationError
    from carousel.loader import TrainingTableError
    from carousel.local.runner import NothingPublishedError
    from carousel.local.spark_pipelines import PipelineRunError
    from carousel.pipeline.settings import PipelineConfigError
    from carousel.reconciliation import ReconciliationError
    from carousel.schemas import SchemaContractError
    from carousel.storage import SourceNotFoundError

    old_bases = {
        SchemaContractError: ValueError,
        TrainingTableError: ValueError,
        BaselineInputError: ValueError,
        PipelineRunError: RuntimeError,
        NothingPublishedError: LookupError,
        LineageError: RuntimeError,
        ColumnDescriptionError: ValueError,
        ReconciliationError: RuntimeError,
        GoldValidationError: ValueError,
        PipelineConfigError: ValueError,
        DayFormatError: ValueError,
        KnobRangeError: ValueError,
        ConfigError: ValueError,
        MissingGoldInputError: LookupError,
        SourceNotFoundError: FileNotFoundError,
    }
    for error, old_base in old_bases.items():
        assert issubclass(error, CarouselError) and issubclass(error, old_base), error


def test_option_types_name_the_option_and_its_range():
    assert knob("lookback_days")("30") == 30
    with pytest.raises(argparse.ArgumentTypeError, match=r"lookback_days must be a whole number from 1 to 3,652,059"):
        knob("lookback_days")("2147483648")
    with pytest.raises(argparse.ArgumentTypeError, match=r"eval_days must be a whole number from 1 to 2,147,483,647"):
        whole_number("eval_days")("0")
    assert whole_number("history_days", 0)("0") == 0
    assert number("sample_fraction", 0, 1, low_open=True)("1") == 1.0
    for text in ("0", "1.5", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"sample_fraction must be a number in \(0, 1\]"):
            number("sample_fraction", 0, 1, low_open=True)(text)
    with pytest.raises(argparse.ArgumentTypeError, match="rate must be a finite number of at least 0, got 'inf'"):
        number("rate", 0, math.inf)("inf")
    assert day_option("from_dt")("2025-03-01") == "2025-03-01"
    with pytest.raises(argparse.ArgumentTypeError, match="from_dt must be a day as 'yyyy-MM-dd', got '2025-02-30'"):
        day_option("from_dt")("2025-02-30")


def test_carousel_refuses_a_window_that_ends_before_it_starts(capsys):
    from carousel.cli import parse_args

    with pytest.raises(SystemExit) as raised:
        parse_args(["build", "--from-dt", "2025-06-02", "--to-dt", "2025-06-01"])
    assert raised.value.code == 2
    assert error_lines(capsys.readouterr().err) == [
        "carousel build: error: --to-dt must be on or after --from-dt (2025-06-02), got '2025-06-01'"
    ]


def test_verbose_is_accepted_before_or_after_the_command():
    from carousel.cli import parse_args

    assert parse_args(["--verbose", "build"]).verbose
    assert parse_args(["build", "--verbose"]).verbose
    assert not parse_args(["build"]).verbose


def test_a_missing_local_source_is_named_before_spark_is_asked(tmp_path):
    from carousel.storage import SourceNotFoundError, read_source

    missing = tmp_path / "raw" / "clicks"
    with pytest.raises(SourceNotFoundError, match=f"source 'clicks' not found: no path '{missing}'"):
        read_source(None, str(missing), "clicks")  # no session needed: nothing reaches Spark


def test_a_missing_table_is_named(spark):
    from carousel.storage import SourceNotFoundError, read_source

    with pytest.raises(SourceNotFoundError, match="source 'clicks' not found: no table or view 'no_such_table_x'"):
        read_source(spark, "no_such_table_x", "clicks")


# --- the console scripts, before any Spark starts ------------------------------------------


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        (
            "carousel",
            ["build", "--lookback-days", "0"],
            "carousel build: error: argument --lookback-days: lookback_days must be a whole number from 1 to 3,652,059",
        ),
        (
            "carousel",
            ["build", "--lookback-days", "2147483648"],
            "carousel build: error: argument --lookback-days: lookback_days must be a whole number from 1 to 3,652,059",
        ),
        (
            "carousel",
            ["advance", "--day", "2025-06-01", "--history-length", "0"],
            "carousel advance: error: argument --history-length: "
            "history_length must be a whole number from 1 to 1,000,000",
        ),
        (
            "carousel",
            ["advance", "--day", "2025-02-30"],
            "carousel advance: error: argument --day: day must be a day as 'yyyy-MM-dd', got '2025-02-30'",
        ),
        (
            "carousel",
            ["train", "--examples", "gold/examples"],
            "carousel train: error: give both --examples and --actions, or neither (to read --pipeline-dir)",
        ),
        (
            "carousel-validate",
            ["--history-length", "0"],
            "carousel-validate: error: argument --history-length: "
            "history_length must be a whole number from 1 to 1,000,000",
        ),
        (
            "carousel-validate",
            ["--catalog", "main"],
            "carousel-validate: error: --catalog main needs --schema: the tables are named catalog.schema.table",
        ),
        (
            "carousel-train",
            ["--sample-fraction", "0"],
            "carousel-train: error: argument --sample-fraction: sample_fraction must be a number in (0, 1], got '0'",
        ),
    ],
)
def test_a_bad_option_is_a_usage_error_naming_it_and_its_range(tmp_path, script, args, expected):
    result = run_script(script, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    # Nothing but the usage and one error line: no traceback, no Spark started.
    [line] = error_lines(result.stderr)
    assert line.startswith(expected), line


def test_a_missing_source_is_one_line_naming_it(tmp_path):
    result = run_script("carousel", "build", "--input", "no_such_dir", *SPARK_OPTIONS, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    missing = tmp_path / "no_such_dir" / "impressions"
    assert result.stderr == f"carousel: error: source 'impressions' not found: no path '{missing}'\n"

    verbose = run_script("carousel", "build", "--input", "no_such_dir", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 1
    assert verbose.stderr.startswith("Traceback (most recent call last):")
    assert verbose.stderr.endswith(f"carousel: error: source 'impressions' not found: no path '{missing}'\n")


# --- the console scripts on a real error of the data: Spark starts in the subprocess ------------


@pytest.fixture(scope="module")
def raw_without_click_time(spark, tmp_path_factory) -> Path:
    """The four raw sources as Parquet, one row each, clicks without its required `click_time`."""
    raw = tmp_path_factory.mktemp("raw_without_click_time")
    frames = {
        "impressions": spark.createDataFrame([("2025-03-10", "r", 1, [(500, False)])], IMPRESSIONS_DDL),
        "clicks": spark.createDataFrame([("2025-03-09", 1, 11)], "dt string, customer_id int, item_id int"),
        "add_to_carts": spark.createDataFrame([("2025-03-08", 1, 12, 1201, at("2025-03-08T10:00"))], ADD_TO_CARTS_DDL),
        "orders": spark.createDataFrame([(day("2025-03-07"), 1, 13, 1301, at("2025-03-07T10:00"))], ORDERS_DDL),
    }
    for name, frame in frames.items():
        frame.coalesce(1).write.parquet(str(raw / name))
    return raw


MISSING_CLICK_TIME = "carousel: error: table 'clicks' lacks required column 'click_time' (columns present: "


@pytest.mark.slow
def test_a_missing_column_is_one_line_and_exit_1(raw_without_click_time, tmp_path):
    result = run_script(
        "carousel", "build", "--input", str(raw_without_click_time), "--out", "gold", *SPARK_OPTIONS, cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    # What the JVM prints while Spark starts (Ivy's report, log4j warnings) aside, the one error line comes last.
    lines = result.stderr.splitlines()
    assert lines[-1].startswith(MISSING_CLICK_TIME), result.stderr
    assert [line for line in lines if line.startswith("carousel")] == lines[-1:]


@pytest.mark.slow
def test_verbose_shows_the_traceback_of_a_missing_column(raw_without_click_time, tmp_path):
    result = run_script(
        "carousel",
        "build",
        "--input",
        str(raw_without_click_time),
        "--out",
        "gold",
        "--verbose",
        *SPARK_OPTIONS,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback (most recent call last):" in result.stderr
    assert "carousel.schemas.MissingColumnError: table 'clicks' lacks required column 'click_time'" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(MISSING_CLICK_TIME)


# --- carousel-validate and carousel-train on a missing table: their main, in this process's session --


def test_carousel_validate_names_a_missing_table_in_one_line(spark):
    from carousel.tasks.validation import main

    with pytest.raises(SystemExit) as raised:
        main(["--schema", "no_such_schema_for_carousel_tests", "--history-length", "3"])
    line = str(raised.value.code)
    assert "\n" not in line
    assert line.startswith(
        "carousel-validate: error: gold tables break their invariants: customer_histories_gold: 'table_exists' broken: "
        "`no_such_schema_for_carousel_tests`.`customer_histories_gold` cannot be read"
    )


def test_carousel_train_names_a_missing_table_in_one_line(spark):
    from carousel.baseline.run import main

    with pytest.raises(SystemExit) as raised:
        main(["--schema", "no_such_schema_for_carousel_tests"])
    assert raised.value.code == (
        "carousel-train: error: source 'training_examples_gold' not found: "
        "no table or view '`no_such_schema_for_carousel_tests`.`training_examples_gold`'"
    )


def test_carousel_gold_before_a_first_pipeline_update_is_one_line(spark):
    from carousel.tasks.gold_step import main

    with pytest.raises(SystemExit) as raised:
        main(["--schema", "no_such_schema_for_carousel_tests"])
    assert raised.value.code == (
        "carousel-gold: error: the gold step reads `no_such_schema_for_carousel_tests`.`actions_silver` and "
        "`no_such_schema_for_carousel_tests`.`impressions_bronze`, which the pipeline has not written yet: "
        "run an update of the pipeline first (locally: `carousel pipeline`)"
    )
