"""training_examples: one row per impression, the public API's view of training_examples_gold."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline import datasets


@dp.temporary_view(name=contract.TRAINING_EXAMPLES.name, comment=contract.TRAINING_EXAMPLES.comment)
def training_examples():
    return datasets.training_examples(spark.read.table)  # noqa: F821 - the pipeline runtime provides `spark`
