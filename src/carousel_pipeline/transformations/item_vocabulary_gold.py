"""item_vocabulary_gold: item id -> embedding index (0 padding, 1 unknown, then most frequent first)."""

from pyspark import pipelines as dp

from carousel import contract
from carousel.pipeline import datasets

settings = datasets.settings_of(spark)  # noqa: F821 - the pipeline runtime provides `spark`


@dp.materialized_view(
    name=contract.ITEM_VOCABULARY_GOLD.name,
    comment=contract.ITEM_VOCABULARY_GOLD.comment,
    schema=contract.ITEM_VOCABULARY_GOLD.ddl(),
)
def item_vocabulary_gold():
    return datasets.item_vocabulary_gold(spark.read.table, settings)  # noqa: F821
