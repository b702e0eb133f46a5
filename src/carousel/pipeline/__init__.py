"""The declarative pipeline's side: dataset functions, settings, expectations, the local runner, lineage,
gold validation and run metrics."""
