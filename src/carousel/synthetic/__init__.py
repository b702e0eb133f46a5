"""Realistic raw inputs at any scale, generated lazily with native Spark expressions only.

Every random draw is a hash of (seed, stream, row key) mapped to [0, 1), so the rows depend on
the config alone: not on partitioning, task order, executor count or the session time zone.
Customer activity is lognormal (a few heavy users, many light ones), items follow a Zipf law
(id 1 is the most popular), and the dirty cases the pipeline must survive are appended as
extra rows, so the clean rows are the same whatever `dirty_rate` is.
"""

from carousel.synthetic.config import (
    ACTION_MIX,
    BAD_DAY_STRINGS,
    DIRTY_KINDS,
    EXTRA_COLUMN,
    SyntheticConfig,
)
from carousel.synthetic.rows import generate_raw

__all__ = ["ACTION_MIX", "BAD_DAY_STRINGS", "DIRTY_KINDS", "EXTRA_COLUMN", "SyntheticConfig", "generate_raw"]
