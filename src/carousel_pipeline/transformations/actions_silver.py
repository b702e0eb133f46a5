"""actions_silver: clicks, add-to-carts and orders as one frame of typed actions."""

from pyspark import pipelines as dp

from carousel import pipeline_datasets as datasets


@dp.materialized_view(
    name=datasets.ACTIONS_SILVER, comment="One row per valid action: customer, item, type, time, day."
)
def actions_silver():
    return datasets.actions_silver(spark.read.table)  # noqa: F821 - the pipeline runtime provides `spark`
