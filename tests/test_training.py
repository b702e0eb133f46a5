"""The training loader hands every impression of a day once per epoch, with its own history, from live files only."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter

import pytest

torch = pytest.importorskip("torch")

from gold_tables import D1, delta_gold_day  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from carousel.contract import ITEM_VOCABULARY_GOLD  # noqa: E402
from carousel.gold import pack_training_examples  # noqa: E402
from carousel.loader import (  # noqa: E402
    DayLoader,
    GoldLayoutError,
    MissingDayError,
    MissingTableError,
    TableVersionError,
    TrainingTableError,
    UnsupportedTableFeatureError,
    read_day,
    table_days,
)

D2 = "2025-03-11"
N = 4
# Impressions per customer on each day: D1 has 23 (more than a few batches of 5), D2 has 7.
SHOWN_PER_CUSTOMER = {D1: {1: 7, 2: 5, 3: 6, 4: 1, 5: 4}, D2: {1: 3, 6: 4}}
HISTORY_DDL = "dt string, customer_id int, actions array<int>, action_types array<tinyint>"
SHOWN_DDL = "dt string, ranking_id string, customer_id int, position int, item_id int, is_order boolean"


def _history(day: str, customer: int) -> tuple[list[int], list[int]]:
    real = customer % (N + 1)  # customer 4 has a full history, customer 5 none
    day_index = 1 if day == D2 else 0
    actions = [customer * 100 + day_index * 10 + k for k in range(real)] + [0] * (N - real)
    return actions, [1 + (customer + k) % 3 for k in range(real)] + [0] * (N - real)


def _packed(spark):
    histories = [(day, c, *_history(day, c)) for day, shown in SHOWN_PER_CUSTOMER.items() for c in shown]
    shown_items = [
        (day, f"r{c}-{j // 3}", c, j % 3, 1000 * c + 10 * j + (day == D2), (c + j) % 3 == 0)
        for day, shown in SHOWN_PER_CUSTOMER.items()
        for c, count in shown.items()
        for j in range(count)
    ]
    return pack_training_examples(
        spark.createDataFrame(shown_items, SHOWN_DDL), spark.createDataFrame(histories, HISTORY_DDL)
    )


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory):
    """Gold tables: Delta, plain Parquet, overwrites and a checkpoint, deletion vectors, column mapping + a rename."""
    root = tmp_path_factory.mktemp("training")
    packed = _packed(spark).cache()
    paths = {name: str(root / name) for name in ("delta", "parquet", "versioned", "vectors", "mapping")}
    packed.write.format("delta").partitionBy("dt").save(paths["delta"])
    packed.write.partitionBy("dt").parquet(paths["parquet"])

    # versioned: v0 both days; v1 overwrites D1; v2 appends customer 7 to D2 (checkpoint at v2); v3 overwrites D2.
    versioned = paths["versioned"]
    packed.write.format("delta").partitionBy("dt").option("delta.checkpointInterval", "2").save(versioned)
    day_rows = {day: packed.where(F.col("dt") == day) for day in (D1, D2)}
    day_rows[D1].where("customer_id in (1, 2)").write.format("delta").mode("overwrite").option(
        "replaceWhere", f"dt = '{D1}'"
    ).save(versioned)
    day_rows[D2].where("customer_id = 6").withColumn("customer_id", F.lit(7)).write.format("delta").mode("append").save(
        versioned
    )
    day_rows[D2].where("customer_id = 1").write.format("delta").mode("overwrite").option(
        "replaceWhere", f"dt = '{D2}'"
    ).save(versioned)

    # vectors: DELETEs leave each file live with a deletion vector (one row of D2's two, two of D1's five).
    packed.coalesce(1).write.format("delta").partitionBy("dt").option("delta.enableDeletionVectors", "true").save(
        paths["vectors"]
    )
    spark.sql(f"DELETE FROM delta.`{paths['vectors']}` WHERE customer_id = 6")
    spark.sql(f"DELETE FROM delta.`{paths['vectors']}` WHERE dt = '{D1}' AND customer_id IN (2, 5)")

    # mapping: created with column mapping (Parquet columns get physical names col-<uuid>), then a column renamed.
    packed.withColumnRenamed("labels", "is_order").write.format("delta").partitionBy("dt").option(
        "delta.columnMapping.mode", "name"
    ).option("delta.minReaderVersion", "2").option("delta.minWriterVersion", "5").save(paths["mapping"])
    spark.sql(f"ALTER TABLE delta.`{paths['mapping']}` RENAME COLUMN is_order TO labels")
    packed.unpersist()
    return paths


def _gold(spark, path: str, version: int | None = None, fmt: str = "delta") -> list:
    reader = spark.read.format(fmt)
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path).collect()


def _examples(rows, day: str) -> Counter:
    """The gold rows of a day exploded in Python: one (item, label, actions, action_types) per impression."""
    return Counter(
        (item, label, tuple(row.actions), tuple(row.action_types))
        for row in rows
        if str(row.dt) == day  # Spark reads a Parquet directory's dt back as a date
        for item, label in zip(row.item_ids, row.labels, strict=True)
    )


def _batch_examples(batch) -> list[tuple]:
    return list(
        zip(
            batch.impressions.tolist(),
            batch.labels.tolist(),
            map(tuple, batch.actions.tolist()),
            map(tuple, batch.action_types.tolist()),
            strict=True,
        )
    )


def _by_pass(loader) -> dict[tuple[str, int], list[tuple]]:
    """Every batch's examples, per (day, epoch), in the order the loader gave them."""
    passes: dict[tuple[str, int], list[tuple]] = {}
    for batch in loader:
        passes.setdefault((batch.day, batch.epoch), []).extend(_batch_examples(batch))
    return passes


def test_every_impression_once_per_epoch_with_its_own_history(spark, tables):
    rows = _gold(spark, tables["delta"])
    passes = _by_pass(DayLoader(tables["delta"], [D2, D1], batch_size=5, epochs=2, device="cpu"))
    assert list(passes) == [(D2, 0), (D2, 1), (D1, 0), (D1, 1)]  # days in the given order, epochs within a day
    for (day, _), examples in passes.items():
        assert Counter(examples) == _examples(rows, day)
    assert len(passes[(D1, 0)]) == 23 and len(passes[(D2, 0)]) == 7


def test_a_plain_parquet_directory_is_refused_by_name(tables):
    with pytest.raises(MissingTableError, match="no Delta table at") as refused:
        read_day(tables["parquet"], D1)
    assert tables["parquet"] in str(refused.value)


def test_batches_have_the_models_shapes_and_dtypes(tables):
    batches = list(DayLoader(tables["delta"], [D1], batch_size=5, device="cpu"))
    assert [len(batch.labels) for batch in batches] == [5, 5, 5, 5, 3]
    batch = batches[0]
    assert batch.impressions.shape == (5,) and batch.impressions.dtype == torch.int32
    assert batch.actions.shape == (5, N) and batch.actions.dtype == torch.int32
    assert batch.action_types.shape == (5, N) and batch.action_types.dtype == torch.int8
    assert batch.labels.shape == (5,) and batch.labels.dtype == torch.bool
    assert {tensor.device.type for tensor in batch[2:]} == {"cpu"}


def test_a_seed_fixes_the_order_and_another_seed_changes_it(tables):
    def order(seed: int) -> list[list[tuple]]:
        return list(
            _by_pass(DayLoader(tables["delta"], [D1], batch_size=5, epochs=2, device="cpu", seed=seed)).values()
        )

    first, second = order(seed=3), order(seed=3)
    assert first == second
    assert first[0] != first[1]  # each epoch draws its own permutation
    assert order(seed=4) != first
    assert Counter(order(seed=4)[0]) == Counter(first[0])


def test_a_day_smaller_than_a_batch_gives_one_short_batch_or_none_with_drop_last(tables):
    short = list(DayLoader(tables["delta"], [D2, D1], batch_size=10, device="cpu"))
    assert [(batch.day, len(batch.labels)) for batch in short] == [(D2, 7), (D1, 10), (D1, 10), (D1, 3)]
    dropped = list(DayLoader(tables["delta"], [D2, D1], batch_size=10, device="cpu", drop_last=True))
    assert [(batch.day, len(batch.labels)) for batch in dropped] == [(D1, 10), (D1, 10)]


def test_read_day_gives_flat_arrays_with_a_history_row_per_impression(spark, tables):
    host = read_day(tables["delta"], D1)
    rows, impressions = 5, 23
    assert host.actions.shape == (rows, N) and host.actions.dtype == "int32"
    assert host.action_types.shape == (rows, N) and host.action_types.dtype == "int8"
    assert host.impressions.shape == host.labels.shape == host.history_row.shape == (impressions,)
    assert (host.impressions.dtype, host.labels.dtype, host.history_row.dtype) == ("int32", "bool", "int32")
    assert host.nbytes == rows * N * 5 + impressions * 9
    examples = Counter(
        (int(item), bool(label), tuple(host.actions[row].tolist()), tuple(host.action_types[row].tolist()))
        for item, label, row in zip(host.impressions, host.labels, host.history_row, strict=True)
    )
    assert examples == _examples(_gold(spark, tables["delta"]), D1)


def _host_examples(host) -> Counter:
    return Counter(
        (int(item), bool(label), tuple(host.actions[row].tolist()), tuple(host.action_types[row].tolist()))
        for item, label, row in zip(host.impressions, host.labels, host.history_row, strict=True)
    )


def test_every_version_reads_like_spark_overwrites_and_checkpoint_included(spark, tables):
    versioned = tables["versioned"]
    assert os.path.exists(os.path.join(versioned, "_delta_log", f"{2:020d}.checkpoint.parquet"))
    sizes = []
    for version in range(4):
        rows = _gold(spark, versioned, version)
        for day in (D1, D2):
            assert _host_examples(read_day(versioned, day, version=version)) == _examples(rows, day), (version, day)
        sizes.append(tuple(sum(_examples(rows, day).values()) for day in (D1, D2)))
    assert sizes == [(23, 7), (12, 7), (12, 11), (12, 3)]  # the fixture's history, worked out from its writes
    assert _host_examples(read_day(versioned, D2)) == _host_examples(read_day(versioned, D2, version=3))


def test_deleted_rows_of_a_table_with_deletion_vectors_are_not_read(spark, tables):
    vectors = tables["vectors"]
    with open(os.path.join(vectors, "_delta_log", f"{1:020d}.json")) as delete_commit:
        assert (
            '"deletionVector"' in delete_commit.read()
        )  # the DELETE wrote a deletion vector rather than rewriting the file
    rows = _gold(spark, vectors)
    assert sorted(r.customer_id for r in rows if r.dt == D1) == [1, 3, 4] and [
        r.customer_id for r in rows if r.dt == D2
    ] == [1]
    for day in (D1, D2):
        host = read_day(vectors, day)
        assert _host_examples(host) == _examples(rows, day)
    assert read_day(vectors, D1).rows == 3 and read_day(vectors, D2).impression_count == 3
    assert _host_examples(read_day(vectors, D2, version=0)) == _examples(_gold(spark, vectors, 0), D2)


def test_a_column_mapped_table_with_a_renamed_column_reads_exactly(spark, tables):
    mapping = tables["mapping"]
    with open(os.path.join(mapping, "_delta_log", f"{1:020d}.json")) as rename_commit:
        (metadata,) = [json.loads(line)["metaData"] for line in rename_commit if '"metaData"' in line]
    physical = {
        field["name"]: field["metadata"]["delta.columnMapping.physicalName"]
        for field in json.loads(metadata["schemaString"])["fields"]
    }
    assert physical["labels"].startswith("col-") and physical["actions"].startswith("col-")
    rows = _gold(spark, mapping)
    for day in (D1, D2):
        host = read_day(mapping, day)
        assert _host_examples(host) == _examples(rows, day)
        assert host.labels.any() and host.actions.any()  # not the NULLs/zeros of a reader that ignores the mapping
    (examples,) = _by_pass(DayLoader(mapping, [D2], batch_size=3, device="cpu")).values()
    assert Counter(examples) == _examples(rows, D2)


def test_the_loader_reads_the_latest_version_or_the_one_asked_for(spark, tables):
    versioned = tables["versioned"]
    for version in (None, 0, 2):
        rows = _gold(spark, versioned, version)
        loader = DayLoader(versioned, [D1, D2], batch_size=4, device="cpu", version=version)
        passes = _by_pass(loader)
        assert {day: Counter(examples) for (day, _), examples in passes.items()} == {
            day: _examples(rows, day) for day in (D1, D2)
        }, version
    assert sum(_examples(_gold(spark, versioned, 0), D1).values()) == 23
    assert sum(_examples(_gold(spark, versioned), D1).values()) == 12


def test_customer_day_batches_hold_each_history_once_with_all_its_impressions(spark, tables):
    rows = _gold(spark, tables["delta"])
    loader = DayLoader(tables["delta"], [D1, D2], epochs=2, device="cpu")
    seen: dict[tuple[str, int], Counter] = {}
    for batch in loader.customer_day_batches(rows_per_batch=2):
        assert batch.offsets.tolist()[0] == 0 and batch.offsets.tolist()[-1] == len(batch.impressions)
        assert batch.impression_row.tolist() == sorted(batch.impression_row.tolist())
        for row, (start, end) in enumerate(zip(batch.offsets[:-1].tolist(), batch.offsets[1:].tolist(), strict=True)):
            assert batch.impression_row[start:end].tolist() == [row] * (end - start)
            shown = tuple(zip(batch.impressions[start:end].tolist(), batch.labels[start:end].tolist(), strict=True))
            history = (tuple(batch.actions[row].tolist()), tuple(batch.action_types[row].tolist()))
            seen.setdefault((batch.day, batch.epoch), Counter())[(history, shown)] += 1
    expected = {
        day: Counter(
            ((tuple(r.actions), tuple(r.action_types)), tuple(zip(r.item_ids, r.labels, strict=True)))
            for r in rows
            if r.dt == day
        )
        for day in (D1, D2)
    }
    assert list(seen) == [(D1, 0), (D1, 1), (D2, 0), (D2, 1)]
    assert all(counter == expected[day] for (day, _), counter in seen.items())


def test_a_missing_day_version_or_bad_day_is_named(tables):
    with pytest.raises(MissingDayError, match=r"has no data for day dt=2025-03-12") as missing:
        read_day(tables["delta"], "2025-03-12")
    assert tables["delta"] in str(missing.value)
    with pytest.raises(TableVersionError, match=r"has versions 0\.\.3; there is no version 9"):
        read_day(tables["versioned"], D1, version=9)
    with pytest.raises(TrainingTableError, match='day "2025-03-10\' OR true --" .* is not a date yyyy-MM-dd'):
        read_day(tables["delta"], "2025-03-10' OR true --")
    with pytest.raises(MissingTableError, match="no Delta table at") as absent:
        read_day(os.path.join(tables["delta"], "nowhere"), D1)
    assert "nowhere" in str(absent.value)


def test_a_reader_feature_delta_rs_lacks_is_refused_by_name(tmp_path):
    delta_gold_day(tmp_path, [1], [[1, 0]], [[1, 0]], [[5]], [[True]])
    protocol = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["futureFeature"]}
    protocol["writerFeatures"] = protocol["readerFeatures"]
    (tmp_path / "_delta_log" / f"{1:020d}.json").write_text(json.dumps({"protocol": protocol}) + "\n")
    with pytest.raises(
        UnsupportedTableFeatureError, match="cannot read: .*'futureFeature' is not supported"
    ) as refused:
        read_day(tmp_path, D1)
    assert str(tmp_path) in str(refused.value)
    assert read_day(tmp_path, D1, version=0).impressions.tolist() == [5]


def test_the_days_of_a_table_are_its_partitions_at_a_version(tables):
    assert table_days(tables["delta"]) == [D1, D2]
    assert table_days(tables["vectors"]) == [D1, D2]


def test_an_error_on_the_background_thread_reaches_the_iterator_at_its_day(tables):
    batches = iter(DayLoader(tables["delta"], [D2, "2025-03-12"], batch_size=10, device="cpu"))
    assert next(batches).day == D2
    with pytest.raises(MissingDayError, match="2025-03-12"):
        next(batches)


def test_rows_are_laid_out_in_customer_order_whatever_order_the_files_hold(tmp_path):
    delta_gold_day(
        tmp_path, [7, 3], [[7, 7, 0], [3, 0, 0]], [[1, 2, 0], [3, 0, 0]], [[70], [30, 31]], [[True], [False, True]]
    )
    delta_gold_day(tmp_path, [5], [[5, 5, 5]], [[2, 2, 2]], [[50, 51, 52]], [[False, False, True]])
    host = read_day(tmp_path, D1)
    assert host.actions.tolist() == [[3, 0, 0], [5, 5, 5], [7, 7, 0]]
    assert host.action_types.tolist() == [[3, 0, 0], [2, 2, 2], [1, 2, 0]]
    assert host.impressions.tolist() == [30, 31, 50, 51, 52, 70]
    assert host.labels.tolist() == [False, True, False, False, True, True]
    assert host.history_row.tolist() == [0, 0, 1, 1, 1, 2]


def test_a_table_not_partitioned_by_day_reads_the_same(tmp_path):
    delta_gold_day(
        tmp_path, [9, 8], [[9, 1], [8, 0]], [[1, 3], [2, 0]], [[90], [80, 81]], [[True], [False, False]], False
    )
    assert table_days(tmp_path) == [D1]
    host = read_day(tmp_path, D1)
    assert host.actions.tolist() == [[8, 0], [9, 1]] and host.impressions.tolist() == [80, 81, 90]
    assert host.history_row.tolist() == [0, 0, 1]
    with pytest.raises(MissingDayError, match="2025-03-11"):
        read_day(tmp_path, D2)


def test_a_customer_twice_in_a_day_is_refused(tmp_path):
    delta_gold_day(tmp_path, [4, 2], [[1, 0], [2, 0]], [[1, 0], [1, 0]], [[5], [6]], [[True], [False]])
    delta_gold_day(tmp_path, [4], [[3, 0]], [[1, 0]], [[7]], [[False]])
    with pytest.raises(GoldLayoutError, match=r"column 'customer_id': 1 customer\(s\) have more than one row .* \[4\]"):
        read_day(tmp_path, D1)


def test_a_history_not_of_n_entries_is_refused(tmp_path):
    delta_gold_day(tmp_path, [1, 2], [[1, 2, 0], [3, 0]], [[1, 1, 0], [2, 0]], [[5], [6]], [[True], [False]])
    with pytest.raises(GoldLayoutError, match=r"column 'actions': 1 row\(s\) hold \[2\] entries instead of N = 3"):
        read_day(tmp_path, D1)


def test_each_day_is_logged_with_its_size_and_times(tables, caplog):
    with caplog.at_level(logging.INFO, logger="carousel"):
        list(DayLoader(tables["delta"], [D1, D2], device="cpu"))
    messages = [record.getMessage() for record in caplog.records if record.getMessage().startswith("day ")]
    assert len(messages) == 2
    assert messages[0].startswith(f"day {D1}: 5 customer-days, 23 impressions") and "to cpu" in messages[0]


def test_a_vocabulary_maps_items_and_actions_to_embedding_indices_on_the_device(spark, tables, tmp_path):
    from carousel.loader import ItemVocabulary

    rows = _gold(spark, tables["delta"])
    # Known: customer 1's D1 actions and its first D1 shown item; everything else is unknown (1); 0 stays 0.
    known = {101: 7, 1000: 2, 102: 9}
    vocabulary_path = str(tmp_path / "vocabulary")
    spark.createDataFrame([(item, index, 1, 4) for item, index in known.items()], ITEM_VOCABULARY_GOLD.ddl()) \
        .write.format("delta").save(vocabulary_path)  # fmt: skip
    vocabulary = ItemVocabulary.read(vocabulary_path)
    assert vocabulary.item_ids.tolist() == [101, 102, 1000] and vocabulary.indices.tolist() == [7, 9, 2]
    assert vocabulary.version == 4
    assert vocabulary.num_embeddings == 10
    assert vocabulary.lookup(torch.tensor([[0, 101, 5], [1000, 102, 0]], dtype=torch.int32)).tolist() == [
        [0, 7, 1],
        [2, 9, 0],
    ]

    def mapped(item: int) -> int:
        return 0 if item == 0 else known.get(item, 1)

    expected = Counter(
        (mapped(item), label, tuple(map(mapped, actions)), types)
        for item, label, actions, types in _examples(rows, D1).elements()
    )
    loader = DayLoader(tables["delta"], [D1], batch_size=5, device="cpu", vocabulary=vocabulary)
    (examples,) = _by_pass(loader).values()
    assert Counter(examples) == expected
