"""source_reconciliation: per raw source, rows read = rows kept (bronze) + rows quarantined so far.

Summed from `reconciliation_progress`, which checks each update over the rows it took in and fails an unbalanced one.
"""

from pyspark import pipelines as dp

from carousel.pipeline import datasets
from carousel.reconciliation import progress_totals


@dp.materialized_view(
    name=datasets.SOURCE_RECONCILIATION,
    comment="One row per raw source and run: rows read, kept and quarantined so far (see reconciliation_progress).",
)
def source_reconciliation():
    return progress_totals(spark.read.table(datasets.RECONCILIATION_PROGRESS))  # noqa: F821
