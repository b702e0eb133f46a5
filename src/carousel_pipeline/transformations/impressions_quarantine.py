"""impressions_quarantine: every raw impressions row that breaks a quality rule, with the rules it broke."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline.datasets import QUARANTINE, RawInput

raw_impressions = RawInput.open(spark, "impressions")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.table(name=QUARANTINE["impressions"], comment=contract.quarantine_comment("impressions"))
def impressions_quarantine():
    return raw_impressions.quarantined()
