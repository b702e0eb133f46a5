"""reconciliation_progress: per raw source and Kafka partition, what the updates reconciled; fails an unbalanced one."""

from pyspark import pipelines as dp

from carousel.pipeline import datasets
from carousel.schemas import RAW_SCHEMAS

raw_inputs = {source: datasets.RawInput.open(spark, source) for source in RAW_SCHEMAS}  # noqa: F821
# Read now, before the update refreshes the table: this update starts where the previous one stopped.
previous = datasets.previous_progress(spark, raw_inputs)  # noqa: F821


@dp.materialized_view(
    name=datasets.RECONCILIATION_PROGRESS,
    comment=(
        "One row per raw source (per partition of its topic, from Kafka): the next offset to reconcile, rows read, "
        "kept and quarantined so far and in this update; the update fails when its rows read differ from kept "
        "plus quarantined."
    ),
)
def reconciliation_progress():
    return datasets.reconciliation_progress(spark.read.table, raw_inputs, previous)  # noqa: F821
