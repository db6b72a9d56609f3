"""The refresh's floor in `bench/compare.py`: a raw WSGI callable doing only what a rotating
refresh (RFC 6749 §6, RFC 9700 §4.14.2) of the decided design must do, served by granian as
`idp serve` runs the IdP (2 workers, 4 threads): the form parsed, the client's Basic
credentials checked, the token's rotation as ONE PostgreSQL statement (the claiming
`UPDATE … RETURNING` and the successor's `INSERT` of the IdP's own `refresh_token` table, a
transaction of its own, through psycopg on a connection kept per thread), the two RS256
signatures of the answer (the access token, RFC 9068, and the ID token, OIDC Core §12.2) and
its JSON, one access line. No framework, no cache, no rate limit, no metrics, no reuse
detection beyond the claim: what no implementation in Python on this server can go below.

Environment: BENCH_FLOOR_DSN (psycopg), BENCH_FLOOR_CLIENT ("id:secret"), BENCH_FLOOR_KEY (a
PEM RSA private key file), BENCH_FLOOR_ISSUER."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ROTATE = """
WITH claimed AS (
  UPDATE refresh_token SET rotated_at = %(now)s
  WHERE token_digest = %(digest)s AND rotated_at IS NULL AND revoked_at IS NULL
    AND expires_at > %(now)s
  RETURNING family, client_id, account_id, scope, auth_time, amr, session_id
), successor AS (
  INSERT INTO refresh_token (token_digest, family, predecessor_digest, client_id, account_id,
    scope, auth_time, amr, session_id, access_jti, access_expires_at, issued_at, expires_at)
  SELECT %(successor)s, family, %(digest)s, client_id, account_id, scope, auth_time, amr,
    session_id, %(jti)s, %(access_expires)s, %(now)s, %(expires)s FROM claimed
)
SELECT client_id, account_id, scope, auth_time, amr FROM claimed
"""
ACCESS_TTL, ID_TTL, REFRESH_TTL = 3600, 3600, timedelta(days=30)
JSON_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                ("Pragma", "no-cache")]
ERROR = json.dumps({"error": "invalid_grant"}).encode()
CLIENT_ERROR = json.dumps({"error": "invalid_client"}).encode()

_CLIENT_ID, _, _SECRET = os.environ.get("BENCH_FLOOR_CLIENT", ":").partition(":")
_ISSUER = os.environ.get("BENCH_FLOOR_ISSUER", "http://127.0.0.1")
_KEY: Any = None
_HEADERS: dict[str, bytes] = {}
_local = threading.local()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _key() -> Any:
    global _KEY
    if _KEY is None:
        with open(os.environ["BENCH_FLOOR_KEY"], "rb") as pem:
            _KEY = serialization.load_pem_private_key(pem.read(), None)
        for typ in ("at+jwt", "JWT"):
            _HEADERS[typ] = _b64(json.dumps({"alg": "RS256", "typ": typ, "kid": "floor"},
                                            separators=(",", ":")).encode())
    return _KEY


def _sign(typ: str, claims: dict[str, Any]) -> str:
    key = _key()
    signing_input = _HEADERS[typ] + b"." + _b64(json.dumps(claims, separators=(",", ":"))
                                                .encode())
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return (signing_input + b"." + _b64(signature)).decode()


def _connection() -> psycopg.Connection[Any]:
    found = getattr(_local, "connection", None)
    if found is None or found.closed:
        found = _local.connection = psycopg.connect(os.environ["BENCH_FLOOR_DSN"],
                                                    autocommit=True, prepare_threshold=0)
    return found


def _client_ok(environ: dict[str, Any]) -> bool:
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Basic "):
        return False
    client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    return client_id == _CLIENT_ID and hmac.compare_digest(secret.encode(), _SECRET.encode())


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    started = time.perf_counter()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    form = dict(parse_qsl(environ["wsgi.input"].read(length).decode()))
    if not _client_ok(environ):
        status, body = "401 Unauthorized", CLIENT_ERROR
    elif form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
        status, body = "400 Bad Request", ERROR
    else:
        status, body = _refresh(form["refresh_token"])
    start_response(status, [*JSON_HEADERS, ("Content-Length", str(len(body)))])
    sys.stderr.write(json.dumps({"time": time.time(), "path": environ.get("PATH_INFO"),
                                 "status": status[:3],
                                 "ms": round((time.perf_counter() - started) * 1000, 2)})
                     + "\n")
    return [body]


def _refresh(presented: str) -> tuple[str, bytes]:
    now = datetime.now(UTC)
    issued = int(now.timestamp())
    successor = secrets.token_urlsafe(36)
    jti = secrets.token_urlsafe(16)
    row = _connection().execute(ROTATE, {
        "now": now, "digest": hashlib.sha256(presented.encode()).hexdigest(),
        "successor": hashlib.sha256(successor.encode()).hexdigest(), "jti": jti,
        "access_expires": now + timedelta(seconds=ACCESS_TTL), "expires": now + REFRESH_TTL,
    }).fetchone()
    if row is None or row[0] != _CLIENT_ID:
        return "400 Bad Request", ERROR
    client_id, account_id, scope, auth_time, amr = row
    access = _sign("at+jwt", {
        "iss": _ISSUER, "sub": account_id, "aud": client_id, "client_id": client_id,
        "iat": issued, "exp": issued + ACCESS_TTL, "jti": jti, "scope": scope,
        "auth_time": auth_time, "amr": amr,
    })
    at_hash = _b64(hashlib.sha256(access.encode()).digest()[:16]).decode()
    id_token = _sign("JWT", {
        "iss": _ISSUER, "sub": account_id, "aud": [client_id], "azp": client_id,
        "iat": issued, "exp": issued + ID_TTL, "auth_time": auth_time, "amr": amr,
        "at_hash": at_hash,
    })
    return "200 OK", json.dumps({
        "token_type": "Bearer", "access_token": access, "expires_in": ACCESS_TTL,
        "refresh_token": successor, "scope": scope, "id_token": id_token,
    }).encode()
