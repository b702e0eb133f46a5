"""The race benchmark's pure parts: scales, plans, settings, records and the report. No Spark runs here."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest

from benchmarks import race, race_cases, race_measure, race_report
from benchmarks.harness import MIB
from benchmarks.race import Case


def test_the_race_data_is_the_issues_data() -> None:
    data = race_cases.RACE_DATA
    assert (data.customers, data.window_days, data.history_days) == (100_000, 14, 380)
    assert data.actions_per_customer_year == 900.0
    assert data.action_mix == {"clicks": 88.0, "add_to_carts": 10.8, "orders": 1.2}
    assert (data.items, data.zipf_exponent, data.items_per_impression) == (200_000, 1.3, 10)
    assert (data.login_rate, data.login_activity_exponent, data.login_probability_cap) == (0.1, 1.0, 0.9)
    assert data.dirty_rate == 0.0 and data.late_event_rate == 0.0
    assert race_cases.SCALES["race-tiny"].customers <= 2_000
    assert race_cases.SCALES["race-100k-heavy"].heavy_customer_share > 0
    assert race_cases.SCALES["race-100k-heavy"].heavy_actions_per_year >= 10_000
    assert race_cases.SCALES["race-100k-2x-actions"].actions_per_customer_year == 2 * data.actions_per_customer_year
    assert race_cases.SCALES["race-100k-28-days"].window_days == 2 * data.window_days


def test_a_full_scale_runs_every_case_under_each_settings_floors_first_competitor_last() -> None:
    cases = race_cases.plan("race-tiny", ["defaults", "cli"])
    assert len(cases) == 2 * len(race_cases.CASES)
    assert len({case.name for case in cases}) == len(cases)
    for profile in ("defaults", "cli"):
        kinds = [case.kind for case in cases if case.settings == profile]
        assert set(kinds) == set(race_cases.CASES)
        assert kinds[:3] == list(race_cases.FLOOR_CASES)
        assert set(kinds[-2:]) == set(race_cases.COMPETITOR_CASES)
    assert cases[0].name == "race-tiny/defaults/floor-scan"
    assert [case.is_competitor for case in cases].count(True) == 4


def test_growth_scales_run_only_what_their_ratio_needs() -> None:
    days = race_cases.plan("race-100k-28-days", ["cli"])
    assert [(case.kind, case.impression_days) for case in days] == [
        ("project-per-customer-day", 14),
        ("project-per-customer-day", 28),
        ("project-per-impression", 14),
        ("project-per-impression", 28),
    ]
    assert days[0].name == "race-100k-28-days/cli/project-per-customer-day-14d"
    actions = race_cases.plan("race-100k-2x-actions", ["defaults"])
    assert {case.kind for case in actions} == {
        "floor-collect-sort",
        "project-per-customer-day",
        "project-per-impression",
    }


def test_a_plan_can_be_narrowed_and_refuses_unknown_names() -> None:
    cases = race_cases.plan("race-10k", ["cli"], ["competitor", "project-per-customer-day"])
    assert [case.kind for case in cases] == ["project-per-customer-day", "competitor"]
    for bad in (("race-1m", ["cli"], None), ("race-10k", ["fast"], None), ("race-10k", ["cli"], ["project"])):
        with pytest.raises(ValueError):
            race_cases.plan(*bad)


def test_window_start_keeps_the_last_k_days() -> None:
    config = race_cases.SCALES["race-100k-28-days"]
    assert race_cases.window_start(config, None) is None
    assert race_cases.window_start(config, 28) == config.window_start.isoformat()
    assert race_cases.window_start(config, 14) == "2025-06-17"  # 2025-06-30 and the 13 days before it


def test_settings_profiles() -> None:
    defaults = race_measure.spark_conf("defaults", "12g")
    assert defaults["spark.driver.memory"] == "12g"
    assert "spark.sql.shuffle.partitions" not in defaults and "spark.sql.adaptive.enabled" not in defaults
    cli = race_measure.spark_conf("cli", "8g")
    assert cli["spark.sql.shuffle.partitions"] == str(race_measure.cli_shuffle_partitions()) == "8"
    assert cli["spark.sql.session.timeZone"] == "UTC" and cli["spark.sql.adaptive.enabled"] == "true"
    assert "spark.sql.extensions" not in cli  # the competitor's session has no Delta
    assert race_measure.spark_conf("cli", "8g", 32)["spark.sql.shuffle.partitions"] == "32"
    for conf in (defaults, cli):
        assert conf["spark.ui.enabled"] == "true"  # the metrics read the status API
    with pytest.raises(ValueError):
        race_measure.spark_conf("fast", "8g")


def _args(tmp_path: Path) -> Namespace:
    return Namespace(
        competitor=tmp_path / "competitor-src",
        competitor_venv=tmp_path / "venv",
        data_dir=tmp_path / "bench",
        driver_memory="12g",
        shuffle_partitions=None,
    )


def test_a_competitor_case_runs_the_driver_in_its_own_venv_without_the_project_on_its_path(tmp_path) -> None:
    case = Case("race-tiny", "defaults", "competitor-exploded", 7)
    command, env = race.case_command(case, _args(tmp_path), tmp_path / "case.json")
    assert command[0] == str(tmp_path / "venv" / "bin" / "python")
    assert command[1].endswith("benchmarks/competitor_driver.py")
    request = json.loads(Path(command[2]).read_text())
    assert request["explode"] is True
    assert request["window_start"] == "2025-06-24"
    assert request["raw_dir"].endswith("bench/race-tiny/raw")
    assert request["conf"]["spark.driver.memory"] == "12g"
    assert set(request["schemas"]) == {"impressions", "clicks", "add_to_carts", "orders"}
    assert "PYTHONPATH" not in env and env["TZ"] == "UTC"

    command, env = race.case_command(Case("race-tiny", "cli", "floor-scan"), _args(tmp_path), tmp_path / "x.json")
    assert command[1].endswith("benchmarks/race.py") and command[2] == "case"
    assert "--impression-days" not in command and "src" in env["PYTHONPATH"]


def test_a_record_carries_the_case_its_data_and_the_measurements() -> None:
    case = Case("race-10k", "cli", "competitor")
    record = race.make_record(case, {"seconds": 12.5}, {"competitor_commit": "c7bc63c"})
    assert record["case"] == "race-10k/cli/competitor"
    assert record["customers"] == 10_000 and record["seconds"] == 12.5
    assert record["kind"] == "competitor" and record["settings"] == "cli"
    assert record["competitor_commit"] == "c7bc63c" and "measured_on" in record


def _records(seconds: dict[str, float]) -> dict[str, dict]:
    records = {}
    for name, value in seconds.items():
        scale, settings, kind = name.split("/")
        days = None
        if kind.endswith("d") and kind.rsplit("-", 1)[-1][:-1].isdigit():
            kind, days = kind.rsplit("-", 1)[0], int(kind.rsplit("-", 1)[-1][:-1])
        case = Case(scale, settings, kind, days)
        assert case.name == name
        records[name] = race.make_record(
            case, {"seconds": value, "shuffle_write_bytes": 2 * MIB, "spark_version": "4.2.0"}
        )
    return records


HAND_WRITTEN = {
    "race-100k/cli/competitor": 300.0,
    "race-100k/cli/competitor-exploded": 400.0,
    "race-100k/cli/project-per-customer-day": 100.0,
    "race-100k/cli/floor-collect-sort": 80.0,
    "race-100k/cli/project-per-impression": 150.0,
    "race-10k/cli/competitor": 40.0,
    "race-10k/cli/competitor-exploded": 50.0,
    "race-10k/cli/project-per-impression": 20.0,
    "race-100k-2x-actions/cli/project-per-customer-day": 205.0,
    "race-100k-28-days/cli/project-per-customer-day-14d": 100.0,
    "race-100k-28-days/cli/project-per-customer-day-28d": 140.0,
}


def test_the_ratio_table_divides_each_case_by_the_competitor_and_the_floor() -> None:
    table = race_report.case_table(_records(HAND_WRITTEN), "race-100k", "cli")
    rows = {line.split(" | ")[0].strip("| "): line for line in table[2:]}
    assert list(rows) == [
        "competitor",
        "competitor-exploded",
        "project-per-customer-day",
        "project-per-impression",
        "floor-collect-sort",
    ]
    assert "| 100.0 | 0.33x | 0.25x | 1.25x | 2 |" in rows["project-per-customer-day"]
    assert "| 300.0 | 1.00x | 0.75x | 3.75x |" in rows["competitor"]


def test_targets_and_growth_verdicts() -> None:
    rows = {name: (value, verdict) for name, value, verdict in race_report.target_rows(_records(HAND_WRITTEN), "cli")}
    by_start = {name.split(" (")[0]: row for name, row in rows.items()}
    assert by_start["per customer-day >= 3x faster than the competitor"] == (pytest.approx(3.0), "met")
    assert by_start["per customer-day <= 1.25x the collect-sort floor"] == (pytest.approx(1.25), "met")
    exploded = next(row for name, row in by_start.items() if "competitor exploded" in name)
    assert exploded == (pytest.approx(2.5), "met")
    actions = next(row for name, row in rows.items() if name.startswith("2x actions") and "customer-day" in name)
    assert actions == (pytest.approx(205 / 100), "met")
    days = next(row for name, row in rows.items() if name.startswith("2x impression days") and "customer-day" in name)
    assert days == (pytest.approx(1.4), "MISSED")
    assert race_report.target_rows({}, "defaults")[0][1:] == (None, "not run")


def test_the_report_rewrites_only_its_own_section(tmp_path) -> None:
    results = tmp_path / "race.jsonl"
    old = _records({"race-10k/cli/competitor": 99.0})
    new = _records(HAND_WRITTEN)
    failed = race.make_record(Case("race-10k", "defaults", "competitor"), {"failed_exit_code": 1})
    lines = [*old.values(), *new.values(), failed]
    results.write_text("".join(json.dumps(record) + "\n" for record in lines))
    assert race_report.load(results)["race-10k/cli/competitor"]["seconds"] == 40.0  # the newest line wins

    markdown = tmp_path / "benchmarks.md"
    markdown.write_text("# Benchmarks\n\n## Rerun it\n\nkept as written\n")
    race_report.write_report(results, markdown)
    first = markdown.read_text()
    assert first.startswith("# Benchmarks\n\n## Rerun it\n\nkept as written\n")
    assert race_report.SECTION in first and race_report.START in first and race_report.END in first
    assert "| project-per-customer-day | 100.0 | 0.33x | 0.25x | 1.25x |" in first
    assert "failed (exit 1)" in first
    markdown.write_text(first + "\n## After\n\nalso kept\n")
    race_report.write_report(results, markdown)
    second = markdown.read_text()
    assert second == first + "\n## After\n\nalso kept\n"  # same records, same section; the rest untouched


def test_a_stage_line_reads_wall_from_first_task_to_completion_and_sums_its_tasks():
    from benchmarks.stages import stage_line

    stage = {
        "stageId": 6,
        "numTasks": 21,
        "firstTaskLaunchedTime": "2026-11-30T13:52:00.500GMT",
        "completionTime": "2026-11-30T13:53:35.600GMT",
        "executorRunTime": 188_800,
        "executorCpuTime": 157_100_000_000,
        "shuffleWriteBytes": 1317 * 1024 * 1024,
        "shuffleReadBytes": 0,
        "diskBytesSpilled": 0,
    }
    assert stage_line(stage) == (
        "stage   6  tasks   21  wall   95.1 s  task  188.8 s  cpu  157.1 s"
        "  shuffle write    1317 MiB  read       0 MiB  spill     0 MiB"
    )
