"""`carousel train`: the baseline trained and registered on local gold tables (a local pipeline's, or named ones)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession

from carousel import contract
from carousel.local.runner import read_published
from carousel.local.spark_pipelines import LocalPipeline
from carousel.progress import stage
from carousel.storage import read_source

if TYPE_CHECKING:
    from carousel.baseline.model import BaselineConfig
    from carousel.baseline.run import MlflowTarget, RegisteredBaseline


def train_locally(
    spark: SparkSession,
    config: BaselineConfig,
    target: MlflowTarget,
    report_dir: str,
    pipeline_dir: str,
    examples: str | None = None,
    actions: str | None = None,
) -> RegisteredBaseline:
    """Train and register the baseline on local gold tables: the pipeline's under `pipeline_dir`, unless named.

    Args:
        config: the baseline's settings.
        target: the MLflow tracking and registry.
        report_dir: where the evaluation report goes.
        pipeline_dir: the work directory of `carousel pipeline`.
        examples, actions: `training_examples_gold` and `actions_silver` instead (names or paths), both or neither.

    Returns:
        The registered model, its version and report.
    """
    from carousel.baseline.run import train_and_register

    if examples and actions:
        packed, actions_frame = read_source(spark, examples, "examples"), read_source(spark, actions, "actions")
    else:
        pipeline = LocalPipeline(Path(pipeline_dir))
        packed = read_published(spark, pipeline, contract.TRAINING_EXAMPLES_GOLD.name)
        actions_frame = read_published(spark, pipeline, contract.ACTIONS_SILVER.name)
    with stage("train baseline"):
        return train_and_register(packed, actions_frame, config, target, report_dir)
