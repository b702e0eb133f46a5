"""Small `training_examples_gold` tables written with deltalake, without Spark, for the loader's tests."""

from __future__ import annotations

import pyarrow as pa
from deltalake import write_deltalake

D1 = "2025-03-10"


def delta_gold_day(directory, customer_ids, actions, action_types, item_ids, labels, partitioned: bool = True) -> None:
    """Append one file of day D1 to a Delta gold table (the loader's columns), written with deltalake (no Spark)."""
    columns = {
        "dt": pa.array([D1] * len(actions), pa.string()),
        "customer_id": pa.array(customer_ids, pa.int32()),
        "actions": pa.array(actions, pa.list_(pa.int32())),
        "action_types": pa.array(action_types, pa.list_(pa.int8())),
        "item_ids": pa.array(item_ids, pa.list_(pa.int32())),
        "labels": pa.array(labels, pa.list_(pa.bool_())),
    }
    write_deltalake(str(directory), pa.table(columns), partition_by=["dt"] if partitioned else None, mode="append")
