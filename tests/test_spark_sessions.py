"""The switch between local Spark and Databricks Connect, without a workspace: the variable, the skips, the builder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from spark_sessions import SKIP_REASON, connect_session, needs_local_machine, session_kind

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("environ", "kind"),
    [({}, "local"), ({"CAROUSEL_TEST_SPARK": ""}, "local"), ({"CAROUSEL_TEST_SPARK": " Connect "}, "connect")],
)
def test_the_variable_picks_the_session(environ, kind):
    assert session_kind(environ) == kind


def test_an_unknown_value_is_refused_naming_the_variable():
    with pytest.raises(pytest.UsageError, match="CAROUSEL_TEST_SPARK must be one of local, connect, got 'remote'"):
        session_kind({"CAROUSEL_TEST_SPARK": "remote"})


def test_tests_that_need_the_local_machine_are_the_ones_skipped():
    assert needs_local_machine(["spark"], ["local_only"])
    assert needs_local_machine(["spark", "tmp_path"], [])
    assert needs_local_machine(["tmp_path_factory"], ["slow"])
    assert not needs_local_machine(["spark", "monkeypatch"], ["parametrize", "slow"])
    assert "local Spark only" in SKIP_REASON


class _FakeBuilder:
    """Stands in for `DatabricksSession.builder`, recording the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.session = types.SimpleNamespace(conf=types.SimpleNamespace(set=self._set))

    def _set(self, key, value):
        self.calls.append(("conf.set", key, value))

    def clusterId(self, cluster):  # noqa: N802 - Databricks Connect's name
        self.calls.append(("clusterId", cluster))
        return self

    def serverless(self):
        self.calls.append(("serverless",))
        return self

    def getOrCreate(self):  # noqa: N802 - Databricks Connect's name
        self.calls.append(("getOrCreate",))
        return self.session


@pytest.fixture
def fake_connect(monkeypatch) -> _FakeBuilder:
    builder = _FakeBuilder()
    module = types.ModuleType("databricks.connect")
    module.DatabricksSession = types.SimpleNamespace(builder=builder)
    monkeypatch.setitem(sys.modules, "databricks.connect", module)
    return builder


def test_connect_runs_on_the_named_cluster(fake_connect):
    session = connect_session({"DATABRICKS_CLUSTER_ID": "0123-456789-abcdefgh"})
    assert session is fake_connect.session
    assert fake_connect.calls == [
        ("clusterId", "0123-456789-abcdefgh"),
        ("getOrCreate",),
        ("conf.set", "spark.sql.session.timeZone", "UTC"),
    ]


def test_connect_runs_on_serverless_without_a_cluster(fake_connect):
    connect_session({})
    assert fake_connect.calls == [("serverless",), ("getOrCreate",), ("conf.set", "spark.sql.session.timeZone", "UTC")]


def _python_312() -> str | None:
    """A Python 3.12 interpreter (databricks-connect 17 needs it): CAROUSEL_CONNECT_PYTHON, pyenv's, or python3.12."""
    candidates = [os.environ.get("CAROUSEL_CONNECT_PYTHON", "")]
    candidates += [str(path) for path in sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))]
    candidates.append(shutil.which("python3.12") or "")
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 12)":
            return candidate
    return None


@pytest.mark.slow
def test_the_connect_requirements_resolve_with_databricks_connect_in_place_of_pyspark(tmp_path):
    python = _python_312()
    if python is None:
        pytest.skip("no Python 3.12 on this machine to resolve requirements-connect.txt with")
    subprocess.run([python, "-m", "venv", str(tmp_path / "venv")], check=True)
    report = tmp_path / "report.json"
    pip = [str(tmp_path / "venv" / "bin" / "pip"), "install", "--dry-run", "--quiet", "--report", str(report)]
    subprocess.run([*pip, "-r", str(ROOT / "requirements-connect.txt")], check=True)
    resolved = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert (resolved["databricks-connect"], resolved["databricks-sdk"]) == ("17.3.15", "0.162.0")
    assert "pyspark" not in resolved  # databricks-connect carries its own: it could never share .venv


def _session_with_jars(jars: list[str]) -> types.SimpleNamespace:
    conf = {"spark.jars": ",".join(f"file://{jar}" for jar in jars)}
    return types.SimpleNamespace(conf=types.SimpleNamespace(get=lambda key, default=None: conf.get(key, default)))


def test_the_jars_ivy_resolved_are_remembered_and_handed_to_the_next_session(tmp_path, monkeypatch):
    import carousel.spark as spark_module

    monkeypatch.setattr(spark_module, "_jar_list", lambda packages: tmp_path / "lists" / f"{len(packages)}.txt")
    packages = "io.delta:delta-spark_4.2_2.13:4.4.0,org.example:extra:1.0"
    jars = [tmp_path / "io.delta_delta-spark_4.2_2.13-4.4.0.jar", tmp_path / "org.example_extra-1.0.jar"]
    for jar in jars:
        jar.write_bytes(b"")
    assert spark_module.known_jars(packages) is None  # nothing resolved yet: Ivy resolves

    # A session that lacks one of the packages teaches nothing.
    spark_module.remember_jars(_session_with_jars([str(jars[0])]), packages)
    assert spark_module.known_jars(packages) is None

    spark_module.remember_jars(_session_with_jars([str(jar) for jar in jars]), packages)
    assert spark_module.known_jars(packages) == [str(jar) for jar in jars]

    jars[1].unlink()  # Ivy's cache cleaned: back to resolving
    assert spark_module.known_jars(packages) is None
