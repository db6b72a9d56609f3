"""The protocol's token writes — the token endpoint's, and the authorization endpoint's code
and nonce check — as statements built once (SQLAlchemy Core, bound parameters): building a
statement per request cost more Python than running it (bench/profile_token.py). The claims
run at once (their answer decides the request), on PostgreSQL through the driver
(`first`); the writes that follow are staged (`idp.extensions.stage_write`) and sent together
at the answer's one commit, so their parameters are named apart."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, case, insert, or_, select, update

from idp.extensions import db, driver_first
from idp.oidc.models import AuthorizationCode, RefreshToken

_codes = cast(Table, AuthorizationCode.__table__)
_tokens = cast(Table, RefreshToken.__table__)
_when = _codes.c.expires_at.type

# RFC 6749 §4.1.2: a code is used once; of concurrent redemptions exactly one claims it.
CLAIM_CODE = (
    update(_codes)
    .where(
        _codes.c.code_digest == bindparam("digest"),
        _codes.c.client_id == bindparam("client"),
        _codes.c.used_at.is_(None),
        _codes.c.expires_at > bindparam("now", type_=_when),
    )
    .values(used_at=bindparam("used", type_=_when))
    .returning(*_codes.c)
)
_CODE_COLUMNS = ("code_digest", "client_id", "account_id", "redirect_uri", "scope", "nonce",
                 "code_challenge", "code_challenge_method", "auth_time", "amr", "session_id",
                 "expires_at")
# The authorization endpoint's one write (RFC 6749 §4.1.2); parameters prefixed `code_`.
INSERT_CODE = insert(_codes).values({name: bindparam(f"code_{name}") for name in _CODE_COLUMNS})
# A nonce already in a live code of the client: a replayed authorization request (OIDC Core
# §15.5.2).
NONCE_SEEN = (
    select(_codes.c.code_digest)
    .where(
        _codes.c.client_id == bindparam("client"),
        _codes.c.nonce == bindparam("nonce"),
        _codes.c.expires_at > bindparam("now", type_=_when),
    )
    .limit(1)
)
# What was issued from a code, so that a replay can revoke it.
LINK_CODE = (
    update(_codes)
    .where(_codes.c.code_digest == bindparam("link_digest"))
    .values(access_jti=bindparam("link_jti"), token_family=bindparam("link_family"))
)
# RFC 9700 §4.14.2: a refresh token rotates once; of racing refreshes exactly one claims it.
CLAIM_REFRESH = (
    update(_tokens)
    .where(
        _tokens.c.token_digest == bindparam("digest"),
        _tokens.c.rotated_at.is_(None),
        _tokens.c.revoked_at.is_(None),
        _tokens.c.expires_at > bindparam("now", type_=_when),
    )
    .values(rotated_at=bindparam("rotated", type_=_when))
    .returning(*_tokens.c)
)
# The rotation's answer on the rotated row; the family's older answers dropped.
_is_rotated = _tokens.c.token_digest == bindparam("answer_digest")
REMEMBER_ANSWER = (
    update(_tokens)
    .where(
        _tokens.c.family == bindparam("answer_family"),
        or_(_is_rotated, _tokens.c.successor_response_encrypted.is_not(None)),
    )
    .values(successor_response_encrypted=case((_is_rotated, bindparam("answer")), else_=None))
)
_REFRESH_COLUMNS = ("token_digest", "family", "client_id", "account_id", "scope", "auth_time",
                    "amr", "session_id", "access_jti", "access_expires_at", "issued_at",
                    "expires_at")
# Its parameters: each column's name prefixed with `refresh_`.
INSERT_REFRESH = insert(_tokens).values(
    {name: bindparam(f"refresh_{name}") for name in _REFRESH_COLUMNS}
)



def first(statement: Any, **parameters: Any) -> dict[str, Any] | None:
    """The first row `statement` returns, by column key: on PostgreSQL through the driver
    (`idp.extensions.driver_first`), on SQLite through SQLAlchemy."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return driver_first(connection, statement, parameters)
    row = connection.execute(statement, parameters).first()
    return dict(row._mapping) if row is not None else None
