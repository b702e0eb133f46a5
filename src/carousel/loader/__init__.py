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

The reader needs no Spark: delta-rs (`deltalake`) opens a version of the Delta table, applies its
deletion vectors and resolves column-mapped names, from a local path, a cloud URI or a Unity
Catalog name (`catalog.schema.table`, read as `uc://` with credentials vended by Unity Catalog).

The package needs numpy and deltalake (with pyarrow); `DayLoader` needs torch (imported when first
used). It never imports Spark: `delta_table` opens the table, `host_day` reads a day, `device`
feeds the GPU, and `reference` is the reference model and training loop.
"""

from carousel.loader.delta_table import (
    GoldLayoutError,
    MissingDayError,
    MissingTableError,
    TableVersionError,
    TrainingTableError,
    UnsupportedTableFeatureError,
    latest_version,
    table_days,
    table_uri,
)
from carousel.loader.device import Batch, CustomerDayBatch, DayLoader, epoch_seed
from carousel.loader.host_day import HostDay, read_day
from carousel.loader.vocabulary import ItemVocabulary

__all__ = [
    "Batch",
    "CustomerDayBatch",
    "DayLoader",
    "GoldLayoutError",
    "HostDay",
    "ItemVocabulary",
    "MissingDayError",
    "MissingTableError",
    "TrainingTableError",
    "UnsupportedTableFeatureError",
    "TableVersionError",
    "epoch_seed",
    "latest_version",
    "read_day",
    "table_days",
    "table_uri",
]
