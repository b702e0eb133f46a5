"""The docs generator: the pipeline's table graph and column lineage, read from its files (docs/lineage.md)."""
