"""Where a table lives: a path (local or a URI) or a catalog table name. Free of Spark, so the loader shares it."""

from __future__ import annotations

import os


def is_path(source: str) -> bool:
    """A source with a slash, a URI scheme or an existing directory is a path; anything else a table name."""
    return "/" in source or "://" in source or os.path.isdir(source)
