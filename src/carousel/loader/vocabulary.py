"""`ItemVocabulary`: item id -> embedding index, read with delta-rs from `item_vocabulary_gold` (no Spark)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from carousel.contract import FIRST_VOCABULARY_VERSION, UNKNOWN_INDEX
from carousel.loader.delta_table import TrainingTableError, open_table, scan, table_uri

if TYPE_CHECKING:
    import torch

log = logging.getLogger("carousel")


@dataclass(frozen=True)
class ItemVocabulary:
    """Item id -> embedding index, from the pipeline's `item_vocabulary_gold` (see `carousel.vocabulary`).

    0 stays 0 (padding), an id the vocabulary does not know becomes 1, a known one its index (2, 3,
    ...). `num_embeddings` is the size an embedding table needs. `version` is the vocabulary's
    `vocabulary_version`: indices never change within a version, so a model records the version it
    was trained with and reads embeddings only through a vocabulary of that version.
    """

    item_ids: np.ndarray  # sorted, int32
    indices: np.ndarray  # aligned with item_ids, int32
    version: int = FIRST_VOCABULARY_VERSION

    @classmethod
    def read(
        cls,
        table_path: str | os.PathLike[str],
        version: int | None = None,
        storage_options: Mapping[str, str] | None = None,
    ) -> ItemVocabulary:
        """Read the vocabulary table (a path, a URI or `catalog.schema.table`, as `read_day` takes) with delta-rs.

        Raises:
            TrainingTableError: the table is empty, lacks a column, holds an id twice or more than one version.
        """
        import pyarrow as pa

        table = table_uri(table_path)
        columns = scan(
            open_table(table, version, storage_options),
            table,
            ["item_id", "item_index", "vocabulary_version"],
            label="vocabulary table",
        ).read_all()
        if columns.num_rows == 0:
            raise TrainingTableError(table, f"vocabulary table '{table}' has no rows")
        ids = columns["item_id"].cast(pa.int32()).to_numpy()
        indices = columns["item_index"].cast(pa.int32()).to_numpy()
        order = np.argsort(ids, kind="stable")
        ids, indices = ids[order], indices[order]
        if len(ids) > 1 and (np.diff(ids) == 0).any():
            raise TrainingTableError(table, f"vocabulary table '{table}' holds an item id more than once")
        versions = np.unique(columns["vocabulary_version"].cast(pa.int32()).to_numpy())
        if len(versions) != 1:
            raise TrainingTableError(table, f"vocabulary table '{table}' mixes versions {versions.tolist()}")
        log.info("vocabulary %s: version %d, %d items", table, versions[0], len(ids))
        return cls(ids, indices, int(versions[0]))

    @property
    def num_embeddings(self) -> int:
        return int(max(self.indices.max(initial=UNKNOWN_INDEX), UNKNOWN_INDEX)) + 1

    def lookup(self, item_ids: torch.Tensor) -> torch.Tensor:
        """The embedding indices of `item_ids` (any shape, on any device), as int32."""
        import torch

        known = torch.from_numpy(self.item_ids).to(item_ids.device)
        indices = torch.from_numpy(self.indices).to(item_ids.device)
        position = torch.searchsorted(known, item_ids).clamp_(max=len(known) - 1)
        found = known[position] == item_ids
        mapped = torch.where(found, indices[position], torch.full_like(item_ids, UNKNOWN_INDEX))
        return torch.where(item_ids == 0, item_ids, mapped).to(torch.int32)
