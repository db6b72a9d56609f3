"""The OpenAPI 3.1 document of the management API is valid, and the API keeps to it:
schemathesis generates requests from it (valid and invalid) and checks that no answer is a 5xx
and that every answer matches the document (status, content type, headers, schema)."""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Service

EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


def test_the_document_is_valid_openapi_3_1(client: Any) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    flows = document["components"]["securitySchemes"]["client"]["flows"]
    assert set(flows["clientCredentials"]["scopes"]) == {
        "idp:accounts.read", "idp:accounts.write", "idp:merges", "idp:sessions",
        "idp:events.read", "idp:phones.vouch", "idp:accounts.personal_data"}


def test_every_route_is_documented(app: Any, client: Any) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    documented = {(path, method.upper()) for path, ops in document["paths"].items()
                  for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_document":
            path = re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented


def test_the_api_keeps_to_its_document__schemathesis(
    app: Any, service: Service, make_user: Any
) -> None:
    """Every operation, with generated requests (schema-valid and not): no 5xx, and every
    answer as documented. Runs in one test so that it shares the app and the service's token."""
    make_user(phone="+8613800138000", name="Alice")  # something to find
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {service.token}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 18

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_to_the_document(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        keeps_to_the_document()
