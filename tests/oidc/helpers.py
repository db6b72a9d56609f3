from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet


def id_token_claims(browser: Any, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(browser.get("/oauth/jwks").get_json())
    return dict(jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims)


def jwt_header(browser: Any, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(browser.get("/oauth/jwks").get_json())
    return dict(jwt.decode(token, keys, algorithms=["RS256", "ES256"]).header)
