"""training_examples_gold: the GPU layout, one history per customer-day with its shown items beside it."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline import datasets

settings = datasets.settings_of(spark)  # noqa: F821 - the pipeline runtime provides `spark`


@dp.materialized_view(
    name=contract.TRAINING_EXAMPLES_GOLD.name,
    comment=contract.TRAINING_EXAMPLES_GOLD.comment,
    schema=contract.TRAINING_EXAMPLES_GOLD.ddl(),
    partition_cols=list(contract.TRAINING_EXAMPLES_GOLD.partition_by),
)
def training_examples_gold():
    return datasets.training_examples_gold(spark.read.table, settings)  # noqa: F821
