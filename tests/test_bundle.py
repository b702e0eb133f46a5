"""The Databricks Asset Bundle and the CI workflow hold together: names, references, paths, targets.

No Spark and no Databricks CLI: the YAML is read as data and checked for the mistakes that
`databricks bundle validate` would only find against a workspace, or not at all.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_FILE = ROOT / "databricks.yml"
WORKFLOW_FILE = ROOT / ".github" / "workflows" / "ci.yml"

VARIABLE_REFERENCE = re.compile(r"\$\{var\.([A-Za-z0-9_-]+)\}")
RESOURCE_REFERENCE = re.compile(r"\$\{resources\.([a-z_]+)\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_.]+\}")
TOKEN = re.compile(r"dapi[0-9a-f]{32}")
WORKSPACE_HOST = re.compile(
    r"[A-Za-z0-9-]+\.(cloud\.databricks\.com|azuredatabricks\.net|gcp\.databricks\.com|databricks\.azure\.cn)"
)
GLOB_CHARACTERS = "*?["

PIPELINE_CONFIGURATION_KEYS = {
    "carousel.source.impressions",
    "carousel.source.clicks",
    "carousel.source.add_to_carts",
    "carousel.source.orders",
    "carousel.window_days",
    "carousel.retention_days",
    "carousel.window_start",
    "carousel.window_end",
    "carousel.history_length",
    "carousel.lookback_days",
    "carousel.kafka.bootstrap_servers",
    "carousel.kafka.topic.clicks",
    "carousel.kafka.topic.add_to_carts",
    "carousel.kafka.option.kafka.security.protocol",
    "carousel.kafka.option.kafka.sasl.mechanism",
    "carousel.kafka.option.kafka.sasl.jaas.config",
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def bundle() -> dict:
    return load(BUNDLE_FILE)


@pytest.fixture(scope="module")
def resource_files(bundle) -> list[Path]:
    return sorted({path for pattern in bundle["include"] for path in ROOT.glob(pattern)})


@pytest.fixture(scope="module")
def resources(resource_files) -> dict[str, dict[str, tuple[dict, Path]]]:
    """Resource type -> resource key -> (its settings, the file that defines it)."""
    merged: dict[str, dict[str, tuple[dict, Path]]] = {}
    for path in resource_files:
        for kind, defined in load(path).get("resources", {}).items():
            for key, settings in defined.items():
                assert key not in merged.setdefault(kind, {}), f"{kind}.{key} is defined twice"
                merged[kind][key] = (settings, path)
    return merged


@pytest.fixture(scope="module")
def pipeline(resources) -> tuple[dict, Path]:
    return resources["pipelines"]["carousel"]


@pytest.fixture(scope="module")
def job(resources) -> tuple[dict, Path]:
    return resources["jobs"]["carousel_daily"]


def bundle_texts(resource_files) -> dict[Path, str]:
    return {path: path.read_text() for path in [BUNDLE_FILE, *resource_files]}


def with_variable_defaults(value: str, bundle: dict) -> str:
    return VARIABLE_REFERENCE.sub(lambda match: str(bundle["variables"][match.group(1)]["default"]), value)


def task(job_settings: dict, key: str) -> dict:
    return next(t for t in job_settings["tasks"] if t["task_key"] == key)


def test_bundle_is_named_and_includes_one_resource_per_existing_file(bundle, resource_files):
    assert bundle["bundle"]["name"] == "carousel"
    assert "resources/*.yml" in bundle["include"]
    for pattern in bundle["include"]:
        assert list(ROOT.glob(pattern)), f"include pattern {pattern!r} matches no file"
    assert {path.name for path in resource_files} >= {"carousel.pipeline.yml", "carousel.job.yml"}
    for path in resource_files:
        defined = [(kind, key) for kind, keys in load(path)["resources"].items() for key in keys]
        assert len(defined) == 1, f"{path.name} should define one resource, defines {defined}"


def test_every_variable_is_defined_documented_defaulted_and_used(bundle, resource_files):
    used = {name for text in bundle_texts(resource_files).values() for name in VARIABLE_REFERENCE.findall(text)}
    defined = bundle["variables"]
    assert used - set(defined) == set(), "variables used but not defined"
    assert set(defined) - used == set(), "variables defined but never used"
    for name, variable in defined.items():
        assert variable.get("description"), f"variable {name} needs a description"
        # A variable without a default makes every target, dev included, demand --var.
        assert "default" in variable, f"variable {name} needs a default"


def test_the_bundle_defines_the_projects_variables(bundle):
    assert set(bundle["variables"]) >= {
        "catalog",
        "schema",
        "window_days",
        "retention_days",
        "window_start",
        "window_end",
        "history_length",
        "lookback_days",
        "impressions_source",
        "clicks_source",
        "add_to_carts_source",
        "orders_source",
        "service_principal",
    }
    assert str(bundle["variables"]["window_days"]["default"]) == "14"
    assert str(bundle["variables"]["history_length"]["default"]) == "1000"
    assert str(bundle["variables"]["lookback_days"]["default"]) == "365"


def test_resource_references_point_at_defined_resources(bundle, resources, resource_files):
    defined = {kind: set(keys) for kind, keys in resources.items()}
    for target in bundle["targets"].values():  # a target may add resources of its own (dev's schema)
        for kind, keys in target.get("resources", {}).items():
            defined.setdefault(kind, set()).update(keys)
    for path, text in bundle_texts(resource_files).items():
        for kind, key in RESOURCE_REFERENCE.findall(text):
            assert key in defined.get(kind, set()), f"{path.name} refers to undefined resources.{kind}.{key}"


def test_the_pipeline_is_serverless_unity_catalog_with_every_setting(pipeline):
    settings, _ = pipeline
    assert settings["name"] == "carousel_training_input"
    assert settings["serverless"] is True
    assert settings["catalog"] == "${var.catalog}"
    assert settings["schema"] == "${var.schema}"
    assert "target" not in settings, "'target' is the old name of 'schema'"
    assert set(settings["configuration"]) == PIPELINE_CONFIGURATION_KEYS
    for key, value in settings["configuration"].items():
        assert VARIABLE_REFERENCE.fullmatch(value), f"{key} should come from a bundle variable, is {value!r}"


def test_pipeline_source_paths_exist_relative_to_their_file(pipeline):
    settings, path = pipeline
    assert (path.parent / settings["root_path"]).resolve().is_dir(), settings["root_path"]
    globs = [library["glob"]["include"] for library in settings["libraries"]]
    assert globs == ["../src/carousel_pipeline/transformations/**"]
    for pattern in globs:
        fixed_part = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        folder = (path.parent / fixed_part).resolve()
        assert folder.is_dir(), f"{pattern!r} (from {path.name}) starts in {folder}, which does not exist"
        assert ROOT in folder.parents, f"{pattern!r} leaves the bundle"


def wheel_dependencies(settings_with_dependencies: dict, path: Path) -> list[Path]:
    return [(path.parent / d).resolve() for d in settings_with_dependencies["dependencies"] if d.endswith(".whl")]


def test_pipeline_and_job_install_the_wheel_the_artifact_builds(bundle, pipeline, job):
    artifact = bundle["artifacts"]["carousel_wheel"]
    assert artifact["type"] == "whl"
    assert (ROOT / artifact["path"] / "pyproject.toml").is_file()
    assert "dist" in artifact["build"]
    dist = (ROOT / artifact["path"] / "dist").resolve()
    pipeline_settings, pipeline_path = pipeline
    job_settings, job_path = job
    installed = wheel_dependencies(pipeline_settings["environment"], pipeline_path)
    for environment in job_settings["environments"]:
        installed += wheel_dependencies(environment["spec"], job_path)
    cluster_tasks = [t for t in job_settings["tasks"] if "job_cluster_key" in t]
    for cluster_task in cluster_tasks:
        installed += [(job_path.parent / library["whl"]).resolve() for library in cluster_task["libraries"]]
    assert len(installed) == 1 + len(job_settings["environments"]) + len(cluster_tasks)
    for wheel in installed:
        assert wheel.parent == dist and any(c in wheel.name for c in GLOB_CHARACTERS), wheel


def test_the_job_refreshes_the_pipeline_builds_gold_then_validates_it(job):
    settings, _ = job
    assert [t["task_key"] for t in settings["tasks"]] == [
        "refresh_pipeline",
        "build_gold",
        "validate_gold",
        "train_baseline",
    ]
    refresh = task(settings, "refresh_pipeline")
    assert refresh["pipeline_task"]["pipeline_id"] == "${resources.pipelines.carousel.id}"
    assert refresh["pipeline_task"]["full_refresh"] is False
    gold = task(settings, "build_gold")
    assert gold["depends_on"] == [{"task_key": "refresh_pipeline"}]
    validate = task(settings, "validate_gold")
    assert validate["depends_on"] == [{"task_key": "build_gold"}]
    for step in (gold, validate):
        assert step["environment_key"] in {e["environment_key"] for e in settings["environments"]}


def test_the_gold_task_calls_carousel_gold_with_parameters_that_parse(bundle, job):
    tomllib = pytest.importorskip("tomllib")
    from carousel.tasks.gold_step import build_parser

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    wheel_task = task(job[0], "build_gold")["python_wheel_task"]
    assert scripts.get(wheel_task["entry_point"]) == "carousel.tasks.gold_step:main"
    args = build_parser().parse_args([with_variable_defaults(p, bundle) for p in wheel_task["parameters"]])
    assert (args.catalog, args.schema) == ("main", "carousel")
    assert (args.window_days, args.window_start, args.window_end, args.retention_days) == (14, None, None, 0)
    assert (args.history_length, args.lookback_days) == (1000, 365)


def test_the_validate_task_calls_an_entry_point_of_the_wheel(job):
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wheel_task = task(job[0], "validate_gold")["python_wheel_task"]
    assert wheel_task["package_name"] == project["name"]
    scripts = project.get("scripts", {})
    assert scripts.get(wheel_task["entry_point"]) == "carousel.tasks.validation:main", (
        f'pyproject.toml [project.scripts] needs: {wheel_task["entry_point"]} = "carousel.tasks.validation:main"'
    )


def test_the_validate_task_parameters_parse(bundle, job):
    from carousel.tasks.validation import build_parser

    parameters = task(job[0], "validate_gold")["python_wheel_task"]["parameters"]
    args = build_parser().parse_args([with_variable_defaults(p, bundle) for p in parameters])
    assert args.history_length == 1000
    assert args.lookback_days == 365
    assert (args.catalog, args.schema) == ("main", "carousel")


def test_the_job_trains_the_baseline_after_validation_on_an_ml_runtime_cluster(bundle, job):
    settings, _ = job
    train = task(settings, "train_baseline")
    assert train["depends_on"] == [{"task_key": "validate_gold"}]
    [cluster] = [c for c in settings["job_clusters"] if c["job_cluster_key"] == train["job_cluster_key"]]
    spark_version = with_variable_defaults(cluster["new_cluster"]["spark_version"], bundle)
    assert "-ml-" in spark_version, f"Spark ML and MLflow come with an ML runtime, not {spark_version}"
    assert cluster["new_cluster"]["data_security_mode"] == "SINGLE_USER"


def test_the_train_task_calls_carousel_train_with_parameters_that_parse(bundle, job, resources):
    tomllib = pytest.importorskip("tomllib")
    from carousel.baseline.run import build_parser

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    wheel_task = task(job[0], "train_baseline")["python_wheel_task"]
    assert scripts.get(wheel_task["entry_point"]) == "carousel.baseline.run:main"
    experiment, _ = resources["experiments"]["carousel_baseline"]
    model, _ = resources["registered_models"]["carousel_baseline"]
    assert (model["catalog_name"], model["schema_name"]) == ("${var.catalog}", "${var.schema}")
    referenced = {
        "${resources.experiments.carousel_baseline.name}": experiment["name"],
        "${resources.registered_models.carousel_baseline.name}": model["name"],
    }
    parameters = []
    for parameter in wheel_task["parameters"]:
        for reference, value in referenced.items():
            parameter = parameter.replace(reference, value)
        parameters.append(with_variable_defaults(parameter, bundle))
    args = build_parser().parse_args(parameters)
    assert (args.catalog, args.schema, args.eval_days, args.sample_fraction) == ("main", "carousel", 1, 1.0)
    assert args.model_name == "main.carousel.carousel_baseline"  # Unity Catalog: three levels
    assert args.experiment == "${workspace.root_path}/carousel_baseline"
    assert (args.tracking_uri, args.registry_uri) == ("databricks", "databricks-uc")


def test_the_job_runs_daily_on_a_quartz_schedule_that_dev_pauses(job):
    schedule = job[0]["schedule"]
    fields = schedule["quartz_cron_expression"].split()
    assert len(fields) in (6, 7), "quartz: seconds minutes hours day-of-month month day-of-week [year]"
    seconds, minutes, hours, day_of_month, month, day_of_week = fields[:6]
    assert all(f.isdigit() for f in (seconds, minutes, hours)), "once a day at a fixed time"
    assert (day_of_month, month, day_of_week) in {("*", "*", "?"), ("?", "*", "*")}
    assert schedule["timezone_id"] == "UTC"
    # Development mode pauses a schedule unless it says UNPAUSED explicitly.
    assert schedule.get("pause_status") != "UNPAUSED"


def test_targets_dev_and_prod(bundle):
    targets = bundle["targets"]
    assert set(targets) >= {"dev", "prod"}
    assert targets["dev"]["mode"] == "development"
    assert targets["dev"]["default"] is True
    assert [name for name, target in targets.items() if target.get("default")] == ["dev"]
    prod = targets["prod"]
    assert prod["mode"] == "production"
    assert prod["workspace"]["root_path"].startswith("/Workspace/")
    assert "${bundle.target}" in prod["workspace"]["root_path"]
    assert prod["run_as"] == {"service_principal_name": "${var.service_principal}"}
    assert {"service_principal_name": "${var.service_principal}", "level": "CAN_MANAGE"} in prod["permissions"]


def test_no_workspace_host_or_secret_is_written_down(bundle, resource_files):
    files = [BUNDLE_FILE, *resource_files, *sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))]
    for path in files:
        text = path.read_text()
        assert not TOKEN.search(text), f"{path.name} holds something that looks like a personal access token"
        assert not WORKSPACE_HOST.search(text), f"{path.name} names a workspace host"
    for scope in [bundle, *bundle["targets"].values()]:
        host = scope.get("workspace", {}).get("host")
        assert host is None or VARIABLE_REFERENCE.fullmatch(host), "the host comes from auth config or DATABRICKS_HOST"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load(WORKFLOW_FILE)


def run_lines(job_settings: dict) -> list[str]:
    return [line.strip() for step in job_settings["steps"] for line in step.get("run", "").splitlines() if line.strip()]


def test_ci_tests_every_push_and_pull_request(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    test = workflow["jobs"]["test"]
    uses = [step.get("uses", "") for step in test["steps"]]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert any(u.startswith("actions/setup-java@") for u in uses)
    assert "bash .ci/run" in run_lines(test)


def test_ci_deploys_prod_from_main_after_the_tests(workflow):
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test" or deploy["needs"] == ["test"]
    assert "refs/heads/main" in deploy["if"] and "push" in deploy["if"]
    assert any(step.get("uses", "").startswith("databricks/setup-cli@") for step in deploy["steps"])
    commands = [shlex.split(line) for line in run_lines(deploy)]
    assert ["databricks", "bundle", "validate", "-t", "prod"] in commands
    assert ["databricks", "bundle", "deploy", "-t", "prod"] in commands
    env = {**deploy.get("env", {}), **{k: v for step in deploy["steps"] for k, v in step.get("env", {}).items()}}
    for name in ("DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        assert env.get(name) == f"${{{{ secrets.{name} }}}}", name
    assert env.get("BUNDLE_VAR_service_principal") == "${{ secrets.DATABRICKS_CLIENT_ID }}"


def test_the_bundle_names_the_oldest_cli_it_deploys_with(bundle):
    assert bundle["bundle"]["databricks_cli_version"] == ">= 0.268.0"


def test_every_github_action_is_pinned_to_a_release():
    workflow = load(WORKFLOW_FILE)
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                action, _, version = step["uses"].partition("@")
                assert re.fullmatch(r"v\d+(\.\d+){0,2}", version), f"{action} is not pinned to a release: @{version}"
