"""The baseline's evaluation in Spark, handed over as small plain-Python values: score histogram, curves,
calibration, feature importances, single-feature ROC AUC, and a profile of the training data."""

from __future__ import annotations

import math

from pyspark.ml import PipelineModel
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from carousel.baseline.features import FEATURES, LABEL, SCORE, assembled_columns
from carousel.baseline.summary import CalibrationBin, Curve, DataProfile
from carousel.contract import ADD_TO_CART, CLICK, ORDER


def profile_training_data(packed: DataFrame, history_length: int) -> DataProfile:
    """What the training input looks like: history lengths, action-type mix and the order rate by position."""
    real = F.size(F.filter("action_types", lambda t: t != 0))
    width = max(1, history_length // 20)
    first = F.when(real == 0, 0).otherwise(F.floor((real - 1) / width) * width + 1)
    lengths = packed.select(first.cast("int").alias("first")).groupBy("first").count().collect()
    history_lengths = sorted(
        (row["first"], 0 if row["first"] == 0 else min(row["first"] + width - 1, history_length), row["count"])
        for row in lengths
    )
    types = packed.agg(
        *[
            F.sum(F.size(F.filter("action_types", _is_action_type(code)))).alias(name)
            for name, code in (("click", CLICK), ("add_to_cart", ADD_TO_CART), ("order", ORDER))
        ],
        F.count(F.lit(1)).alias("customer_days"),
    ).first()
    shown = packed.select(F.explode(F.arrays_zip("positions", "labels")).alias("shown")).select(
        F.col("shown.positions").alias("position"), F.col("shown.labels").alias("is_order")
    )
    by_position = (
        shown.groupBy("position")
        .agg(F.count(F.lit(1)).alias("impressions"), F.count(F.when(F.col("is_order"), 1)).alias("orders"))
        .collect()
    )
    label_rate_by_position = sorted((row.position, row.impressions, row.orders) for row in by_position)
    return DataProfile(
        customer_days=int(types["customer_days"]),
        impressions=sum(row[1] for row in label_rate_by_position),
        orders=sum(row[2] for row in label_rate_by_position),
        history_lengths=history_lengths,
        action_type_counts={name: int(types[name] or 0) for name in ("click", "add_to_cart", "order")},
        label_rate_by_position=label_rate_by_position,
    )


def _is_action_type(code: int):
    # One parameter: `F.filter` passes the element index to a lambda that takes two.
    return lambda action_type: action_type == code


def score_histogram(predictions: DataFrame, buckets: int = 10_000) -> list[tuple[int, int, int, float]]:
    """(bucket, impressions, orders, summed score) per score bucket of width 1/buckets, highest bucket first.

    ROC, precision-recall and calibration are drawn from this: at most buckets + 1 rows, whatever
    the number of predictions.
    """
    bucket = F.least(F.floor(F.col(SCORE) * buckets), F.lit(buckets)).cast("int").alias("bucket")
    rows = (
        predictions.groupBy(bucket)
        .agg(F.count(F.lit(1)).alias("n"), F.sum(LABEL).alias("orders"), F.sum(SCORE).alias("score_sum"))
        .collect()
    )
    return sorted(((row.bucket, row.n, int(row.orders), float(row.score_sum)) for row in rows), reverse=True)


def curves(histogram: list[tuple[int, int, int, float]], max_points: int = 200) -> tuple[Curve, Curve]:
    """The ROC curve (false vs true positive rate) and the precision-recall curve, thresholds from high to low."""
    positives = sum(row[2] for row in histogram)
    negatives = sum(row[1] - row[2] for row in histogram)
    fpr, tpr, recall, precision = [0.0], [0.0], [], []
    true_positives = false_positives = 0
    for _, count, orders, _ in histogram:
        true_positives += orders
        false_positives += count - orders
        fpr.append(false_positives / negatives if negatives else 0.0)
        tpr.append(true_positives / positives if positives else 0.0)
        recall.append(true_positives / positives if positives else 0.0)
        precision.append(true_positives / (true_positives + false_positives))
    step = max(1, math.ceil(len(fpr) / max_points))
    keep = sorted(set(range(0, len(fpr), step)) | {len(fpr) - 1})
    keep_pr = sorted(set(range(0, len(recall), step)) | ({len(recall) - 1} if recall else set()))
    return (
        Curve([fpr[i] for i in keep], [tpr[i] for i in keep]),
        Curve([recall[i] for i in keep_pr], [precision[i] for i in keep_pr]),
    )


def calibration(histogram: list[tuple[int, int, int, float]], bins: int = 10) -> list[CalibrationBin]:
    """About `bins` groups of equally many impressions, lowest scores first: mean prediction vs order rate."""
    total = sum(row[1] for row in histogram)
    groups: list[CalibrationBin] = []
    count = orders = 0
    score_sum = 0.0
    for _, n, bucket_orders, bucket_score in reversed(histogram):  # lowest scores first
        count, orders, score_sum = count + n, orders + bucket_orders, score_sum + bucket_score
        if count >= total / bins:
            groups.append(CalibrationBin(score_sum / count, orders / count, count))
            count = orders = 0
            score_sum = 0.0
    if count:
        groups.append(CalibrationBin(score_sum / count, orders / count, count))
    return groups


def feature_importances(model: PipelineModel, feature_stds: list[float]) -> list[tuple[str, float]]:
    """(feature, share) by descending share: GBT's importances, or |coefficient| x feature std (logistic)."""
    classifier = model.stages[-1]
    if hasattr(classifier, "featureImportances"):
        raw = list(classifier.featureImportances.toArray())
    else:
        raw = [abs(c) * std for c, std in zip(classifier.coefficients, feature_stds, strict=True)]
    total = sum(raw) or 1.0
    return sorted(((name, value / total) for name, value in zip(FEATURES, raw, strict=True)), key=lambda p: -p[1])


def single_feature_roc_auc(predictions: DataFrame) -> dict[str, float]:
    """Per feature, the ROC AUC of the feature alone as the score, in its better direction (at least 0.5)."""
    evaluator = BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderROC")
    aucs = {}
    for name, column in zip(FEATURES, assembled_columns(), strict=True):
        auc = evaluator.setRawPredictionCol(column).evaluate(predictions)
        aucs[name] = max(auc, 1 - auc)
    return aucs
