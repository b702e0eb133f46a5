"""The baseline model: features and Spark ML pipeline (`model`), its evaluation report (`report`) and the
MLflow run behind `carousel-train` (`run`)."""
