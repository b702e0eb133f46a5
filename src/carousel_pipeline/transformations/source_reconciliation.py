"""source_reconciliation: per raw source, rows read = rows kept (bronze) + rows quarantined, or the update fails."""

from pyspark import pipelines as dp

from carousel.pipeline import datasets
from carousel.schemas import RAW_SCHEMAS

raw_inputs = {source: datasets.RawInput.open(spark, source) for source in RAW_SCHEMAS}  # noqa: F821


@dp.materialized_view(
    name=datasets.SOURCE_RECONCILIATION,
    comment="One row per raw source and run: rows read, kept and quarantined; the update fails when they differ.",
)
def source_reconciliation():
    return datasets.source_reconciliation(spark.read.table, raw_inputs)  # noqa: F821
