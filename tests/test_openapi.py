"""The OpenAPI document matches the routes; schemathesis finds no server error or schema breach."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from helpers import POLICY_V1, POLICY_V2
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# What the API promises: never a 5xx, and every answer documented and shaped as documented.
# (Schemathesis' "positive data accepted" check is left out: JSON Schema cannot express every
# rule the server applies, such as an email address's syntax, and a 422 there is correct.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "openapi.openapi_json":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method.lower(), path))
    return found


def test_every_route_is_documented_and_every_documented_route_exists(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert documented == _routes(app)


@pytest.fixture
def api_schema(app, api_key):
    """The live schema of the test app, with data in place so that requests can succeed."""
    from notifier import audience, db
    from policy_versions import store

    now = datetime.now(UTC)
    with app.app_context(), db.connection() as conn:
        policy = store.create_policy(conn, "privacy", "Privacy Policy")
        v1 = store.create_draft(conn, policy.id, POLICY_V1, created_by=None, max_bytes=10**6)
        with conn.transaction():
            store.publish(
                conn,
                v1.id,
                effective_at=now + timedelta(days=1),
                summary="First.",
                published_by=None,
                verdict="material",
                now=now,
            )
        store.create_draft(conn, policy.id, POLICY_V2, created_by=None, max_bytes=10**6)
        with conn.transaction():
            audience.upsert_user(conn, audience.parse_user({"email": "a@example.com"}, "u-1"), None)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.api_key = api_key
    return schema


def test_api_fuzz_finds_no_server_error_and_no_schema_violation(api_schema):
    """Every documented operation, fuzzed from the schema, through the real app and database."""
    headers = {"Authorization": f"Bearer {api_schema.api_key}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()


def test_pending_and_decision_answers_have_exactly_the_documented_fields(app, api, client):
    """Every field of an answer is documented (and required), none documented is missing."""
    from acceptance_helpers import publish_version, put_user

    publish_version(app)
    put_user(api, "u-1")
    item = api.get("/api/v1/users/u-1/pending").get_json()["pending"][0]
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["PendingItem"]
    assert set(item) == set(schema["properties"]) == set(schema["required"])
    record = api.post(
        "/api/v1/users/u-1/acceptances", json={"version_uid": item["version_uid"]}
    ).get_json()
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Acceptance"]
    assert set(record) == set(schema["properties"]) == set(schema["required"])
