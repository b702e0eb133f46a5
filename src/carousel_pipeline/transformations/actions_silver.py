"""actions_silver: clicks, add-to-carts and orders as one frame of typed actions."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline import datasets


@dp.materialized_view(
    name=contract.ACTIONS_SILVER.name,
    comment=contract.ACTIONS_SILVER.comment,
    schema=contract.ACTIONS_SILVER.ddl(),
)
def actions_silver():
    return datasets.actions_silver(spark.read.table)  # noqa: F821 - the pipeline runtime provides `spark`
