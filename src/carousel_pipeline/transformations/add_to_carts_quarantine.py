"""add_to_carts_quarantine: every raw add-to-carts row that breaks a quality rule, with the rules it broke."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline.datasets import QUARANTINE, RawInput

raw_add_to_carts = RawInput.open(spark, "add_to_carts")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.table(name=QUARANTINE["add_to_carts"], comment=contract.quarantine_comment("add_to_carts"))
def add_to_carts_quarantine():
    return raw_add_to_carts.quarantined()
