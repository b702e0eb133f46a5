"""The baseline model: a Spark ML pipeline that predicts `is_order` of an impression from the gold data.

It is the number to beat and the proof that the training input carries signal. Per impression
(one shown item of `training_examples_gold`), the features are:
- the shown item in the customer's N-action history: how often, by action type, and how recently
  (`item_last_slot`: the slot of the newest action on it, 1 = the newest action; N + 1 if absent);
- the customer's history: actions by type among the N, and how many of the N are real;
- the item's popularity before the day: actions and orders of all customers on it in the
  `popularity_days` days before the impression day (never the day itself);
- the position in the carousel.

The history features are computed inside the fitted `PipelineModel` (a `SQLTransformer` over
`actions`, `action_types` and `item_id`), so the registered model scores per-impression rows
(`carousel.gold.unpack_training_examples`) that carry the two popularity columns (`add_item_popularity`).
The split is by time: the last `eval_days` days are evaluated on, the days before them trained
on; no evaluation day is ever seen in training.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator, MulticlassClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from carousel.baseline.features import (
    FEATURE_DESCRIPTIONS,
    FEATURES,
    LABEL,
    SCORE,
    add_item_popularity,
    assembled_columns,
    history_features,
    with_label,
)
from carousel.baseline.metrics import (
    calibration,
    curves,
    feature_importances,
    profile_training_data,
    score_histogram,
    single_feature_roc_auc,
)
from carousel.baseline.summary import EvaluationSummary
from carousel.errors import CarouselError, ConfigError
from carousel.gold import unpack_training_examples

log = logging.getLogger("carousel")


CLASSIFIERS = ("gbt", "logistic")
CLASSIFIER_NAMES = {
    "gbt": "gradient-boosted tree classifier (Spark ML GBTClassifier)",
    "logistic": "logistic regression (Spark ML LogisticRegression)",
}


class BaselineInputError(CarouselError, ValueError):
    """The gold data cannot be split or trained on as asked (too few days, no orders, ...)."""


@dataclass(frozen=True)
class BaselineConfig:
    """How the baseline is trained and evaluated."""

    eval_days: int = 1
    classifier: str = "logistic"
    max_iter: int | None = None  # logistic: 100 solver iterations; gbt: 30 boosting rounds
    max_depth: int = 5
    popularity_days: int = 28
    sample_fraction: float = 1.0
    seed: int = 7

    def __post_init__(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ConfigError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}")
        if self.eval_days < 1:
            raise ConfigError(f"eval_days must be at least 1, got {self.eval_days}")
        if self.popularity_days < 1:
            raise ConfigError(f"popularity_days must be at least 1, got {self.popularity_days}")
        if self.max_iter is not None and self.max_iter < 1:
            raise ConfigError(f"max_iter must be at least 1, got {self.max_iter}")
        if not 0 < self.sample_fraction <= 1:
            raise ConfigError(f"sample_fraction must be in (0, 1], got {self.sample_fraction}")

    @property
    def iterations(self) -> int:
        """max_iter, or the classifier's default: 100 solver iterations (logistic), 30 rounds (gbt)."""
        if self.max_iter is not None:
            return self.max_iter
        return 100 if self.classifier == "logistic" else 30

    def params(self) -> dict[str, str]:
        """The configuration as MLflow parameters."""
        return {**{name: str(value) for name, value in asdict(self).items()}, "max_iter": str(self.iterations)}


@dataclass(frozen=True)
class TrainedBaseline:
    """The fitted model and everything its evaluation found."""

    model: PipelineModel
    summary: EvaluationSummary
    model_input_sample: DataFrame  # a few evaluation rows of the model's input, for the MLflow signature


def baseline_pipeline(config: BaselineConfig) -> Pipeline:
    """The unfitted Spark ML pipeline: history features, VectorAssembler, then the classifier."""
    assembler = VectorAssembler(inputCols=assembled_columns(), outputCol="features")
    if config.classifier == "gbt":
        classifier = GBTClassifier(
            labelCol=LABEL,
            featuresCol="features",
            maxIter=config.iterations,
            maxDepth=config.max_depth,
            seed=config.seed,
        )
    else:
        classifier = LogisticRegression(labelCol=LABEL, featuresCol="features", maxIter=config.iterations)
    return Pipeline(stages=[history_features(), assembler, classifier])


def fit_baseline(train: DataFrame, config: BaselineConfig) -> tuple[PipelineModel, list[float]]:
    """Fit `baseline_pipeline(config)` on the training rows: the PipelineModel, and each feature's std in training.

    The model is the one `Pipeline.fit` returns, found faster: the feature stages are transformers
    (nothing to fit), so they run once and only the feature vectors and labels are cached for the
    classifier's many passes, not the N-action arrays of every impression.
    """
    from pyspark.ml.stat import Summarizer

    *feature_stages, classifier = baseline_pipeline(config).getStages()
    features = PipelineModel(feature_stages).transform(train).select("features", LABEL).cache()
    try:
        fitted = classifier.fit(features)
        stds = features.select(Summarizer.std(F.col("features")).alias("std")).first()["std"]
    finally:
        features.unpersist()
    return PipelineModel([*feature_stages, fitted]), [float(value) for value in stds]


def split_days(examples: DataFrame, eval_days: int) -> tuple[list[str], list[str]]:
    """The training days and the evaluation days (the last `eval_days`), both in order.

    Raises:
        BaselineInputError: fewer than eval_days + 1 days.
    """
    # One row per day: a few dozen at most, whatever the volume.
    days = sorted(row.dt for row in examples.select("dt").distinct().collect())
    if len(days) <= eval_days:
        raise BaselineInputError(
            f"a time-based split needs at least {eval_days + 1} days ({eval_days} to evaluate on and one "
            f"before them to train on), but the training examples hold {len(days)}: {', '.join(days) or 'none'}"
        )
    return days[:-eval_days], days[-eval_days:]


def time_split(
    examples: DataFrame, eval_days: int, days_of: DataFrame | None = None
) -> tuple[DataFrame, DataFrame, list[str], list[str]]:
    """The training rows (days before the evaluation days), the evaluation rows, and both lists of days.

    The days are read from `days_of` when given: any frame with the examples' `dt` values, such as
    the packed table (a row per customer-day), which is cheaper to scan than exploded, joined rows.
    """
    train_days, evaluation_days = split_days(examples if days_of is None else days_of, eval_days)
    first_eval_day = evaluation_days[0]
    return (
        examples.where(F.col("dt") < F.lit(first_eval_day)),
        examples.where(F.col("dt") >= F.lit(first_eval_day)),
        train_days,
        evaluation_days,
    )


def sample_customer_days(packed: DataFrame, fraction: float, seed: int) -> DataFrame:
    """The customer-days whose (dt, customer_id, seed) hash falls under `fraction`: the same rows on every run."""
    if fraction >= 1:
        return packed
    bucket = F.pmod(F.xxhash64("dt", "customer_id", F.lit(seed)), F.lit(1_000_000))
    return packed.where(bucket < F.lit(int(fraction * 1_000_000)))


# Long on purpose: the split, the fit and the evaluation as one recipe; each step is a call.
def train_baseline(packed: DataFrame, actions: DataFrame, config: BaselineConfig = BaselineConfig()) -> TrainedBaseline:
    """Fit the baseline on the earlier days of `training_examples_gold` and evaluate it on the last ones.

    Args:
        packed: `training_examples_gold`: one row per customer-day (`carousel.gold`).
        actions: `actions_silver` (`carousel.actions.unify_actions`), for the items' popularity.
        config: split, classifier and sampling.

    Raises:
        BaselineInputError: too few days, or no order (or only orders) among the training or the
            evaluation impressions.
    """
    started = time.perf_counter()
    packed = sample_customer_days(packed, config.sample_fraction, config.seed)
    history_length = _history_length(packed)
    examples = with_label(add_item_popularity(unpack_training_examples(packed), actions, config.popularity_days))
    train, evaluation, train_days, evaluation_days = time_split(examples, config.eval_days, days_of=packed)
    train_counts = train.agg(F.count(F.lit(1)).alias("n"), F.sum(LABEL).alias("orders")).first()
    if not train_counts.n or not train_counts.orders or train_counts.orders == train_counts.n:
        raise BaselineInputError(
            f"the training days {train_days[0]}..{train_days[-1]} hold {train_counts.n} impressions with "
            f"{int(train_counts.orders or 0)} orders: a classifier needs both orders and non-orders"
        )
    log.info(
        "training the %s baseline on %s impressions of %s..%s; evaluating on %s",
        config.classifier,
        f"{train_counts.n:,}",
        train_days[0],
        train_days[-1],
        ", ".join(evaluation_days),
    )
    model, feature_stds = fit_baseline(train, config)
    log.info("fitted, %.1f s since the start", time.perf_counter() - started)

    predictions = (
        model.transform(evaluation)
        .withColumn(SCORE, vector_to_array("probability")[1])
        .select(LABEL, SCORE, "probability", "rawPrediction", "prediction", *assembled_columns())
        .cache()
    )
    evaluation_count = predictions.count()
    metrics = {
        "roc_auc": BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderROC").evaluate(predictions),
        "pr_auc": BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderPR").evaluate(predictions),
        "log_loss": MulticlassClassificationEvaluator(labelCol=LABEL, metricName="logLoss").evaluate(predictions),
    }
    histogram = score_histogram(predictions)
    orders = sum(row[2] for row in histogram)
    if not orders or orders == evaluation_count:
        predictions.unpersist()
        raise BaselineInputError(
            f"the evaluation days {', '.join(evaluation_days)} hold {evaluation_count} impressions with {orders} "
            "orders: ROC and PR AUC need both orders and non-orders (evaluate on more days: --eval-days)"
        )
    roc, pr = curves(histogram)
    summary = EvaluationSummary(
        classifier=CLASSIFIER_NAMES[config.classifier],
        train_days=train_days,
        eval_days=evaluation_days,
        train_impressions=int(train_counts.n),
        eval_impressions=evaluation_count,
        metrics=metrics,
        base_rate=orders / evaluation_count if evaluation_count else float("nan"),
        single_feature_roc_auc=single_feature_roc_auc(predictions),
        feature_importances=feature_importances(model, feature_stds),
        roc=roc,
        pr=pr,
        calibration=calibration(histogram),
        profile=profile_training_data(packed, history_length),
        params={**config.params(), "history_length": str(history_length), "features": ",".join(FEATURES)},
        feature_descriptions=dict(FEATURE_DESCRIPTIONS),
    )
    log.info(
        "evaluation on %s impressions: ROC AUC %.4f, PR AUC %.4f (base rate %.4f), log loss %.4f; %.1f s in all",
        f"{evaluation_count:,}",
        metrics["roc_auc"],
        metrics["pr_auc"],
        summary.base_rate,
        metrics["log_loss"],
        time.perf_counter() - started,
    )
    sample = evaluation.drop(LABEL).limit(5)
    predictions.unpersist()
    return TrainedBaseline(model, summary, sample)


def _history_length(packed: DataFrame) -> int:
    row = packed.select(F.size("actions").alias("n")).first()
    if row is None:
        raise BaselineInputError("the training examples are empty: nothing to train on")
    return int(row.n)
