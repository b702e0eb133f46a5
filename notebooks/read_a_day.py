# Databricks notebook source
# MAGIC %md
# MAGIC # One day of training input through the GPU loader
# MAGIC
# MAGIC `carousel.loader.DayLoader` reads a day of `training_examples_gold` with delta-rs (no Spark) and
# MAGIC hands out batches on the device. `examples` is the table: on Databricks its name (e.g.
# MAGIC `main.carousel.training_examples_gold`, read through Unity Catalog as `uc://`; the schema needs
# MAGIC `EXTERNAL USE SCHEMA` for you), locally the folder `make run` wrote.

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

from carousel.loader import DayLoader, table_days

day = params["day"] or table_days(params["examples"])[-1]
loader = DayLoader(
    params["examples"], days=[day], batch_size=int(params["batch_size"]), epochs=1, device=params["device"], seed=0
)
batch = next(iter(loader))
print(
    f"day {batch.day}: impressions {tuple(batch.impressions.shape)}, actions {tuple(batch.actions.shape)}, "
    f"action_types {tuple(batch.action_types.shape)}, labels {tuple(batch.labels.shape)}"
)
