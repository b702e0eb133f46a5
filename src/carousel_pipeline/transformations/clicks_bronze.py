"""clicks_bronze: every raw clicks row that passes its quality rules, typed to the contract."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline.datasets import BRONZE, RawInput
from carousel.pipeline.expectations import expect_all_or_drop
from carousel.quality import null_safe_rules

raw_clicks = RawInput.open(spark, "clicks")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.table(name=BRONZE["clicks"], comment=contract.bronze_comment("clicks"))
@expect_all_or_drop(null_safe_rules("clicks"))
def clicks_bronze():
    return raw_clicks.conformed()
