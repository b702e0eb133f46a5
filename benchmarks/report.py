"""Turn the benchmark's JSON lines into the tables and the plot of docs/benchmarks.md.

Only the part of docs/benchmarks.md between the two markers below is rewritten; the prose around
it (what was profiled, what changed) is kept as written.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.harness import fmt_seconds, gib, mib, ratio_text, seconds_of

START = "<!-- results:start -->"
END = "<!-- results:end -->"
PLOT = "benchmarks.png"


def load(results: Path) -> dict[tuple[str, str], dict]:
    """The newest record per (case, step)."""
    latest: dict[tuple[str, str], dict] = {}
    for line in results.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            latest[(record["case"], record["step"])] = record
    return latest


def _cost_rows(records: list[tuple[str, dict | None]], floor: dict | None, latest: dict | None = None) -> list[str]:
    header = (
        "| run | wall s | vs I/O floor | shuffle write MiB | shuffle read MiB | spill MiB | output MiB "
        "| JVM heap peak GiB | JVM RSS peak GiB | Python driver RSS MiB |"
    )
    rows = [header, "|" + "---|" * 10]
    for label, record in records:
        if record is None or "seconds" not in record:
            rows.append(f"| {label} | {fmt_seconds(record)} |  |  |  |  |  |  |  |  |")
            continue
        same_scale_floor = floor
        if latest is not None:  # each run against the floor of its own data
            same_scale_floor = _get(latest, f"{record['scale']}/floor/N1000")
        rows.append(
            f"| {label} | {record['seconds']:.1f} | {ratio_text(record['seconds'], seconds_of(same_scale_floor))} "
            f"| {mib(record['shuffle_write_bytes'])} | {mib(record['shuffle_read_bytes'])} "
            f"| {mib(record['spill_disk_bytes'])} | {mib(record['output_bytes'])} "
            f"| {gib(record.get('jvm_heap_peak_bytes'))} | {gib(record.get('jvm_rss_peak_bytes'))} "
            f"| {mib(record.get('python_rss_peak_bytes'))} |"
        )
    return rows


def _get(latest: dict, case: str, step: str = "build") -> dict | None:
    return latest.get((case, step))


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def _targets(latest: dict) -> list[str]:
    project = seconds_of(_get(latest, "large/project/N1000"))
    floor = seconds_of(_get(latest, "large/floor/N1000"))
    baseline_record = _get(latest, "large/baseline/N1000")
    baseline = seconds_of(baseline_record)
    if baseline_record and "timed_out_after_s" in baseline_record:
        baseline = float(baseline_record["timed_out_after_s"])  # a lower bound
    rebuild = seconds_of(_get(latest, "large/incremental/N1000", "state rebuild"))
    incremental = seconds_of(_get(latest, "large/incremental/N1000", "incremental day"))
    days14 = seconds_of(_get(latest, "base-28-days/project/N1000-14d"))
    days28 = seconds_of(_get(latest, "base-28-days/project/N1000-28d"))

    def check(value: float | None, limit: float, above: bool = False) -> bool | None:
        if value is None:
            return None
        return value >= limit if above else value <= limit

    lines = [
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| project <= 2x the I/O floor (largest scale) | {ratio_text(project, floor)} "
        f"| {_verdict(check(project / floor if project and floor else None, 2.0))} |",
        f"| baseline >= 5x the project (largest scale) | {ratio_text(baseline, project)}"
        f"{' (baseline stopped: lower bound)' if baseline_record and 'timed_out_after_s' in baseline_record else ''} "
        f"| {_verdict(check(baseline / project if baseline and project else None, 5.0, above=True))} |",
        f"| 2x impression days (14 -> 28) costs <= 1.3x | {ratio_text(days28, days14)} "
        f"| {_verdict(check(days28 / days14 if days28 and days14 else None, 1.3))} |",
        f"| one incremental day <= 0.1x a full state rebuild (largest scale) | {ratio_text(incremental, rebuild)} "
        f"| {_verdict(check(incremental / rebuild if incremental and rebuild else None, 0.1))} |",
    ]
    return lines


GROWTH = (
    ("2x customers (20k -> 40k)", "base/{a}/N1000", "base-2x-customers/{a}/N1000"),
    ("2x impression days (14 -> 28)", "base-28-days/{a}/N1000-14d", "base-28-days/{a}/N1000-28d"),
    ("2x actions per customer (900 -> 1800 a year)", "base/{a}/N1000", "base-2x-actions/{a}/N1000"),
    ("N = 100 -> 1000", "base/{a}/N100", "base/{a}/N1000"),
)


def _growth(latest: dict) -> list[str]:
    lines = ["| doubling | project | baseline | I/O floor |", "|---|---|---|---|"]
    for label, before, after in GROWTH:
        cells = []
        for approach in ("project", "baseline", "floor"):
            first = _get(latest, before.format(a=approach))
            second = _get(latest, after.format(a=approach))
            if seconds_of(first) is None or seconds_of(second) is None:
                cells.append("")
            else:
                cells.append(
                    f"{seconds_of(first):.0f} s -> {seconds_of(second):.0f} s "
                    f"({ratio_text(seconds_of(second), seconds_of(first))})"
                )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _plot(latest: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels, values, colours = [], [], []
    for label, case, step, colour in (
        ("I/O floor", "large/floor/N1000", "build", "#999999"),
        ("project", "large/project/N1000", "build", "#1f77b4"),
        ("baseline", "large/baseline/N1000", "build", "#d62728"),
        ("state rebuild", "large/incremental/N1000", "state rebuild", "#9467bd"),
        ("incremental day", "large/incremental/N1000", "incremental day", "#2ca02c"),
    ):
        record = _get(latest, case, step)
        if record is None:
            continue
        labels.append(label)
        values.append(record.get("seconds", record.get("timed_out_after_s", 0)))
        colours.append(colour)
    left.bar(labels, values, color=colours)
    left.set_ylabel("wall seconds (2 cores)")
    left.set_title("Largest scale: 100k customers, a year, 14 days")
    for index, value in enumerate(values):
        left.text(index, value, f"{value:.0f}", ha="center", va="bottom")
    left.tick_params(axis="x", rotation=20)

    width = 0.25
    for offset, (approach, colour) in enumerate(
        (("project", "#1f77b4"), ("baseline", "#d62728"), ("floor", "#999999"))
    ):
        ratios = []
        for _, before, after in GROWTH:
            first = seconds_of(_get(latest, before.format(a=approach)))
            second = seconds_of(_get(latest, after.format(a=approach)))
            ratios.append(second / first if first and second else 0.0)
        positions = [index + (offset - 1) * width for index in range(len(GROWTH))]
        right.bar(positions, ratios, width, label=approach if approach != "floor" else "I/O floor", color=colour)
    right.axhline(1.0, color="black", linewidth=0.5)
    right.axhline(2.0, color="black", linewidth=0.5, linestyle=":")
    right.set_xticks(range(len(GROWTH)))
    right.set_xticklabels(["2x customers", "2x days", "2x actions", "N 100->1000"])
    right.set_ylabel("cost after / cost before")
    right.set_title("How cost grows (20k customers)")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _tables(latest: dict) -> list[str]:
    floor = _get(latest, "large/floor/N1000")
    lines = ["### Largest scale: 100,000 customers, a year of history, 14 impression days", ""]
    lines += _cost_rows(
        [
            ("I/O floor", floor),
            ("project build", _get(latest, "large/project/N1000")),
            ("baseline (row_number per customer-day)", _get(latest, "large/baseline/N1000")),
            ("incremental: full state rebuild", _get(latest, "large/incremental/N1000", "state rebuild")),
            ("incremental: one day", _get(latest, "large/incremental/N1000", "incremental day")),
        ],
        floor,
    )
    lines += ["", "### Targets", ""] + _targets(latest)
    lines += ["", "### How cost grows (wall seconds, 20,000 customers unless doubled)", ""] + _growth(latest)
    lines += ["", "### Every run at 20,000 and 40,000 customers", ""]
    base_records = [
        (case, record)
        for (case, step), record in sorted(latest.items())
        if not case.startswith(("large", "tiny")) and step == "build"
    ]
    lines += _cost_rows(base_records, None, latest)
    sample = next(iter(latest.values()), {})
    lines += [
        "",
        f"Measured on {sample.get('measured_on', '?')}, {sample.get('cpus', '?')} cores "
        f"({sample.get('machine', '?')}); each run in its own Spark application (local[*], driver memory 10g, "
        "16 shuffle partitions, AQE on).",
        "",
        f"![wall time and growth]({PLOT})",
    ]
    return lines


def write_report(results: Path, out: Path) -> None:
    """Rewrite the results section of `out`/benchmarks.md and the plot from `results`."""
    latest = load(results)
    out.mkdir(parents=True, exist_ok=True)
    _plot(latest, out / PLOT)
    document = out / "benchmarks.md"
    text = document.read_text() if document.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    document.write_text(before + START + "\n" + "\n".join(_tables(latest)) + "\n" + END + after)
