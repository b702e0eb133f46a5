"""The competitor's side of the race: its own virtual environment, its commit, the request its driver reads."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from benchmarks.harness import (
    REPO,
    raw_dir,
)
from benchmarks.race_cases import COMPETITOR_CASES, SCALES, Case, window_start
from benchmarks.race_data import raw_schemas_json
from benchmarks.race_measure import spark_conf

# ---------------------------------------------------------------------------------------------
# The competitor's process


def competitor_env(venv: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SPARK_HOME", "VIRTUAL_ENV")}
    env["TZ"] = "UTC"
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = str(venv / "bin" / "python")
    return env


def ensure_competitor_venv(checkout: Path, venv: Path) -> None:
    """Create or check the competitor's virtual environment (idempotent)."""
    subprocess.run(["bash", str(REPO / "benchmarks" / "competitor.sh"), str(checkout), str(venv)], check=True)


def competitor_commit(checkout: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        )
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    return done.stdout.strip()


def competitor_request(case: Case, args: argparse.Namespace, record_out: Path, output_dir: Path | None = None) -> dict:
    """What `competitor_driver.py` needs for one case, as a JSON-able dict."""
    return {
        "checkout": str(Path(args.competitor).resolve()),
        "raw_dir": str(raw_dir(args.data_dir, case.scale).resolve()),
        "schemas": raw_schemas_json(),
        "conf": spark_conf(case.settings, args.driver_memory, args.shuffle_partitions),
        "explode": COMPETITOR_CASES[case.kind],
        "window_start": window_start(SCALES[case.scale], case.impression_days),
        "app_name": f"race {case.name}",
        "metrics_dir": str(REPO / "benchmarks"),
        "record_out": str(record_out),
        "output_dir": str(output_dir) if output_dir else None,
    }
