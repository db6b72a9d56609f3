"""Authlib's endpoints and grants on a `HotRequest`: its request object built from the parsed
request rather than from Flask's, and its errors answered in the hot paths' shape."""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.oidc.hot_paths.dispatcher import JSON_ERROR_HEADERS, Answer
from idp.oidc.hot_paths.http import HotRequest, json_body
from idp.oidc.transport import CHECKED, secure_origin

# Set by the error itself or by the hot path's error answer.
REPLACED_HEADERS = frozenset({"content-type", "cache-control", "pragma"})


class HotOAuth2Request(OAuth2Request):
    """Authlib's request built from a `HotRequest`. With `multi`, the payload is a `MultiDict`
    (as Flask's form is) for the grants that look for repeated parameters themselves; the hot
    request has refused those already (RFC 6749 §3.2)."""

    def __init__(self, request: HotRequest, multi: bool = False) -> None:
        url = request.url
        origin = url[: len(url) - len(request.path)]
        # Authlib's transport check (RFC 6749 §3.1), per origin (`idp.oidc.transport`).
        super().__init__(request.method, CHECKED if secure_origin(origin) else url,
                         headers=request.headers)
        self.uri = url
        self._hot = request
        form = request.form
        self.payload = BasicOAuth2Payload(MultiDict(form) if multi else form)

    @property
    def args(self) -> dict[str, str]:
        return self._hot.args

    @property
    def form(self) -> dict[str, str]:
        return self._hot.form


def oauth_error_answer(request: HotRequest, error: OAuth2Error, error_uri: Any = None) -> Answer:
    """RFC 6749 §5.2 error JSON of an Authlib error, with its own status, headers (a challenge,
    Retry-After) and extra members (`mfa_required`'s), the request id added; the transaction
    rolled back."""
    db.session.rollback()
    status, body, headers = error(error_uri)
    answer = dict(body)
    answer["request_id"] = request.request_id
    headers = [h for h in headers if h[0].lower() not in REPLACED_HEADERS]
    return status, [*JSON_ERROR_HEADERS, *headers], json_body(answer)
