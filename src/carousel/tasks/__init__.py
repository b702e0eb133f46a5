"""The daily job's tasks after the pipeline: `carousel-gold` (the gold step) and `carousel-validate` (the checks)."""
