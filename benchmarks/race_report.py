"""The race section of docs/benchmarks.md: the cases' tables, the growth and the targets' verdicts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import (
    fmt_ratio,
    fmt_seconds,
    gib,
    mib,
    ratio,
    seconds_of,
)
from benchmarks.race_cases import (
    CASES,
    COMPETITOR_CASES,
    FLOOR_REFERENCE,
    GROWTH_BASE,
    RACE_DATA,
    SCALES,
    SETTINGS,
    Case,
    scale_cases,
)

# ---------------------------------------------------------------------------------------------
# Reporting

START = "<!-- race:start -->"
END = "<!-- race:end -->"
SECTION = "## Against the best public solution"


@dataclass(frozen=True)
class Target:
    """A target of the issue: `case` against `reference` on `scale`.

    `faster`: the reference's seconds over the case's must be at least `bound`;
    otherwise the case's seconds over the reference's must be at most `bound`.
    """

    name: str
    scale: str
    case: str
    reference: str
    bound: float
    faster: bool


TARGETS = (
    Target(
        name="per customer-day >= 3x faster than the competitor",
        scale="race-100k",
        case="project-per-customer-day",
        reference="competitor",
        bound=3.0,
        faster=True,
    ),
    Target(
        name="per customer-day <= 1.25x the collect-sort floor",
        scale="race-100k",
        case="project-per-customer-day",
        reference=FLOOR_REFERENCE,
        bound=1.25,
        faster=False,
    ),
    Target(
        name="per impression >= 2x faster than the competitor exploded (same rows: one per shown item)",
        scale="race-10k",
        case="project-per-impression",
        reference="competitor-exploded",
        bound=2.0,
        faster=True,
    ),
    Target(
        name="per impression >= 2x faster than the competitor's default (one row per impression row)",
        scale="race-10k",
        case="project-per-impression",
        reference="competitor",
        bound=2.0,
        faster=True,
    ),
)
GROWTH_BOUNDS = {"2x actions": 2.1, "2x impression days": 1.3}


def load(results: Path) -> dict[str, dict]:
    """The newest record per case name."""
    latest: dict[str, dict] = {}
    if results.exists():
        for line in results.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                latest[record["case"]] = record
    return latest


def case_table(records: dict[str, dict], scale: str, settings: str) -> list[str]:
    """The table of one scale under one settings profile; ratios are this case's seconds over the reference's."""

    def at(kind: str, days: int | None = None) -> dict | None:
        return records.get(Case(scale, settings, kind, days).name)

    competitor, exploded = seconds_of(at("competitor")), seconds_of(at("competitor-exploded"))
    floor = seconds_of(at(FLOOR_REFERENCE))
    lines = [
        "| case | seconds | / competitor | / competitor exploded | / collect-sort floor | shuffle write MiB "
        "| JVM heap peak GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    present = [
        (kind, days)
        for kind, days in sorted(scale_cases(scale), key=lambda pair: (CASES.index(pair[0]), pair[1] or 0))
        if at(kind, days) is not None
    ]
    for kind, days in present:
        record = at(kind, days)
        seconds = seconds_of(record)
        label = kind + (f" ({days} of {SCALES[scale].window_days} days)" if days else "")
        lines.append(
            f"| {label} | {fmt_seconds(record)} | {fmt_ratio(ratio(seconds, competitor))} "
            f"| {fmt_ratio(ratio(seconds, exploded))} | {fmt_ratio(ratio(seconds, floor))} "
            f"| {mib(record.get('shuffle_write_bytes'))} | {gib(record.get('jvm_heap_peak_bytes'))} |"
        )
    return lines


def growth_rows(records: dict[str, dict], settings: str) -> list[tuple[str, str, float | None, float | None]]:
    """(what doubled, case, seconds before, seconds after) for each growth measurement."""
    rows = []
    for scale, base in GROWTH_BASE.items():
        for kind in ("project-per-customer-day", "project-per-impression", FLOOR_REFERENCE):
            before = seconds_of(records.get(Case(base, settings, kind).name))
            after = seconds_of(records.get(Case(scale, settings, kind).name))
            if before is not None or after is not None:
                rows.append(("2x actions (900 -> 1800 a year)", kind, before, after))
    scale = "race-100k-28-days"
    full = SCALES[scale].window_days
    for kind in ("project-per-customer-day", "project-per-impression"):
        before = seconds_of(records.get(Case(scale, settings, kind, full // 2).name))
        after = seconds_of(records.get(Case(scale, settings, kind, full).name))
        if before is not None or after is not None:
            rows.append((f"2x impression days ({full // 2} -> {full})", kind, before, after))
    return rows


def _verdict(value: float | None, bound: float, at_least: bool) -> str:
    if value is None:
        return "not run"
    return "met" if (value >= bound if at_least else value <= bound) else "MISSED"


def target_rows(records: dict[str, dict], settings: str) -> list[tuple[str, float | None, str]]:
    """(target, measured ratio, verdict) per target and growth bound, under one settings profile."""
    rows = []
    for target in TARGETS:
        seconds = seconds_of(records.get(Case(target.scale, settings, target.case).name))
        reference = seconds_of(records.get(Case(target.scale, settings, target.reference).name))
        value = ratio(reference, seconds) if target.faster else ratio(seconds, reference)
        rows.append((f"{target.name} ({target.scale})", value, _verdict(value, target.bound, target.faster)))
    for what, kind, before, after in growth_rows(records, settings):
        if kind == FLOOR_REFERENCE:
            continue
        bound = next(bound for prefix, bound in GROWTH_BOUNDS.items() if what.startswith(prefix))
        value = ratio(after, before)
        rows.append((f"{what}, {kind}: <= {bound}x", value, _verdict(value, bound, at_least=False)))
    return rows


def _scale_line(scale: str) -> str:
    config = SCALES[scale]
    changes = [
        f"{label} {getattr(config, name):,g}"
        for name, label in (
            ("window_days", "impression days"),
            ("actions_per_customer_year", "actions a customer-year"),
            ("heavy_customer_share", "heavy customers' share"),
        )
        if getattr(config, name) != getattr(RACE_DATA, name)
    ]
    if config.heavy_customer_share:
        changes.append(f"a heavy customer acts {config.heavy_actions_per_year:,g} times a year")
    return f"| {scale} | {config.customers:,} | {', '.join(changes) or 'none'} |"


def render(records: dict[str, dict]) -> str:
    """The generated part of the race section, from the newest record of every case."""
    scales = [scale for scale in SCALES if any(record.get("scale") == scale for record in records.values())]
    profiles = [profile for profile in SETTINGS if any(r.get("settings") == profile for r in records.values())]
    lines = ["### Race data sets", "", "| scale | customers | differs from the issue's data by |", "|---|---|---|"]
    lines += [_scale_line(scale) for scale in SCALES]
    lines.append("")
    if not records:
        return "\n".join([*lines, "No race has been run yet.", ""])
    lines += ["### Race targets", ""]
    for profile in profiles:
        lines += [f"Settings `{profile}`:", "", "| target | measured | verdict |", "|---|---|---|"]
        rows = target_rows(records, profile)
        lines += [f"| {name} | {fmt_ratio(value)} | {verdict} |" for name, value, verdict in rows]
        lines.append("")
    lines += ["### Race growth", "", "| settings | doubling | case | before s | after s | ratio |"]
    lines.append("|---|---|---|---|---|---|")
    growth = [(profile, row) for profile in profiles for row in growth_rows(records, profile)]
    for profile, (what, kind, before, after) in growth:
        lines.append(
            f"| {profile} | {what} | {kind} | {'' if before is None else f'{before:.1f}'} "
            f"| {'' if after is None else f'{after:.1f}'} | {fmt_ratio(ratio(after, before))} |"
        )
    if not growth:
        lines.append("| | not run yet | | | | |")
    lines.append("")
    for scale in scales:
        config = SCALES[scale]
        lines += [f"### {scale}: {config.customers:,} customers, {config.window_days} impression days", ""]
        for profile in profiles:
            if any(r.get("scale") == scale and r.get("settings") == profile for r in records.values()):
                lines += [f"Settings `{profile}`:", "", *case_table(records, scale, profile), ""]
    stamps = sorted({(r.get("measured_on"), r.get("cpus"), r.get("machine")) for r in records.values()}, key=str)
    versions = sorted(
        {(r["kind"] in COMPETITOR_CASES, r["spark_version"]) for r in records.values() if r.get("spark_version")}
    )
    commits = sorted({r["competitor_commit"] for r in records.values() if r.get("competitor_commit")})
    memories = sorted({r.get("driver_memory") for r in records.values() if r.get("driver_memory")})
    lines.append(
        "Measured on "
        + "; ".join(f"{day}, {cpus} cores ({machine})" for day, cpus, machine in stamps)
        + f"; driver memory {', '.join(memories) or 'n/a'}; Spark "
        + ", ".join(f"{version} ({'competitor' if competitor else 'project'})" for competitor, version in versions)
        + (f"; competitor at commit {', '.join(commit[:12] for commit in commits)}" if commits else "")
        + ". Ratios divide this case's seconds by the reference's (below 1 = faster); the targets' "
        "\"faster\" ratios are the competitor's seconds over the project's."
    )
    return "\n".join(lines) + "\n"


SECTION_TEMPLATE = f"""
{SECTION}

Written by `python benchmarks/race.py report` from `docs/race.jsonl`; see `benchmarks/race.py`.

{START}
{END}
"""


def write_report(results: Path, markdown: Path) -> None:
    """Rewrite the race section's generated part (between START and END) of `markdown`; add the section if absent."""
    text = markdown.read_text() if markdown.exists() else "# Benchmarks\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + "\n" + SECTION_TEMPLATE
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    markdown.write_text(f"{before}{START}\n{render(load(results))}{END}{after}")


def summary(records: list[dict]) -> str:
    """A short table of what a run just measured, for the console."""
    lines = [f"{'case':<60} {'seconds':>10}"]
    for record in records:
        lines.append(f"{record['case']:<60} {fmt_seconds(record):>10}")
    return "\n".join(lines)
