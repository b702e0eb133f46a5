"""Every resource of the bundle parses with Databricks' own models (`databricks-bundles`), which refuse unknown fields.

`tests/test_bundle.py` checks how the files hold together; this checks each resource's fields
against the definitions the Databricks CLI deploys from, so a misspelt field fails here and not
at `databricks bundle deploy`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from databricks.bundles.experiments import MlflowExperiment
from databricks.bundles.jobs import Job
from databricks.bundles.pipelines import Pipeline
from databricks.bundles.registered_models import RegisteredModel
from databricks.bundles.schemas import Schema

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "jobs": Job,
    "pipelines": Pipeline,
    "experiments": MlflowExperiment,
    "registered_models": RegisteredModel,
    "schemas": Schema,
}


def _definitions() -> list[tuple[str, str, str, dict]]:
    """(where, kind, key, settings) of every resource of the bundle's files and of its targets' overrides."""
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    found = []
    for pattern in bundle["include"]:
        for path in sorted(ROOT.glob(pattern)):
            for kind, defined in yaml.safe_load(path.read_text()).get("resources", {}).items():
                found += [(path.name, kind, key, settings) for key, settings in defined.items()]
    for name, target in bundle["targets"].items():
        for kind, defined in target.get("resources", {}).items():
            found += [(f"targets.{name}", kind, key, settings) for key, settings in defined.items()]
    return found


DEFINITIONS = _definitions()


@pytest.mark.parametrize(("where", "kind", "key", "settings"), DEFINITIONS, ids=[f"{d[0]}:{d[2]}" for d in DEFINITIONS])
def test_every_resource_parses_with_its_databricks_model(where, kind, key, settings):
    assert kind in MODELS, f"{where}: no model for resources of kind '{kind}' in this test"
    MODELS[kind].from_dict(settings)


def test_the_bundle_defines_what_the_daily_operation_needs():
    kinds = {(kind, key) for _, kind, key, _ in DEFINITIONS}
    assert {("jobs", "carousel_daily"), ("pipelines", "carousel"), ("schemas", "carousel_dev")} <= kinds


def test_a_misspelt_field_is_refused():
    job = next(settings for _, kind, key, settings in DEFINITIONS if (kind, key) == ("jobs", "carousel_daily"))
    broken = copy.deepcopy(job)
    task = broken["tasks"][0]
    task["pipline_task"] = task.pop("pipeline_task")
    with pytest.raises(ValueError, match="Unexpected field 'pipline_task'"):
        Job.from_dict(broken)
