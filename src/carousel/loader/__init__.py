"""Feed `training_examples_gold` to PyTorch one day at a time: the day on the device once, batches gathered there.

The gold table holds one row per customer-day: the history (`actions`, `action_types`, N entries
each) once, and the items shown that day as aligned arrays (`item_ids`, `labels`, ...). A training
example is one impression, so a day of R customer-days and M impressions is read into five flat
arrays (`HostDay`), R*N*5 + M*9 bytes:

- `actions` [R, N] int32 and `action_types` [R, N] int8: the histories, once per customer-day;
- `impressions` [M] int32 (the shown item ids), `labels` [M] bool (`is_order`), and
  `history_row` [M] int32: the customer-day row of each impression.

`DayLoader` copies a day into one reused pinned host buffer and onto the device in one transfer,
then, per epoch, draws a permutation of the M impressions on the device and gathers each batch by
index: `actions[history_row[idx]]`. Nothing per sample runs in Python, and the next day is read on
a background thread while the current one is trained on.

The reader needs no Spark: `live_files` replays a Delta table's log (checkpoint + JSON commits)
to find the Parquet files of one `dt` partition, and refuses what it cannot read correctly
(deletion vectors, column mapping). Only local paths are supported.

The package needs numpy and pyarrow; `DayLoader` needs torch (imported when first used). It never
imports Spark: `delta_log` finds a day's files, `host_day` reads them, `device` feeds the GPU, and
`reference` is the reference model and training loop.
"""

from carousel.loader.delta_log import (
    DeltaLogError,
    GoldLayoutError,
    MissingDayError,
    TrainingTableError,
    UnsupportedTableFeatureError,
    latest_version,
    live_files,
    table_files,
)
from carousel.loader.device import Batch, CustomerDayBatch, DayLoader, ItemVocabulary, epoch_seed
from carousel.loader.host_day import HostDay, read_day

__all__ = [
    "Batch",
    "CustomerDayBatch",
    "DayLoader",
    "DeltaLogError",
    "GoldLayoutError",
    "HostDay",
    "ItemVocabulary",
    "MissingDayError",
    "TrainingTableError",
    "UnsupportedTableFeatureError",
    "epoch_seed",
    "latest_version",
    "live_files",
    "read_day",
    "table_files",
]
