"""The declarative pipeline's side: what ships to it (datasets, settings, expectations), its job tasks (gold step,
validation), the local runner and Kafka broker, and the lineage generator (layers: docs/design.md)."""
