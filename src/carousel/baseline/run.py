"""Train the baseline, write its evaluation report, log both to MLflow and register the model.

Locally (`carousel train`), MLflow tracks runs and registers models in a SQLite file under
`--mlflow-dir` (default data/mlflow): MLflow's local backend. On Databricks (`carousel-train`, the
daily job's task), runs go to the workspace's tracking server and models to Unity Catalog
(`--tracking-uri databricks --registry-uri databricks-uc`, model name catalog.schema.name).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from carousel import contract
from carousel.baseline.model import CLASSIFIERS, BaselineConfig, TrainedBaseline, train_baseline
from carousel.baseline.report import write_report
from carousel.console import (
    add_table_location_options,
    add_verbose_option,
    configure_logging,
    number,
    parse_table_location_args,
    run_command,
    whole_number,
)
from carousel.storage import qualified_name, read_source

log = logging.getLogger("carousel")

DEFAULT_EXPERIMENT = "carousel_baseline"
DEFAULT_MODEL_NAME = "carousel_baseline"


@dataclass(frozen=True)
class MlflowTarget:
    """Where the run is tracked and the model registered."""

    tracking_uri: str
    registry_uri: str
    experiment: str
    model_name: str
    artifact_location: str | None = None  # for a new experiment on a local backend
    dfs_tmpdir: str | None = None  # where Spark writes the model before MLflow uploads it

    @classmethod
    def local(cls, mlflow_dir: str, experiment: str, model_name: str) -> MlflowTarget:
        """A SQLite-backed tracking store and registry in `mlflow_dir`, artifacts beside it."""
        root = Path(mlflow_dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        database = f"sqlite:///{root / 'mlflow.db'}"
        return cls(
            database,
            database,
            experiment,
            model_name,
            artifact_location=(root / "artifacts").as_uri(),
            dfs_tmpdir=str(root / "tmp"),
        )


@dataclass(frozen=True)
class RegisteredBaseline:
    """What a training run left behind."""

    run_id: str
    model_name: str
    model_version: str
    model_uri: str
    report: Path


def log_and_register(
    trained: TrainedBaseline, target: MlflowTarget, report_dir: str | os.PathLike[str]
) -> RegisteredBaseline:
    """Log parameters, metrics, the PipelineModel and the report in one MLflow run; register a new model version."""
    import mlflow
    import mlflow.spark
    import pyspark
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(target.tracking_uri)
    mlflow.set_registry_uri(target.registry_uri)
    if target.artifact_location and mlflow.get_experiment_by_name(target.experiment) is None:
        mlflow.create_experiment(target.experiment, artifact_location=target.artifact_location)
    mlflow.set_experiment(target.experiment)
    summary = trained.summary
    # Unity Catalog only registers models with a signature: read it off a few evaluation rows.
    sample_input = trained.model_input_sample.toPandas()
    sample_output = trained.model.transform(trained.model_input_sample).select("prediction").toPandas()
    with mlflow.start_run() as run:
        mlflow.log_params(summary.params)
        mlflow.log_params(
            {
                "train_days": f"{summary.train_days[0]}..{summary.train_days[-1]}",
                "evaluated_days": ",".join(summary.eval_days),
            }
        )
        mlflow.log_metrics(
            {
                **summary.metrics,
                "base_rate": summary.base_rate,
                "train_impressions": summary.train_impressions,
                "eval_impressions": summary.eval_impressions,
                **{f"roc_auc_alone_{name}": auc for name, auc in summary.single_feature_roc_auc.items()},
            }
        )
        logged = mlflow.spark.log_model(
            trained.model,
            "model",
            registered_model_name=target.model_name,
            signature=infer_signature(sample_input, sample_output),
            # Named, so MLflow does not load the model again in a subprocess to infer them.
            pip_requirements=[f"pyspark=={pyspark.__version__}"],
            dfs_tmpdir=target.dfs_tmpdir,
        )
        version = str(logged.registered_model_version)
        model = {
            "name": target.model_name,
            "version": version,
            "uri": f"models:/{target.model_name}/{version}",
            "run_id": run.info.run_id,
        }
        report = write_report(replace(summary, model=model), report_dir)
        mlflow.log_artifacts(str(Path(report).parent), "report")
    log.info("registered %s version %s (run %s); report %s", target.model_name, version, run.info.run_id, report)
    return RegisteredBaseline(run.info.run_id, target.model_name, version, model["uri"], Path(report))


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """The options `carousel train` and `carousel-train` share."""
    parser.add_argument(
        "--eval-days",
        type=whole_number("eval_days"),
        default=1,
        help="last days evaluated on, never trained on (default 1)",
    )
    parser.add_argument("--classifier", choices=CLASSIFIERS, default="logistic", help="logistic (default) or gbt")
    parser.add_argument(
        "--max-iter",
        type=whole_number("max_iter"),
        default=None,
        help="logistic: solver iterations (100); gbt: boosting rounds (30)",
    )
    # Spark ML's trees stop at depth 30.
    parser.add_argument(
        "--max-depth", type=whole_number("max_depth", 1, 30), default=5, help="GBT tree depth (default 5)"
    )
    parser.add_argument(
        "--popularity-days",
        type=whole_number("popularity_days"),
        default=28,
        help="days before D in item popularity (default 28)",
    )
    parser.add_argument(
        "--sample-fraction",
        type=number("sample_fraction", 0, 1, low_open=True),
        default=1.0,
        help="share of customer-days used, by hash (default 1: all)",
    )
    parser.add_argument("--seed", type=int, default=7, help="sampling and GBT seed (default 7)")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment name or workspace path")
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model (UC: catalog.schema.name)")
    parser.add_argument("--report-dir", default="data/model_report", help="where report.md and its plots go")


def baseline_config(args: argparse.Namespace) -> BaselineConfig:
    """The BaselineConfig the parsed options ask for."""
    return BaselineConfig(
        eval_days=args.eval_days,
        classifier=args.classifier,
        max_iter=args.max_iter,
        max_depth=args.max_depth,
        popularity_days=args.popularity_days,
        sample_fraction=args.sample_fraction,
        seed=args.seed,
    )


def train_and_register(
    packed: DataFrame, actions: DataFrame, config: BaselineConfig, target: MlflowTarget, report_dir: str
) -> RegisteredBaseline:
    """Train, evaluate, report, log and register: the whole training step."""
    return log_and_register(train_baseline(packed, actions, config), target, report_dir)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `carousel-train` (the daily job's task on Databricks)."""
    parser = argparse.ArgumentParser(
        prog="carousel-train",
        description="Train the baseline on the pipeline's gold tables, report on it and register it in MLflow.",
    )
    add_table_location_options(parser)
    parser.add_argument("--tracking-uri", default="databricks", help="MLflow tracking URI (default databricks)")
    parser.add_argument("--registry-uri", default="databricks-uc", help="MLflow registry URI (default databricks-uc)")
    parser.add_argument("--dfs-tmpdir", default=None, help="where Spark writes the model before upload (a UC volume)")
    add_train_options(parser)
    add_verbose_option(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """`carousel-train`'s arguments, checked: a bad one is a usage error (exit 2) before Spark starts."""
    return parse_table_location_args(build_parser(), argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `carousel-train`: the job task after the pipeline and its validation.

    An error of the project (a missing gold table, gold data that cannot be trained on) prints one
    line, `carousel-train: error: <message>`, and exits 1; the traceback comes first under `--verbose`.
    """
    args = parse_args(argv)
    configure_logging(args.verbose)
    registered = run_command("carousel-train", lambda: _train(args), args.verbose)
    print(f"registered {registered.model_name} version {registered.model_version}; report in run {registered.run_id}")


def _train(args: argparse.Namespace) -> RegisteredBaseline:
    spark = SparkSession.builder.getOrCreate()
    examples_table, actions_table = contract.TRAINING_EXAMPLES_GOLD.name, contract.ACTIONS_SILVER.name
    packed = read_source(spark, qualified_name(args.catalog, args.schema, examples_table), examples_table)
    actions = read_source(spark, qualified_name(args.catalog, args.schema, actions_table), actions_table)
    model_name = args.model_name
    if model_name.count(".") == 0 and args.registry_uri == "databricks-uc":
        # UC model names are three-level and, unlike table names in SQL, never backquoted.
        model_name = ".".join(part for part in (args.catalog, args.schema, model_name) if part)
    target = MlflowTarget(args.tracking_uri, args.registry_uri, args.experiment, model_name, dfs_tmpdir=args.dfs_tmpdir)
    return train_and_register(packed, actions, baseline_config(args), target, args.report_dir)
