"""orders_quarantine: every raw orders row that breaks a quality rule, with the rules it broke."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline.datasets import QUARANTINE, RawInput

raw_orders = RawInput.open(spark, "orders")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.table(name=QUARANTINE["orders"], comment=contract.quarantine_comment("orders"))
def orders_quarantine():
    return raw_orders.quarantined()
