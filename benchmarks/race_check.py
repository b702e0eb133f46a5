"""Do the project's and the competitor's outputs agree on the same data? (`race.py check`)"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from benchmarks.harness import (
    REPO,
    raw_dir,
)
from benchmarks.race_cases import Case
from benchmarks.race_competitor import competitor_env, competitor_request, ensure_competitor_venv
from benchmarks.race_data import ensure_data, read_raw
from benchmarks.race_measure import project_session

# ---------------------------------------------------------------------------------------------
# Do the outputs agree?


def run_check(args: argparse.Namespace) -> int:
    """Build both outputs on one scale, store them as Parquet, and compare them per customer-day and impression."""
    ensure_competitor_venv(Path(args.competitor), Path(args.competitor_venv))
    ensure_data(args.data_dir, args.scale, args.driver_memory)
    out = args.work_dir / f"check-{args.scale}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    case = Case(args.scale, "cli", "competitor")
    request = out / "competitor.request.json"
    request.write_text(json.dumps(competitor_request(case, args, out / "competitor.json", out / "competitor")))
    python = str(Path(args.competitor_venv) / "bin" / "python")
    subprocess.run(
        [python, str(REPO / "benchmarks" / "competitor_driver.py"), str(request)],
        check=True,
        env=competitor_env(Path(args.competitor_venv)),
    )
    facts = compare_outputs(args, out)
    (out / "agreement.json").write_text(json.dumps(facts, indent=2))
    print(json.dumps(facts, indent=2))
    return 0


# Long on purpose: both outputs read, aligned and compared in the order the check reports them.
def compare_outputs(args: argparse.Namespace, out: Path) -> dict:
    from pyspark.sql import functions as F

    import carousel
    from carousel.actions import unify_actions
    from carousel.config import HistoryConfig
    from carousel.history import build_histories, customer_days

    spark = project_session("cli", args.driver_memory, args.shuffle_partitions, f"race check {args.scale}")
    raw = read_raw(spark, raw_dir(args.data_dir, args.scale))
    theirs = spark.read.parquet(str(out / "competitor"))
    actions = unify_actions(raw["clicks"], raw["add_to_carts"], raw["orders"])
    ours = build_histories(actions, customer_days(raw["impressions"]), HistoryConfig())
    examples = carousel.build_training_examples(raw["impressions"], raw["clicks"], raw["add_to_carts"], raw["orders"])

    pairs = F.arrays_zip(F.col("actions").alias("item"), F.col("action_types").cast("array<int>").alias("type"))
    no_orders = F.filter(pairs, lambda pair: pair["type"] != 3)
    theirs_days = theirs.select(
        F.date_format("as_of_date", "yyyy-MM-dd").alias("dt"),
        F.col("customer_id").cast("int").alias("customer_id"),
        pairs.alias("theirs"),
        no_orders.alias("theirs_no_orders"),
    ).dropDuplicates(["dt", "customer_id"])
    ours_days = ours.select("dt", "customer_id", pairs.alias("ours"), no_orders.alias("ours_no_orders"))
    joined = theirs_days.join(ours_days, ["dt", "customer_id"], "full_outer")
    differ = F.col("ours") != F.col("theirs")
    beyond_orders = differ & (F.col("ours_no_orders") != F.col("theirs_no_orders"))
    full = ~F.exists("ours", lambda pair: pair["type"] == 0)  # N real actions: the cut at N decides
    counts = (
        joined.agg(
            F.count("*").alias("customer_days"),
            F.count_if(F.col("ours").isNull()).alias("only_competitor"),
            F.count_if(F.col("theirs").isNull()).alias("only_project"),
            F.count_if(F.col("ours") == F.col("theirs")).alias("identical"),
            F.count_if(differ).alias("differing"),
            F.count_if(differ & (F.sort_array("ours") == F.sort_array("theirs"))).alias("same_actions_other_order"),
            F.count_if(differ & ~beyond_orders).alias("same_once_orders_are_left_out"),
            F.count_if(beyond_orders).alias("differ_beyond_orders"),
            F.count_if(beyond_orders & full).alias("differ_beyond_orders_with_n_actions"),
            F.count_if(F.exists("ours", lambda pair: pair["type"] == 3)).alias("histories_with_orders"),
        )
        .first()
        .asDict()
    )
    differing = joined.where(F.col("ours") != F.col("theirs")).orderBy("dt", "customer_id").limit(1).collect()
    example = None
    if differing:
        row = differing[0]
        ours_list = [(p["item"], p["type"]) for p in row["ours"]]
        theirs_list = [(p["item"], p["type"]) for p in row["theirs"]]
        first = next(i for i, (a, b) in enumerate(zip(ours_list, theirs_list, strict=True)) if a != b)
        example = {
            "dt": row["dt"],
            "customer_id": row["customer_id"],
            "first_difference_at": first,
            "project": ours_list[first : first + 5],
            "competitor": theirs_list[first : first + 5],
        }
    per_impression = (
        theirs.select("ranking_id", F.size("impressions").alias("theirs"))
        .join(examples.groupBy("ranking_id").agg(F.count("*").alias("ours")), "ranking_id", "full_outer")
        .agg(
            F.count("*").alias("impression_rows"),
            F.sum("theirs").alias("competitor_exploded_rows"),
            F.sum("ours").alias("project_example_rows"),
            F.count_if(F.col("theirs").eqNullSafe(F.col("ours")) == F.lit(False)).alias("rows_differing"),
        )
        .first()
        .asDict()
    )
    spark.stop()
    return {"scale": args.scale, "per_customer_day": counts, "per_impression": per_impression, "example": example}
