"""A `catalog.schema.table` name reaches the loader through Unity Catalog's REST API, as on a GPU machine.

A local HTTP server plays the workspace: it answers the two calls credential vending makes
(`GET /api/2.1/unity-catalog/tables/{name}`, `POST /api/2.0/unity-catalog/temporary-table-credentials`)
and names a local Delta table as the storage location, with AWS-style credentials that a
`file://` location ignores. databricks-sdk authenticates from `DATABRICKS_HOST` / `DATABRICKS_TOKEN`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("deltalake")
pytest.importorskip("databricks.sdk")

from gold_tables import D1, delta_gold_day  # noqa: E402

from carousel.loader import (  # noqa: E402
    MissingTableError,
    TrainingTableError,
    latest_version,
    read_day,
    table_days,
    table_uri,
)
from carousel.loader.delta_table import resolve_location  # noqa: E402

NAME = "main.carousel.training_examples_gold"
TABLE_ID = "5f3c0a4e-0000-4000-8000-000000000001"
TOKEN = "dapi-test-token"


class _Workspace(BaseHTTPRequestHandler):
    """Unity Catalog's table and credential endpoints over one local table; every request is recorded."""

    location = ""
    vended: dict = {}
    refuse: str | None = None
    requests: list = []

    def _reply(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.requests.append(("GET", self.path, self.headers.get("Authorization"), None))
        if self.path != f"/api/2.1/unity-catalog/tables/{NAME}":
            return self._reply(404, {"error_code": "TABLE_DOES_NOT_EXIST", "message": f"Table '{self.path}' not found"})
        catalog, schema, table = NAME.split(".")
        self._reply(
            200,
            {
                "name": table,
                "catalog_name": catalog,
                "schema_name": schema,
                "full_name": NAME,
                "table_type": "MANAGED",
                "data_source_format": "DELTA",
                "storage_location": self.location,
                "table_id": TABLE_ID,
            },
        )

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.requests.append(("POST", self.path, self.headers.get("Authorization"), body))
        if self.path != "/api/2.0/unity-catalog/temporary-table-credentials":
            return self._reply(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": self.path})
        if self.refuse:
            return self._reply(403, {"error_code": "PERMISSION_DENIED", "message": self.refuse})
        self._reply(200, {"url": self.location, "expiration_time": 4102444800000, **self.vended})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A fake workspace serving one local gold table; yields the handler class (its requests, what it vends)."""
    table = tmp_path / "gold"
    delta_gold_day(table, [2, 1], [[4, 3], [1, 0]], [[1, 2], [3, 0]], [[20, 21], [10]], [[False, True], [True]])
    handler = type(
        "Workspace",
        (_Workspace,),
        {
            "location": f"file://{table}",
            "vended": {
                "aws_temp_credentials": {"access_key_id": "AK", "secret_access_key": "SK", "session_token": "ST"}
            },
            "refuse": None,
            "requests": [],
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for variable in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no.databrickscfg"))
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    yield handler
    server.shutdown()
    server.server_close()


def _unity_catalog_calls(handler) -> list:
    return [request for request in handler.requests if "/unity-catalog/" in request[1]]


def test_a_catalog_name_is_read_at_its_vended_location_with_read_credentials(workspace):
    assert table_uri(NAME) == f"uc://{NAME}"
    host = read_day(NAME, D1)
    assert host.actions.tolist() == [[1, 0], [4, 3]] and host.impressions.tolist() == [10, 20, 21]
    assert host.labels.tolist() == [True, False, True] and host.history_row.tolist() == [0, 1, 1]
    assert _unity_catalog_calls(workspace) == [
        ("GET", f"/api/2.1/unity-catalog/tables/{NAME}", f"Bearer {TOKEN}", None),
        (
            "POST",
            "/api/2.0/unity-catalog/temporary-table-credentials",
            f"Bearer {TOKEN}",
            {"operation": "READ", "table_id": TABLE_ID},
        ),
    ]
    assert latest_version(f"uc://{NAME}") == 0 and table_days(NAME) == [D1]


def test_vended_credentials_become_storage_options_and_given_ones_are_added(workspace):
    location, options = resolve_location(f"uc://{NAME}", {"aws_region": "eu-west-1"})
    assert location == workspace.location
    assert options == {
        "aws_access_key_id": "AK",
        "aws_secret_access_key": "SK",
        "aws_session_token": "ST",
        "aws_region": "eu-west-1",
    }
    workspace.vended = {"azure_user_delegation_sas": {"sas_token": "sv=2025&sig=x"}}
    assert resolve_location(f"uc://{NAME}", None)[1] == {"azure_storage_sas_key": "sv=2025&sig=x"}
    workspace.vended = {"gcp_oauth_token": {"oauth_token": "ya29"}}
    with pytest.raises(TrainingTableError, match=r"vended \['gcp_oauth_token'\] credentials .* S3 and Azure"):
        resolve_location(f"uc://{NAME}", None)


def test_an_unknown_table_or_a_refused_credential_is_one_clear_error(workspace):
    with pytest.raises(MissingTableError, match="Unity Catalog has no table main.carousel.nothing you can see"):
        read_day("main.carousel.nothing", D1)
    workspace.refuse = "User does not have EXTERNAL USE SCHEMA on Schema 'main.carousel'"
    with pytest.raises(TrainingTableError, match="refused to vend credentials .* EXTERNAL USE SCHEMA") as refused:
        read_day(NAME, D1)
    assert NAME in str(refused.value)


def test_a_name_that_is_neither_a_path_nor_three_parts_is_refused():
    with pytest.raises(MissingTableError, match="neither a path nor a Unity Catalog name"):
        table_uri("carousel.training_examples_gold")
    assert table_uri("s3://bucket/gold") == "s3://bucket/gold"
