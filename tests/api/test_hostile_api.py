"""Hostile input to /api/v1 that once answered 500 (issue 23 item 13), on SQLite and PostgreSQL:
ids past the Integer column's range, characters at the edges of Unicode in a search, lone UTF-16
surrogates in a JSON body, and a body over the limit sent without Content-Length."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.api.conftest import Service
from tests.api.test_accounts_api import problem_of

# Past PostgreSQL's integer, past SQLite's 64 bits, and far past both.
HUGE_IDS = ["2147483648", "9223372036854775808", "1" + "0" * 40]


@pytest.mark.parametrize("identity_id", HUGE_IDS)
def test_an_id_past_the_columns_range_is_404__issue23_13(
    service: Service, make_user: Any, identity_id: str
) -> None:
    sub = make_user().id
    for method, path in (("POST", f"/merges/{identity_id}/undo"),
                         ("DELETE", f"/accounts/{sub}/identities/{identity_id}")):
        response = service.call(method, path)
        assert response.status_code == 404, (path, response.get_data(as_text=True)[:300])
        assert problem_of(response)


def test_the_document_bounds_every_path_id_by_its_column(client: Any) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    ids = [parameter["schema"] for operations in document["paths"].values()
           for operation in operations.values() for parameter in operation["parameters"]
           if parameter["in"] == "path" and parameter["schema"].get("type") == "integer"]
    assert len(ids) == 2
    assert all(schema["maximum"] == 2**31 - 1 and schema["minimum"] == 0 for schema in ids)


@pytest.mark.parametrize("last", ["\ud7ff", "\U0010ffff", "\uffff"])
def test_a_search_ending_at_the_edges_of_unicode_is_answered__issue23_13(
    service: Service, make_user: Any, last: str
) -> None:
    """SQLite's name search bounds a prefix by its successor: past U+D7FF comes U+E000 (the
    surrogates are no characters) and past U+10FFFF the one before is carried."""
    named = make_user(name=f"Zoë{last}{last}").id
    make_user(name="Zoe")
    for query, expected in ((f"zoë{last}", [named]), (f"zoë{last}{last}", [named]),
                            (f"zoë{last}{last}{last}", [])):
        response = service.call("GET", "/accounts", query_string={"q": query})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        assert [a["sub"] for a in response.get_json()["accounts"]] == expected, query


def test_invalid_utf8_in_a_search_is_answered(service: Service) -> None:
    """%ED%A0%80 would be a surrogate: werkzeug decodes it as U+FFFD, never a lone surrogate."""
    for raw in ("%ED%A0%80", "%ED%9F%BF", "%F4%8F%BF%BF", "%FF"):
        response = service.call("GET", f"/accounts?q={raw}")
        assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("text", ["\\ud800", "x\\udfff", "\\udbff", "\\udc00\\ud800"])
def test_a_lone_surrogate_in_a_claim_is_400__rfc7493_2_1(
    service: Service, make_user: Any, text: str
) -> None:
    sub = make_user().id
    etag = service.call("GET", f"/accounts/{sub}").headers["ETag"]
    for path, method, body, headers in (
        (f"/accounts/{sub}/claims", "PATCH", f'{{"nickname": "{text}"}}', {"If-Match": etag}),
        ("/accounts", "POST",
         f'{{"phone": "+8613800138077", "claims": {{"name": "{text}"}}}}', {}),
        ("/merges/preview", "POST", f'{{"survivor": "{sub}", "merged": "{sub}", '
                                    f'"reason": "{text}"}}', {}),
        (f"/accounts/{sub}/claims", "PATCH", f'{{"{text}": "x"}}', {"If-Match": etag}),
    ):
        response = service.call(method, path, data=body,
                                headers={"Content-Type": "application/json", **headers})
        assert response.status_code == 400, (path, response.get_data(as_text=True)[:300])
        assert problem_of(response)["type"] == "urn:idp:problem:invalid_body"
    # A pair is one character (U+10FFFF) and is stored as such.
    paired = service.call("PATCH", f"/accounts/{sub}/claims", data='{"nickname": "\\udbff\\udfff"}',
                          headers={"Content-Type": "application/json", "If-Match": etag})
    assert paired.status_code == 200, paired.get_data(as_text=True)[:300]
    assert paired.get_json()["profile"]["nickname"] == "\U0010ffff"


def chunked(service: Service, body: bytes) -> Any:
    """A body without Content-Length, as granian hands it over (`wsgi.input_terminated`)."""
    return service.call("POST", "/accounts", input_stream=io.BytesIO(body),
                        headers={"Content-Type": "application/json",
                                 "Transfer-Encoding": "chunked"},
                        environ_overrides={"wsgi.input_terminated": True})


@pytest.mark.parametrize("size", [16 * 1024 + 1, 64 * 1024, 1024 * 1024])
def test_a_chunked_body_over_the_limit_is_413__rfc9110_15_5_14(
    service: Service, size: int
) -> None:
    response = chunked(service, b'{"phone": "' + b"1" * size + b'"}')
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert problem_of(response)["type"] == "urn:idp:problem:request_too_large"


def test_a_chunked_body_within_the_limit_is_read(service: Service) -> None:
    response = chunked(service, b'{"phone": "+8613800138055"}')
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
