# Databricks notebook source
# MAGIC %md
# MAGIC # The gold training data at a glance
# MAGIC
# MAGIC How long the customers' histories are, which actions they hold, and the order rate by carousel
# MAGIC position, over `training_examples_gold`: on Databricks a table name (e.g.
# MAGIC `main.carousel.training_examples_gold`), locally the table `make run` wrote.

# COMMAND ----------

from carousel.notebook import parameters, session

params = parameters(globals(), examples="data/pipeline/warehouse/training_examples_gold", history_length="1000")
spark = session(globals())

# COMMAND ----------

from carousel.baseline.metrics import profile_training_data
from carousel.baseline.plots import profile_figure
from carousel.storage import read_source

profile = profile_training_data(read_source(spark, params["examples"]), int(params["history_length"]))
print(f"{profile.customer_days:,} customer-days, {profile.impressions:,} impressions, {profile.orders:,} orders")
figure = profile_figure(profile)
figure
