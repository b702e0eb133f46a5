"""Training input for the "Our choices for you" transformer: raw behaviour -> N-action histories."""

from __future__ import annotations

from carousel.config import HistoryConfig
from carousel.examples import build_training_examples
from carousel.schemas import ColumnTypeError, MissingColumnError, SchemaContractError

__all__ = [
    "HistoryConfig",
    "build_training_examples",
    "SchemaContractError",
    "MissingColumnError",
    "ColumnTypeError",
]
