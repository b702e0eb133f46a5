"""add_to_carts_bronze: every raw add-to-carts row that passes its quality rules, typed to the contract."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline.datasets import BRONZE, RawInput
from carousel.pipeline.expectations import expect_all_or_drop
from carousel.quality import null_safe_rules

raw_add_to_carts = RawInput.open(spark, "add_to_carts")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.table(name=BRONZE["add_to_carts"], comment=contract.bronze_comment("add_to_carts"))
@expect_all_or_drop(null_safe_rules("add_to_carts"))
def add_to_carts_bronze():
    return raw_add_to_carts.conformed()
