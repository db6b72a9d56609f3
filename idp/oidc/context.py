"""Per-app singletons of the protocol, reached from inside a request."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, g

from idp.crypto import SecretBox
from idp.oidc.keys import KeyRing


def issuer() -> str:
    return current_app.config["IDP_ISSUER"]


def keyring() -> KeyRing:
    return current_app.extensions["idp_keyring"]


def secret_box() -> SecretBox:
    return current_app.extensions["idp_secret_box"]


@dataclass
class AuthContext:
    """How the user authenticated, carried from the grant to the token generator."""

    auth_time: int | None = None
    amr: list[str] = field(default_factory=list)
    session_id: str | None = None


def auth_context() -> AuthContext:
    found: AuthContext | None = g.get("auth_context")  # one look-up through the proxy
    if found is None:
        found = g.auth_context = AuthContext()
    return found
