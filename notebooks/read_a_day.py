# Databricks notebook source
# MAGIC %md
# MAGIC # One day of training input through the GPU loader
# MAGIC
# MAGIC `carousel.loader.DayLoader` reads a day of `training_examples_gold` with pyarrow (no Spark) and
# MAGIC hands out batches on the device. `examples` is the table's folder: locally the one `make run`
# MAGIC wrote; on Databricks the table's storage location (the loader reads paths, not table names yet).

# COMMAND ----------

from carousel.notebook import parameters

params = parameters(
    globals(),
    examples="data/pipeline/warehouse/training_examples_gold",
    day="",
    batch_size="4096",
    device="cpu",
)

# COMMAND ----------

import pyarrow.dataset as ds

from carousel.loader import DayLoader

day = params["day"] or max(
    ds.dataset(params["examples"], partitioning="hive").to_table(columns=["dt"])["dt"].to_pylist()
)
loader = DayLoader(
    params["examples"], days=[day], batch_size=int(params["batch_size"]), epochs=1, device=params["device"], seed=0
)
batch = next(iter(loader))
print(
    f"day {batch.day}: impressions {tuple(batch.impressions.shape)}, actions {tuple(batch.actions.shape)}, "
    f"action_types {tuple(batch.action_types.shape)}, labels {tuple(batch.labels.shape)}"
)
