"""The data dictionary: every profile claim the IdP serves, its type, the scope that releases it,
who may write it, and the conflict rule that picks the served value among its sources.

Built-in claims are the OIDC Core §5.1 ones the IdP knows. Each declaration says where its
value comes from (`origin`): `profile` claims are stored values, one per source, picked by the
conflict rule below; `account` claims come from the account row (`sub`, `updated_at`);
`identity` claims from the account's ways in (a verified phone over an unverified one, then the
most recently used: `phone_number`, `email`, `wechat_unionid`, and `wechat_openid` of the
asking client's own WeChat app). Only profile claims are written. Operators declare more in
`IDP_CUSTOM_CLAIMS` (a JSON list), e.g.
`[{"name": "member_level", "type": "integer", "scope": "profile", "writers": ["admin"]}]`,
or in the admin UI (`claim_declaration` rows, read again every `DECLARATIONS_CACHE_SECONDS`).
A declaration may name a scope of its own (`"scope": "member"`, RFC 6749 §3.3 syntax, optionally
with a `"scope_description"` for the consent page): the scope then becomes one the IdP knows
(discovery, client registration, consent), releasing its claims only when granted (OIDC Core
§5.4 style). Built-in scope names cannot be redefined.
One agreed name per field: a declaration whose name is another claim's name spelt differently
(`nick_name` beside `nickname`) is refused at start-up.

The conflict rule (`IDP_CLAIM_PRIORITY`, JSON): a list of sources per claim, `"*"` for every claim
not named, e.g. `{"*": ["user", "website", "wechat"], "nickname": ["wechat", "user"]}` (the
mini-program's data wins for the nickname). Among sources of equal rank the most recent value
wins. Every source's value is kept, so changing the rule changes only what is served.
"""

from __future__ import annotations

import json
import logging
import operator
import re
import time
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import select

from idp.scopes import MANAGEMENT_SCOPES, SUPPORTED_SCOPES

logger = logging.getLogger(__name__)

# Sources of a claim value: people and systems that write it.
SOURCES = ("user", "admin", "api", "website", "wechat")
DEFAULT_PRIORITY = ("user", "admin", "api", "website", "wechat")
WRITERS = ("user", "admin", "api")
TYPES = ("string", "integer", "boolean", "date", "url", "gender", "birthdate", "address")
# Where a claim's value comes from (see the module's docstring).
PROFILE, ACCOUNT, IDENTITY = "profile", "account", "identity"
RELEASING_SCOPES = ("profile", "email", "phone", "address", "wechat")
BUILTIN_SCOPES = frozenset(SUPPORTED_SCOPES + MANAGEMENT_SCOPES)
# RFC 6749 §3.3 scope-token (%x21 / %x23-5B / %x5D-7E), at most the column's 32 characters;
# `idp:` is the management API's namespace.
SCOPE_PATTERN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,32}$")
RESERVED_SCOPE_PREFIX = "idp:"
MAX_SCOPE_DESCRIPTION = 200
ADDRESS_PARTS = ("formatted", "street_address", "locality", "region", "postal_code", "country")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_TEXT = 255
DECLARATIONS_CACHE_SECONDS = 5


class ClaimRefused(ValueError):
    """A claim value that may not be stored: `code` says why (`unknown` claim, `writer` not
    allowed, `value` invalid for the claim's type); `reason` says it in words."""

    def __init__(self, name: str, reason: str, code: str = "value") -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class ClaimDeclaration:
    name: str
    type: str
    scope: str
    writers: tuple[str, ...]
    description: str
    builtin: bool
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    scope_description: str = ""
    origin: str = PROFILE


BUILTIN = (
    ClaimDeclaration("sub", "string", "openid", (),
                     "Subject: the account's UUID, stable across merges (OIDC Core §2).", True,
                     origin=ACCOUNT),
    ClaimDeclaration("name", "string", "profile", ("user", "admin", "api"),
                     "Full name (OIDC Core §5.1).", True),
    ClaimDeclaration("nickname", "string", "profile", ("user", "admin", "api"),
                     "Casual name; WeChat's nickname (OIDC Core §5.1).", True),
    ClaimDeclaration("picture", "url", "profile", ("user", "admin", "api"),
                     "Profile picture URL (OIDC Core §5.1).", True),
    ClaimDeclaration("locale", "string", "profile", ("user", "admin", "api"),
                     "BCP 47 language tag (OIDC Core §5.1).", True),
    ClaimDeclaration("gender", "gender", "profile", ("user", "admin", "api"),
                     "female, male, or another value (OIDC Core §5.1).", True),
    ClaimDeclaration("birthdate", "birthdate", "profile", ("user", "admin", "api"),
                     "YYYY-MM-DD, 0000-MM-DD or YYYY (OIDC Core §5.1).", True),
    ClaimDeclaration("updated_at", "integer", "profile", (),
                     "When the served profile last changed, seconds since 1970 (OIDC Core §5.1).",
                     True, origin=ACCOUNT),
    ClaimDeclaration("address", "address", "address", ("user", "admin", "api"),
                     "Postal address, formatted and structured parts (OIDC Core §5.1.1).", True),
    ClaimDeclaration("email", "string", "email", (),
                     "The account's preferred email address (OIDC Core §5.1).", True,
                     origin=IDENTITY),
    ClaimDeclaration("email_verified", "boolean", "email", (),
                     "Whether that address was proven (OIDC Core §5.1).", True, origin=IDENTITY),
    ClaimDeclaration("phone_number", "string", "phone", (),
                     "The account's preferred phone number, E.164 (OIDC Core §5.1).", True,
                     origin=IDENTITY),
    ClaimDeclaration("phone_number_verified", "boolean", "phone", (),
                     "Whether that number was proven by a code (OIDC Core §5.1).", True,
                     origin=IDENTITY),
    ClaimDeclaration("wechat_unionid", "string", "wechat", (),
                     "The WeChat user across the operator's apps (CONTRACT §7).", True,
                     origin=IDENTITY),
    ClaimDeclaration("wechat_openid", "string", "wechat", (),
                     "The WeChat user in the asking client's own app (CONTRACT §7).", True,
                     origin=IDENTITY),
)
# Protocol claims, and standard claims the IdP does not serve: no declaration may take them.
RESERVED = {
    "iss", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr", "azp", "sid",
    "at_hash", "c_hash", "given_name", "family_name", "middle_name", "preferred_username",
    "profile", "website", "zoneinfo", "scope", "client_id",
}


@dataclass(frozen=True)
class Catalogue:
    claims: dict[str, ClaimDeclaration]

    def get(self, name: str) -> ClaimDeclaration | None:
        return self.claims.get(name)

    def released_by(self, scopes: set[str]) -> list[ClaimDeclaration]:
        return [claim for claim in self.claims.values() if claim.scope in scopes]

    def profile_claims(self) -> list[ClaimDeclaration]:
        """The claims stored as values (written by their writers, picked by the conflict
        rule), built in or the operator's."""
        return [claim for claim in self.claims.values() if claim.origin == PROFILE]

    def served_from_identities(self) -> dict[str, list[str]]:
        """{scope: the names of the account and identity claims it releases}."""
        scopes: dict[str, list[str]] = {}
        for claim in self.claims.values():
            if claim.origin != PROFILE:
                scopes.setdefault(claim.scope, []).append(claim.name)
        return scopes

    def declared_scopes(self) -> dict[str, list[ClaimDeclaration]]:
        """The operator's own scopes (not built in), each with the claims it releases."""
        scopes: dict[str, list[ClaimDeclaration]] = {}
        for claim in self.claims.values():
            if claim.scope not in BUILTIN_SCOPES:
                scopes.setdefault(claim.scope, []).append(claim)
        return scopes

    def scope_description(self, scope: str) -> str:
        """What the operator declared the scope to be for (the first declaration that says);
        empty when none did."""
        return next((claim.scope_description for claim in self.declared_scopes().get(scope, [])
                     if claim.scope_description), "")


def build_catalogue(custom: Any, priority: Any,
                    declared: tuple[dict[str, Any], ...] = ()) -> Catalogue:
    """Parses and checks both settings and the admin's declarations; raises `ValueError` naming
    the setting at fault."""
    rules = _priority_rules(_json(priority, "IDP_CLAIM_PRIORITY") or {})
    declarations = list(BUILTIN)
    for entry in _json(custom, "IDP_CUSTOM_CLAIMS") or []:
        declarations.append(_declaration(entry, declarations))
    for entry in declared:
        try:
            declarations.append(_declaration(entry, declarations))
        except ValueError as error:  # since declared in configuration too: configuration wins
            logger.warning("claim declaration %s ignored: %s", entry.get("name"), error)
    unknown = set(rules) - {"*"} - {claim.name for claim in declarations}
    if unknown:
        raise ValueError(f"IDP_CLAIM_PRIORITY names unknown claims: {', '.join(sorted(unknown))}")
    default = rules.get("*", DEFAULT_PRIORITY)
    return Catalogue({
        claim.name: _with_priority(claim, rules.get(claim.name, default))
        for claim in declarations
    })


def _with_priority(claim: ClaimDeclaration, priority: tuple[str, ...]) -> ClaimDeclaration:
    return replace(claim, priority=priority)


def _json(value: Any, setting: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as error:
        raise ValueError(f"{setting} is not valid JSON: {error}") from None


def _priority_rules(rules: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(rules, dict):
        raise ValueError("IDP_CLAIM_PRIORITY must be an object of claim: [sources]")
    parsed = {}
    for claim, sources in rules.items():
        if (not isinstance(sources, list) or not sources
                or any(source not in SOURCES for source in sources)
                or len(set(sources)) != len(sources)):
            raise ValueError(
                f"IDP_CLAIM_PRIORITY[{claim!r}] must list distinct sources of {', '.join(SOURCES)}"
            )
        parsed[claim] = tuple(sources)
    return parsed


def _declaration(entry: Any, known: list[ClaimDeclaration]) -> ClaimDeclaration:
    if not isinstance(entry, dict):
        raise ValueError("IDP_CUSTOM_CLAIMS must be a list of objects")
    name = str(entry.get("name", ""))
    if not NAME_PATTERN.match(name):
        raise ValueError(f"IDP_CUSTOM_CLAIMS: {name!r} is not a claim name (a-z, 0-9, _)")
    spelling = _spelling(name)
    if name in RESERVED or any(_spelling(claim.name) == spelling for claim in known) or any(
            _spelling(claim) == spelling for claim in RESERVED):
        raise ValueError(f"IDP_CUSTOM_CLAIMS: {name!r} is already a claim (one name per field)")
    kind = entry.get("type", "string")
    if kind not in TYPES[:5]:
        raise ValueError(f"IDP_CUSTOM_CLAIMS[{name}]: type must be one of {', '.join(TYPES[:5])}")
    scope = _releasing_scope(name, entry.get("scope", "profile"))
    writers = entry.get("writers", ["admin"])
    if not isinstance(writers, list) or not writers or set(writers) - set(WRITERS):
        raise ValueError(f"IDP_CUSTOM_CLAIMS[{name}]: writers must be some of {', '.join(WRITERS)}")
    scope_description = entry.get("scope_description") or ""
    if (not isinstance(scope_description, str) or len(scope_description) > MAX_SCOPE_DESCRIPTION
            or "\x00" in scope_description):
        raise ValueError(f"IDP_CUSTOM_CLAIMS[{name}]: scope_description must be text of at most "
                         f"{MAX_SCOPE_DESCRIPTION} characters")
    if scope_description and scope in BUILTIN_SCOPES:
        raise ValueError(f"IDP_CUSTOM_CLAIMS[{name}]: scope_description is for a scope of its own")
    return ClaimDeclaration(name, kind, scope, tuple(writers),
                            str(entry.get("description", "")), False,
                            scope_description=scope_description.strip())


def _releasing_scope(name: str, scope: Any) -> str:
    """One of the releasing scopes, or a new scope name: RFC 6749 §3.3 syntax, not a built-in
    scope (`openid`, `offline_access`, the management API's) nor in the `idp:` namespace."""
    if scope in RELEASING_SCOPES:
        return str(scope)
    if (not isinstance(scope, str) or not SCOPE_PATTERN.match(scope) or scope in BUILTIN_SCOPES
            or scope.startswith(RESERVED_SCOPE_PREFIX)):
        raise ValueError(f"IDP_CUSTOM_CLAIMS[{name}]: scope must be one of "
                         f"{', '.join(RELEASING_SCOPES)} or a new scope name (RFC 6749 §3.3: "
                         f"no space, quote or backslash; not a built-in scope)")
    return scope


def _spelling(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def catalogue() -> Catalogue:
    """The app's catalogue, rebuilt when its settings or the declarations change (tests change
    the rule live). At most one small query per `DECLARATIONS_CACHE_SECONDS` per process."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    sources = (config.get("IDP_CUSTOM_CLAIMS"), config.get("IDP_CLAIM_PRIORITY"), _declared())
    cached = app.extensions.get("idp.catalogue")  # (key, catalogue, the sources it was made of)
    if cached is not None and all(map(operator.is_, cached[2], sources)):
        return cached[1]  # the very same settings and declarations: no key to make (~15 µs)
    key = tuple(json.dumps(source, sort_keys=True) for source in sources)
    built = cached[1] if cached is not None and cached[0] == key else build_catalogue(*sources)
    app.extensions["idp.catalogue"] = (key, built, sources)
    return built


def _declared() -> tuple[dict[str, Any], ...]:
    cached = current_app.extensions.get("idp.declared")
    if cached is not None and time.monotonic() - cached[0] < DECLARATIONS_CACHE_SECONDS:
        return cached[1]
    from idp.extensions import db
    from idp.identity.models import ClaimDeclarationRecord

    rows = db.session.scalars(select(ClaimDeclarationRecord)
                              .order_by(ClaimDeclarationRecord.created_at,
                                        ClaimDeclarationRecord.name)).all()
    declared = tuple({"name": row.name, "type": row.type, "scope": row.scope,
                      "writers": list(row.writers), "description": row.description,
                      "scope_description": row.scope_description or ""}
                     for row in rows)
    current_app.extensions["idp.declared"] = (time.monotonic(), declared)
    return declared


def declare_claim(entry: dict[str, Any]) -> ClaimDeclaration:
    """Adds an operator-defined claim (the admin UI); `ValueError` as for `IDP_CUSTOM_CLAIMS`.
    The caller audits and commits."""
    from idp.extensions import db
    from idp.identity.models import ClaimDeclarationRecord

    declaration = _declaration(entry, list(catalogue().claims.values()))
    db.session.add(ClaimDeclarationRecord(
        name=declaration.name, type=declaration.type, scope=declaration.scope,
        writers=list(declaration.writers), description=declaration.description,
        scope_description=declaration.scope_description))
    db.session.flush()
    current_app.extensions.pop("idp.declared", None)
    return declaration


def supported_scopes() -> tuple[str, ...]:
    """Scopes a relying party may ask for: the built-in ones, then the operator's own
    (discovery's `scopes_supported`)."""
    return SUPPORTED_SCOPES + tuple(sorted(catalogue().declared_scopes()))


def registrable_scopes() -> tuple[str, ...]:
    """Scopes a client may be registered with (CLI `--scope`, the admin client form) and the
    authorization server accepts: every supported scope and the management API's."""
    return supported_scopes() + MANAGEMENT_SCOPES


def rank(claim: str, source: str) -> int:
    declaration = catalogue().get(claim)
    priority = declaration.priority if declaration else DEFAULT_PRIORITY
    return priority.index(source) if source in priority else len(priority)


def check_write(name: str, value: Any, writer: str) -> str | None:
    """The value as stored (text), or None to clear it; `ClaimRefused` if it may not be."""
    declaration = catalogue().get(name)
    if declaration is None or declaration.origin != PROFILE:
        raise ClaimRefused(name, "unknown claim", "unknown")
    if writer in WRITERS and writer not in declaration.writers:
        raise ClaimRefused(name, f"{writer} may not write it", "writer")
    if value is None or value == "" or value == {}:
        return None
    return VALIDATORS[declaration.type](name, value)


def served(name: str, stored: str) -> Any:
    """The stored text as the claim's JSON type."""
    declaration = catalogue().get(name)
    kind = declaration.type if declaration else "string"
    if kind == "integer":
        return int(stored)
    if kind == "boolean":
        return stored == "true"
    if kind == "address":
        return json.loads(stored)
    return stored


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value.strip()) > MAX_TEXT or "\x00" in value:
        raise ClaimRefused(name, f"must be text of at most {MAX_TEXT} characters")
    return value.strip()


def _integer(name: str, value: Any) -> str:
    if isinstance(value, bool):
        raise ClaimRefused(name, "must be an integer")
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        raise ClaimRefused(name, "must be an integer") from None
    if abs(number) >= 2**53:  # JSON numbers stay exact in every client
        raise ClaimRefused(name, "is out of range")
    return str(number)


def _boolean(name: str, value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ClaimRefused(name, "must be true or false")
    return text


def _date(name: str, value: Any) -> str:
    text = _text(name, value)
    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_date(name)
    except ValueError:
        return _bad_date(name)


def _bad_date(name: str) -> str:
    raise ClaimRefused(name, "must be a date YYYY-MM-DD")


def _url(name: str, value: Any) -> str:
    text = _text(name, value)
    if not re.match(r"^https?://[^\s/]+\S*$", text):
        raise ClaimRefused(name, "must be an http(s) URL")
    return text


def _gender(name: str, value: Any) -> str:
    text = _text(name, value)
    if not text or len(text) > 32:
        raise ClaimRefused(name, "must be female, male or a short other value")
    return text


def _birthdate(name: str, value: Any) -> str:
    """OIDC Core §5.1: YYYY-MM-DD; 0000 as the year when it is withheld; or YYYY alone."""
    text = _text(name, value)
    if re.fullmatch(r"\d{4}", text):
        return text
    try:
        date.fromisoformat(("2000" + text[4:]) if text.startswith("0000-") else text)
    except ValueError:
        raise ClaimRefused(name, "must be YYYY-MM-DD, 0000-MM-DD or YYYY") from None
    if len(text) != 10:
        raise ClaimRefused(name, "must be YYYY-MM-DD, 0000-MM-DD or YYYY")
    return text


def _address(name: str, value: Any) -> str:
    """OIDC Core §5.1.1: a JSON object of the formatted and structured parts, all strings."""
    if isinstance(value, str):
        value = _json_object(value) if value.lstrip().startswith("{") else {"formatted": value}
    if not isinstance(value, dict) or set(value) - set(ADDRESS_PARTS):
        raise ClaimRefused(name, f"must be an object of {', '.join(ADDRESS_PARTS)}")
    parts = {part: _text(name, text) for part, text in value.items() if text not in (None, "")}
    if not parts:
        raise ClaimRefused(name, "has no part")
    return json.dumps({part: parts[part] for part in ADDRESS_PARTS if part in parts},
                      ensure_ascii=False)


def _json_object(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ClaimRefused("address", "is not a JSON object") from None


VALIDATORS = {
    "string": _text, "integer": _integer, "boolean": _boolean, "date": _date, "url": _url,
    "gender": _gender, "birthdate": _birthdate, "address": _address,
}


def init_app(app: Any) -> None:
    """Checks both settings at start-up, so a bad declaration stops the IdP with its reason
    (the admin's declarations were checked when made; the database is not asked here)."""
    from idp.errors import ConfigError

    try:
        build_catalogue(app.config.get("IDP_CUSTOM_CLAIMS"), app.config.get("IDP_CLAIM_PRIORITY"))
    except ValueError as error:
        raise ConfigError(str(error)) from None
