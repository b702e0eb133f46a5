"""clicks_quarantine: every raw clicks row that breaks a quality rule, with the rules it broke."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline.datasets import QUARANTINE, RawInput

raw_clicks = RawInput.open(spark, "clicks")  # noqa: F821 - the pipeline runtime provides `spark`


@dp.table(name=QUARANTINE["clicks"], comment=contract.quarantine_comment("clicks"))
def clicks_quarantine():
    return raw_clicks.quarantined()
