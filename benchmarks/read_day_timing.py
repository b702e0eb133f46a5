"""Time `carousel.loader.read_day` on one day, in this process, with a cold or warm page cache; one JSON line.

    python -m benchmarks.read_day_timing --table /tmp/lb --day 2025-06-30 --cache cold --label after

The libraries the reader uses are imported first, so the time is the read's alone. `cold` drops
the page cache first (root only; refused otherwise). Run it from two checkouts, in turn, to compare
readers on the same table (docs/loader_benchmarks.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--day", required=True, help="yyyy-MM-dd")
    parser.add_argument("--cache", choices=("cold", "warm"), default="warm")
    parser.add_argument("--label", default="", help="a name for this side of a comparison")
    args = parser.parse_args()
    for module in ("numpy", "pyarrow", "pyarrow.dataset", "pyarrow.parquet", "deltalake"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # an older reader did without deltalake
    from benchmarks.loader import _drop_page_cache
    from carousel.loader import read_day

    if args.cache == "cold" and not _drop_page_cache():
        parser.exit(2, "cannot drop the page cache (root only)\n")
    started = time.perf_counter()
    host = read_day(args.table, args.day)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "label": args.label,
                "cache": args.cache,
                "seconds": round(seconds, 3),
                "customer_days": host.rows,
                "impressions": host.impression_count,
            }
        )
    )


if __name__ == "__main__":
    main()
