"""`databricks.yml` and every file under `resources/` are valid against the Databricks CLI's published bundle schema.

The schema is the CLI's own (`databricks bundle schema`, the `bundle/schema/jsonschema.json` of
its repository): it refuses unknown fields inside `bundle`, `variables`, `targets` and every
resource (its root alone takes any key), and checks what the per-resource models of
`tests/test_bundle_models.py` do not see: the bundle settings, the variables and the targets. The CLI is not on
PyPI, so the schema comes from `CAROUSEL_BUNDLE_SCHEMA` (a saved copy of the schema) or from a
`databricks` CLI on the PATH; without either, these tests are skipped and say so.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_VARIABLE = "CAROUSEL_BUNDLE_SCHEMA"

# The schema's patterns use Unicode classes that Python's `re` lacks; these are their `re` equivalents
# (a letter-or-digit class first, as a whole, since `re` has no class inside a class).
_UNICODE_CLASSES = {r"[\p{L}\p{N}]": r"[^\W_]", r"\p{L}": r"[^\W\d_]", r"\p{N}": r"\d"}


def _published_schema() -> dict:
    """The CLI's bundle schema, from CAROUSEL_BUNDLE_SCHEMA or `databricks bundle schema`; skip when neither exists."""
    saved = os.environ.get(SCHEMA_VARIABLE)
    if saved:
        return json.loads(Path(saved).read_text())
    cli = shutil.which("databricks")
    if cli is None:
        pytest.skip(
            f"no bundle schema: set {SCHEMA_VARIABLE} to the CLI's jsonschema.json, or put `databricks` on PATH"
        )
    printed = subprocess.run([cli, "bundle", "schema"], capture_output=True, text=True, timeout=60)
    if printed.returncode != 0:
        pytest.skip(f"`databricks bundle schema` failed (a CLI older than the bundle needs?): {printed.stderr[:200]}")
    return json.loads(printed.stdout)


def _python_patterns(node: object) -> object:
    """The schema with every `pattern` rewritten for Python's `re` (Unicode classes spelled out)."""
    if isinstance(node, dict):
        return {
            key: _python_pattern(value) if key == "pattern" and isinstance(value, str) else _python_patterns(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_python_patterns(value) for value in node]
    return node


def _python_pattern(pattern: str) -> str:
    for unicode_class, equivalent in _UNICODE_CLASSES.items():
        pattern = pattern.replace(unicode_class, equivalent)
    re.compile(pattern)  # a class this table does not know fails here, by name, not as a mismatch
    return pattern


@pytest.fixture(scope="module")
def validator():
    schema = _python_patterns(_published_schema())
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return validator_class(schema)


def _bundle_files() -> list[Path]:
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    return [ROOT / "databricks.yml"] + [path for pattern in bundle["include"] for path in sorted(ROOT.glob(pattern))]


def _errors(validator, document: dict) -> list[str]:
    """The failed checks without failed sub-checks: "'pipline_task' was unexpected", not "not valid under oneOf"."""
    leaves, pending = [], list(validator.iter_errors(document))
    while pending:
        error = pending.pop()
        if error.context:
            pending += error.context
        else:
            leaves.append(f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message[:300]}")
    return sorted(leaves)


@pytest.mark.parametrize("path", _bundle_files(), ids=lambda path: path.name)
def test_every_bundle_file_is_valid_against_the_cli_schema(validator, path):
    assert _errors(validator, yaml.safe_load(path.read_text())) == []


def test_a_misspelt_field_of_a_resource_the_bundle_or_a_variable_fails_the_schema(validator):
    job = yaml.safe_load((ROOT / "resources" / "carousel.job.yml").read_text())
    misspelt = copy.deepcopy(job)
    (key,) = misspelt["resources"]["jobs"]
    task = next(task for task in misspelt["resources"]["jobs"][key]["tasks"] if "pipeline_task" in task)
    task["pipline_task"] = task.pop("pipeline_task")
    assert any("('pipline_task' was unexpected)" in error for error in _errors(validator, misspelt))

    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    bundle["bundle"]["databricks_cli_verison"] = bundle["bundle"].pop("databricks_cli_version")
    assert "bundle: Additional properties are not allowed ('databricks_cli_verison' was unexpected)" in _errors(
        validator, bundle
    )
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    bundle["variables"]["catalog"]["defualt"] = bundle["variables"]["catalog"].pop("default")
    assert "variables/catalog: Additional properties are not allowed ('defualt' was unexpected)" in _errors(
        validator, bundle
    )
