"""actions_silver: clicks, add-to-carts and orders as one streaming table of actions, one append flow per source."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline import datasets
from carousel.storage import CHANGE_FEED

dp.create_streaming_table(
    name=contract.ACTIONS_SILVER.name,
    comment=contract.ACTIONS_SILVER.comment,
    schema=contract.ACTIONS_SILVER.ddl(),
    table_properties=CHANGE_FEED,  # the gold step reads the rows new since its last run
)


@dp.append_flow(target=contract.ACTIONS_SILVER.name, name=datasets.SILVER_FLOWS["clicks"])
def clicks_to_actions_silver():
    return datasets.actions_of(spark.readStream.table, "clicks")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.append_flow(target=contract.ACTIONS_SILVER.name, name=datasets.SILVER_FLOWS["add_to_carts"])
def add_to_carts_to_actions_silver():
    return datasets.actions_of(spark.readStream.table, "add_to_carts")  # noqa: F821


@dp.append_flow(target=contract.ACTIONS_SILVER.name, name=datasets.SILVER_FLOWS["orders"])
def orders_to_actions_silver():
    return datasets.actions_of(spark.readStream.table, "orders")  # noqa: F821
