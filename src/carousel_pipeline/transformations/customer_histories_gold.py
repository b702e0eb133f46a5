"""customer_histories_gold: per (dt, customer) with impressions, the N newest earlier actions."""

from pyspark import pipelines as dp

from carousel import pipeline_datasets as datasets

settings = datasets.settings_of(spark)  # noqa: F821 - the pipeline runtime provides `spark`


@dp.materialized_view(
    name=datasets.CUSTOMER_HISTORIES_GOLD,
    comment="One row per customer-day: actions and action_types, exactly N each, newest first, 0-padded.",
    partition_cols=["dt"],
)
def customer_histories_gold():
    return datasets.customer_histories_gold(spark.read.table, settings)  # noqa: F821
