"""The floor row of `bench/compare.py`: a raw WSGI callable returning a JWKS-sized JSON body,
served by granian like `idp serve` (2 workers). What Python on this server costs per request
before any of the IdP's own work (../shared/peers/README.md, "The floor")."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

BODY = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                             "n": "x" * 342, "e": "AQAB"}]}).encode()
HEADERS = [("content-type", "application/json"), ("cache-control", "public, max-age=60"),
           ("content-length", str(len(BODY)))]


def app(_environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
