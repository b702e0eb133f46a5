# Databricks notebook source
# MAGIC %md
# MAGIC # What the latest run quarantined, and whether every row is accounted for
# MAGIC
# MAGIC Per raw source: rows read = kept + quarantined, and the rows the run took in (from
# MAGIC `run_metrics`); then the quarantined rows per broken rule. `tables` is where the quarantine
# MAGIC tables live: a `catalog.schema` on Databricks, the local warehouse folder otherwise.

# COMMAND ----------

from carousel.notebook import parameters, session

params = parameters(globals(), run_metrics="data/pipeline/run_metrics", tables="data/pipeline/warehouse")
spark = session(globals())

# COMMAND ----------

from carousel.notebook import latest_reconciliation
from carousel.storage import read_source

reconciliation = latest_reconciliation(read_source(spark, params["run_metrics"]))
reconciliation.show(truncate=False)

# COMMAND ----------

from carousel import contract
from carousel.notebook import quarantined_by_rule, table_in
from carousel.storage import RAW_SOURCES

by_rule = quarantined_by_rule(
    {source: read_source(spark, table_in(params["tables"], contract.quarantine(source))) for source in RAW_SOURCES}
)
by_rule.show(100, truncate=False)
