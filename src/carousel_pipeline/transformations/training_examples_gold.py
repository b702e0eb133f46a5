"""training_examples_gold: the GPU layout, one history per customer-day with its shown items beside it."""

from pyspark import pipelines as dp

from carousel import pipeline_datasets as datasets

settings = datasets.settings_of(spark)  # noqa: F821 - the pipeline runtime provides `spark`


@dp.materialized_view(
    name=datasets.TRAINING_EXAMPLES_GOLD,
    comment="One row per customer-day: the history once, and ranking_ids, positions, item_ids, labels aligned.",
    partition_cols=["dt"],
)
def training_examples_gold():
    return datasets.training_examples_gold(spark.read.table, settings)  # noqa: F821
