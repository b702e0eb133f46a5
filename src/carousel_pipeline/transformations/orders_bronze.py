"""orders_bronze: every raw orders row that passes its quality rules, typed to the contract."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline.datasets import BRONZE, RawInput
from carousel.pipeline.expectations import expect_all_or_drop
from carousel.quality import null_safe_rules

raw_orders = RawInput.open(spark, "orders")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.table(name=BRONZE["orders"], comment=contract.bronze_comment("orders"))
@expect_all_or_drop(null_safe_rules("orders"))
def orders_bronze():
    return raw_orders.conformed()
