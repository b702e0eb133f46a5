"""A table given as a relative path is named in SQL by its absolute path: Delta reads `delta.`path`` only so."""

from __future__ import annotations

import os
import threading

from carousel.storage import table_ref, table_version


def test_a_relative_path_is_named_absolute_and_a_catalog_name_as_it_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert table_ref("data/pipeline/warehouse/clicks_bronze") == (
        f"delta.`{os.path.join(str(tmp_path), 'data/pipeline/warehouse/clicks_bronze')}`"
    )
    assert table_ref("s3://bucket/warehouse/clicks_bronze") == "delta.`s3://bucket/warehouse/clicks_bronze`"
    assert table_ref("main.carousel.clicks_bronze") == "main.carousel.clicks_bronze"


def test_the_version_of_a_table_given_relative_is_read_from_another_thread(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spark.range(3).write.format("delta").save(str(tmp_path / "warehouse" / "numbers"))
    spark.range(2).write.format("delta").mode("append").save(str(tmp_path / "warehouse" / "numbers"))
    found = []
    reader = threading.Thread(target=lambda: found.append(table_version(spark, "warehouse/numbers")))
    reader.start()
    reader.join()
    assert found == [1]
