"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

NULLABLE_STRING = {"type": ["string", "null"]}
TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: dict, optional: dict | None = None) -> dict:
    """An object schema: `required` keys must be present; extra keys are allowed (additive API)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


SCHEMAS = {
    "Error": _obj(
        {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    ),
    "VersionSummary": _obj(
        {
            "policy": {"type": "string"},
            "number": {"type": "integer", "minimum": 1},
            "uid": {"type": "string", "format": "uuid"},
            "status": {"enum": ["draft", "published"]},
            "effective_at": NULLABLE_TIMESTAMP,
            "published_at": NULLABLE_TIMESTAMP,
            "summary": NULLABLE_STRING,
            "content_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "verdict": {"enum": ["cosmetic", "minor", "material", None]},
            "suggested_verdict": {"enum": ["cosmetic", "minor", "material", None]},
            "verdict_override_reason": NULLABLE_STRING,
            "acceptance_mode": {"enum": ["explicit", "notice", "none"]},
        },
        {"url": {"type": "string"}, "changes_url": {"type": "string"}},
    ),
    "Version": {
        "allOf": [
            _ref("VersionSummary"),
            _obj({"body_markdown": {"type": "string"}, "body_html": {"type": "string"}}),
        ]
    },
    "PublishedVersion": {
        "allOf": [
            _ref("Version"),
            _obj(
                {},
                {
                    "notice": {
                        "oneOf": [
                            {"type": "null"},
                            _obj(
                                {
                                    "id": {"type": "integer"},
                                    "state": {"type": "string"},
                                    "email": {"type": "boolean"},
                                    "in_app": {"type": "boolean"},
                                }
                            ),
                        ]
                    }
                },
            ),
        ]
    },
    "Policy": _obj(
        {
            "slug": {"type": "string"},
            "title": {"type": "string"},
            "in_force": {"oneOf": [{"type": "null"}, _ref("VersionSummary")]},
            "upcoming": {"oneOf": [{"type": "null"}, _ref("VersionSummary")]},
        }
    ),
    "Changes": _obj(
        {
            "policy": {"type": "string"},
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "approximate": {"type": "boolean"},
            "summary_text": {"type": "string"},
            "changes": {"type": "array", "items": {"type": "object"}},
            "classification": _obj(
                {
                    "verdict": {"enum": ["cosmetic", "minor", "material"]},
                    "reasons": {"type": "array", "items": {"type": "object"}},
                }
            ),
        }
    ),
    "Notice": _obj(
        {
            "id": {"type": "integer"},
            "version": _obj({"policy": {"type": "string"}, "number": {"type": "integer"}}),
            "state": {"type": "string"},
            "email": {"type": "boolean"},
            "in_app": {"type": "boolean"},
            "scheduled_at": TIMESTAMP,
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        }
    ),
    "User": _obj(
        {
            "external_id": {"type": "string"},
            "email": NULLABLE_STRING,
            "name": {"type": "string"},
            "locale": {"type": "string"},
            "segment": NULLABLE_STRING,
            "tags": {"type": "array", "items": {"type": "string"}},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        }
    ),
    "UserInput": {
        "type": "object",
        "properties": {
            "email": {"type": ["string", "null"], "maxLength": 254},
            "name": {"type": ["string", "null"], "maxLength": 200},
            "locale": {"type": ["string", "null"]},
            "segment": {"type": ["string", "null"], "maxLength": 100},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        },
    },
    "BulkReport": _obj(
        {
            "rows": {"type": "integer"},
            "created": {"type": "integer"},
            "updated": {"type": "integer"},
            "written": {"type": "boolean"},
            "error_count": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "object"}},
            "summary": {"type": "string"},
        }
    ),
    "PendingItem": _obj(
        {
            "policy": {"type": "string"},
            "title": {"type": "string"},
            "version": {"type": "integer"},
            "version_uid": {"type": "string"},
            "summary": {"type": "string"},
            "effective_at": TIMESTAMP,
            "in_force": {"type": "boolean"},
            "mode": {"enum": ["explicit", "notice", "none"]},
            "material": {"type": "boolean"},
            "blocking": {"type": "boolean"},
            "blocks_at": {
                **NULLABLE_TIMESTAMP,
                "description": "explicit mode: when the prompt starts to block (effective date "
                "plus any grace period); null in notice mode",
            },
            "declined_at": {
                **NULLABLE_TIMESTAMP,
                "description": "when this user declined this version, if they did",
            },
            "prompt": {
                "type": "string",
                "description": "the wording to show, recorded as evidence when a decision sends "
                "no prompt_text; a policy's first version is not called an update",
            },
            "links": _obj(
                {
                    "text": {"type": "string"},
                    "redline": {"type": "string"},
                    "accept": {"type": "string"},
                }
            ),
        }
    ),
    "Pending": _obj(
        {
            "external_id": {"type": "string"},
            "pending": {"type": "array", "items": _ref("PendingItem")},
            "blocking": {"type": "boolean"},
        }
    ),
    "Decision": _obj(
        {},
        {
            "version_uid": {"type": "string"},
            "policy": {"type": "string"},
            "version": {"type": "integer"},
            "decision": {"enum": ["accepted", "declined"]},
            "ip": {"type": ["string", "null"]},
            "user_agent": {"type": ["string", "null"]},
            "locale": {"type": ["string", "null"]},
            "prompt_text": {"type": ["string", "null"]},
            "delivery_id": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": 9223372036854775807,
                "description": "the notice delivery this decision answers (found when omitted)",
            },
        },
    ),
    "Acceptance": _obj(
        {
            "id": {"type": "integer"},
            "policy": {"type": "string"},
            "version": {"type": "integer"},
            "decision": {"enum": ["accepted", "declined"]},
            "method": {"type": "string"},
            "version_uid": {"type": "string"},
            "recorded_at": TIMESTAMP,
            "content_sha256": {
                "type": "string",
                "description": "SHA-256 of the exact text decided on",
            },
            "locale": {"type": "string"},
            "prompt_text": {"type": "string", "description": "the wording shown, as recorded"},
            "delivery_id": {
                "type": ["integer", "null"],
                "description": "the notice delivery this decision answers, if any",
            },
            "row_hash": {"type": "string", "description": "this row's hash in the evidence chain"},
        }
    ),
    "AcceptanceList": _obj(
        {
            "external_id": {"type": "string"},
            "acceptances": {"type": "array", "items": _ref("Acceptance")},
        }
    ),
    "Activity": _obj(
        {
            "implied": {"type": "array", "items": _ref("Acceptance")},
            "not_implied": {"type": "array", "items": {"type": "object"}},
        }
    ),
}

PARAMS = {
    "slug": {
        "name": "slug",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"},
    },
    "seq": {
        "name": "seq",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647},
    },
    "external_id": {
        "name": "external_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "notice_id": {
        "name": "notice_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807},
    },
}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


ERRORS = {
    "400": _error("Malformed request"),
    "401": _error("Missing, invalid or revoked API key"),
    "404": _error("Unknown policy, version, user or notice"),
    "409": _error("Conflict with the current state"),
    "413": _error("Body too large"),
    "415": _error("Unsupported media type"),
    "422": _error("Invalid input; `fields` says which"),
}


def _op(summary: str, ok: dict, *, params=(), body: str | None = None, codes=("404",)) -> dict:
    responses = {
        status: {"description": "OK", "content": {"application/json": {"schema": _ref(schema)}}}
        for status, schema in ok.items()
    }
    for code in ("401", *codes):
        responses[code] = ERRORS[code]
    op = {
        "summary": summary,
        "parameters": [PARAMS[p] for p in params],
        "responses": responses,
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body) if body in SCHEMAS else body}},
        }
        for code in ("400", "413", "415", "422"):
            responses.setdefault(code, ERRORS[code])
    return op


_DRAFT = {
    "type": "object",
    "required": ["body_markdown"],
    "properties": {"body_markdown": {"type": "string", "minLength": 1}},
}
SCHEMAS["Draft"] = _DRAFT
SCHEMAS["Publish"] = {
    "type": "object",
    "required": ["effective_at", "summary"],
    "properties": {
        "effective_at": {"type": "string", "format": "date-time"},
        "summary": {"type": "string", "minLength": 1, "maxLength": 2000},
        "verdict": {"enum": ["cosmetic", "minor", "material"]},
        "override_reason": {"type": "string"},
        "acceptance_mode": {"enum": ["explicit", "notice", "none"]},
        "grace_days": {
            "type": "integer",
            "minimum": 0,
            "maximum": 365,
            "default": 0,
            "description": "explicit mode only: days after effective_at before the prompt blocks",
        },
        "send_email": {"type": "boolean"},
        "notice_at": {"type": "string", "format": "date-time"},
        "window_override_reason": {"type": "string"},
    },
}
SCHEMAS["Bulk"] = {
    "type": "object",
    "required": ["users"],
    "properties": {
        "users": {"type": "array", "maxItems": 10000, "items": {"type": "object"}},
        "partial": {"type": "boolean"},
    },
}

PATHS = {
    "/api/v1/policies": {"get": _op("List policies", {"200": "PolicyList"}, codes=())},
    "/api/v1/policies/{slug}": {"get": _op("One policy", {"200": "Policy"}, params=["slug"])},
    "/api/v1/policies/{slug}/versions": {
        "post": _op(
            "Create the draft",
            {"201": "Version"},
            params=["slug"],
            body="Draft",
            codes=("404", "409"),
        )
    },
    "/api/v1/policies/{slug}/versions/{seq}": {
        "get": _op("One version", {"200": "Version"}, params=["slug", "seq"]),
        "put": _op(
            "Replace a draft's text",
            {"200": "Version"},
            params=["slug", "seq"],
            body="Draft",
            codes=("404", "409"),
        ),
    },
    "/api/v1/policies/{slug}/versions/{seq}/changes": {
        "get": {
            **_op(
                "Structured changes against the previous version or ?against",
                {"200": "Changes"},
                params=["slug", "seq"],
                codes=("404", "422"),
            ),
        }
    },
    "/api/v1/policies/{slug}/versions/{seq}/publish": {
        "post": _op(
            "Publish a draft",
            {"200": "PublishedVersion"},
            params=["slug", "seq"],
            body="Publish",
            codes=("404", "409"),
        )
    },
    "/api/v1/notices/{notice_id}": {
        "get": _op("A notice's state and counts", {"200": "Notice"}, params=["notice_id"])
    },
    "/api/v1/users/bulk": {
        "post": _op("Upsert up to 10,000 users", {"200": "BulkReport"}, body="Bulk", codes=())
    },
    "/api/v1/users/{external_id}": {
        "get": _op("A user", {"200": "User"}, params=["external_id"], codes=("404", "422")),
        "put": _op(
            "Create or update a user",
            {"200": "User", "201": "User"},
            params=["external_id"],
            body="UserInput",
        ),
        "delete": _op(
            "Erase a user (evidence kept, pseudonymised)",
            {"200": "Erased"},
            params=["external_id"],
            codes=("404", "422"),
        ),
    },
    "/api/v1/users/{external_id}/export": {
        "get": _op(
            "Everything about a user (GDPR)",
            {"200": "Export"},
            params=["external_id"],
            codes=("404", "422"),
        )
    },
    "/api/v1/users/{external_id}/pending": {
        "get": _op(
            "What this user must be shown now",
            {"200": "Pending"},
            params=["external_id"],
            codes=("404", "422"),
        )
    },
    "/api/v1/users/{external_id}/acceptances": {
        "get": _op(
            "The user's decisions",
            {"200": "AcceptanceList"},
            params=["external_id"],
            codes=("404", "422"),
        ),
        "post": _op(
            "Record an acceptance (idempotent)",
            {"200": "Acceptance", "201": "Acceptance"},
            params=["external_id"],
            body="Decision",
            codes=("404", "409"),
        ),
    },
    "/api/v1/users/{external_id}/declines": {
        "post": _op(
            "Record a decline (idempotent)",
            {"200": "Acceptance", "201": "Acceptance"},
            params=["external_id"],
            body="Decision",
            codes=("404", "409"),
        )
    },
    "/api/v1/users/{external_id}/activity": {
        "post": _op(
            "Report activity; records implied acceptances where due",
            {"200": "Activity"},
            params=["external_id"],
            codes=("404", "422"),
        )
    },
}
PATHS["/api/v1/policies/{slug}/versions/{seq}/changes"]["get"]["parameters"].append(
    {"name": "against", "in": "query", "required": False, "schema": {"type": "string"}}
)
SCHEMAS["PolicyList"] = _obj({"policies": {"type": "array", "items": _ref("Policy")}})
SCHEMAS["Erased"] = {"type": "object"}
SCHEMAS["Export"] = {"type": "object"}
NOOP = {
    "/api/v1/noop": {
        "get": {
            "summary": "No-op baseline for benchmarks (no auth, no database)",
            "security": [],
            "parameters": [
                {
                    "name": "db",
                    "in": "query",
                    "required": False,
                    "description": "1: add one SELECT 1 round trip to the database",
                    "schema": {"type": "string", "enum": ["0", "1"]},
                }
            ],
            "responses": {
                "200": {"description": "OK"},
                "422": _error("db is not 0 or 1"),
            },
        }
    }
}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Policy Notifier API",
            "version": "1",
            "description": "Publish policy versions, sync users, ask what a user must accept, "
            "and record acceptance evidence. Errors are JSON {error, message, fields}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {**PATHS, **NOOP},
    }


@bp.get("/api/v1/openapi.json")
def openapi_json():
    """The API description; public, like any API reference."""
    response = jsonify(document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
