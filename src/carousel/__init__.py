"""Training input for the "Our choices for you" transformer: raw behaviour -> N-action histories.

The public names below are imported on first use (PEP 562), so the training side
(`carousel.loader`, `carousel.loader.reference`) runs on a GPU box that has torch and pyarrow
but no Spark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carousel.config import HistoryConfig
    from carousel.examples import build_training_examples
    from carousel.schemas import ColumnTypeError, MissingColumnError, SchemaContractError

_EXPORTS = {
    "HistoryConfig": "carousel.config",
    "build_training_examples": "carousel.examples",
    "SchemaContractError": "carousel.schemas",
    "MissingColumnError": "carousel.schemas",
    "ColumnTypeError": "carousel.schemas",
}

__all__ = [
    "HistoryConfig",
    "build_training_examples",
    "SchemaContractError",
    "MissingColumnError",
    "ColumnTypeError",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'carousel' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
