"""customer_histories_gold: per (dt, customer) with impressions, the N newest earlier actions."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline import datasets

settings = datasets.settings_of(spark)  # noqa: F821 - the pipeline runtime provides `spark`


@dp.materialized_view(
    name=contract.CUSTOMER_HISTORIES_GOLD.name,
    comment=contract.CUSTOMER_HISTORIES_GOLD.comment,
    schema=contract.CUSTOMER_HISTORIES_GOLD.ddl(),
    partition_cols=list(contract.CUSTOMER_HISTORIES_GOLD.partition_by),
)
def customer_histories_gold():
    return datasets.customer_histories_gold(spark.read.table, settings)  # noqa: F821
