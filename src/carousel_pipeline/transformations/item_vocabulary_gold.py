"""item_vocabulary_gold: item id -> embedding index (0 padding, 1 unknown, then most frequent first)."""

from pyspark import pipelines as dp

from carousel import pipeline_datasets as datasets

settings = datasets.settings_of(spark)  # noqa: F821 - the pipeline runtime provides `spark`


@dp.materialized_view(
    name=datasets.ITEM_VOCABULARY_GOLD,
    comment="One row per item id seen in actions or the window's impressions: item_index 2.. by frequency.",
)
def item_vocabulary_gold():
    return datasets.item_vocabulary_gold(spark.read.table, settings)  # noqa: F821
