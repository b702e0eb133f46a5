"""What the check of a day text costs: the clicks of a race scale filtered by each form of the check.

    python benchmarks/day_check.py --scale race-100k [--forms none,cast,regex,positions,rule]

Each form runs in its own process (a fresh JVM, Spark's defaults, 12g driver): the clicks are
read with the contract schema, filtered by `customer_id > 0 AND <form>` and written to the
`noop` sink; one line per form gives the seconds and the rows kept. A profiling aid for the
rules' cost (docs/benchmarks.md, issue 14); `rule` is the project's `dt_parsable` as it is now.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from benchmarks import harness, race_cases, race_data, race_measure  # noqa: E402

FORMS = {
    "none": "TRUE",
    "cast": "try_cast(dt AS DATE) IS NOT NULL",
    "regex": "try_cast(dt AS DATE) IS NOT NULL AND regexp_like(dt, '^[0-9]{4}-[0-9]{2}-[0-9]{2}$')",
    "positions": (
        "try_cast(dt AS DATE) IS NOT NULL AND octet_length(dt) = 10 AND instr(dt, '-') = 5 "
        "AND locate('-', dt, 6) = 8 AND (dayofmonth(try_cast(dt AS DATE)) >= 10 OR locate('0', dt, 9) = 9)"
    ),
}
"""The forms measured besides the project's rule: nothing, the lenient cast, the cast with the shape regex, the
cast with position checks that allocate nothing."""


def predicate(form: str) -> str:
    """The SQL of a form; `rule` is the project's current `dt_parsable` rule of the clicks."""
    if form == "rule":
        from carousel.quality import RULES

        return RULES["clicks"]["dt_parsable"]
    return FORMS[form]


def measure(scale: str, form: str, data_dir: Path, driver_memory: str) -> dict:
    """Filter the scale's clicks by one form in this process; return seconds and rows kept."""
    from pyspark.sql import functions as F

    spark = race_measure.project_session("defaults", driver_memory, None, f"day check {form}")
    clicks = race_data.read_raw(spark, harness.raw_dir(data_dir, scale))["clicks"]
    kept = clicks.where(F.expr(f"customer_id > 0 AND ({predicate(form)})"))
    started = time.perf_counter()
    kept.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - started
    rows = kept.count()
    spark.stop()
    return {"scale": scale, "form": form, "seconds": round(seconds, 2), "rows_kept": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", required=True, choices=sorted(race_cases.SCALES))
    parser.add_argument("--forms", default=",".join([*FORMS, "rule"]), help="comma-separated forms")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--driver-memory", default=race_cases.DEFAULT_DRIVER_MEMORY)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    forms = args.forms.split(",")
    for form in forms:
        if form not in FORMS and form != "rule":
            parser.error(f"unknown form {form!r}; choose from {', '.join([*FORMS, 'rule'])}")
    if args.one:
        print(json.dumps(measure(args.scale, forms[0], args.data_dir, args.driver_memory)))
        return 0
    race_data.ensure_data(args.data_dir, args.scale, args.driver_memory)
    for form in forms:
        command = [sys.executable, __file__, "--one", "--scale", args.scale, "--forms", form]
        command += ["--data-dir", str(args.data_dir), "--driver-memory", args.driver_memory]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{form}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{args.scale} {form:>10}: {result['seconds']:6.1f} s  rows kept {result['rows_kept']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
