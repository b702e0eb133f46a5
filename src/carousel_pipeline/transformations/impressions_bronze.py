"""impressions_bronze: every raw impressions row that passes its quality rules, typed to the contract."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline.datasets import BRONZE, RawInput
from carousel.pipeline.expectations import expect_all_or_drop
from carousel.quality import null_safe_rules
from carousel.storage import CHANGE_FEED

raw_impressions = RawInput.open(spark, "impressions")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.table(
    name=BRONZE["impressions"],
    comment=contract.bronze_comment("impressions"),
    table_properties=CHANGE_FEED,  # the gold step reads the rows new since its last run
)
@expect_all_or_drop(null_safe_rules("impressions"))
def impressions_bronze():
    return raw_impressions.conformed()
