"""The local development harness: `spark-pipelines` runs on this machine (the runner), and a local Kafka broker."""
