"""Accounts and the identities they hold; aliases, merges and the audit trail.

Only `idp.identity.accounts` moves identities between accounts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    event,
    func,
    or_,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from sqlalchemy.sql.elements import ColumnElement

from idp.extensions import Model
from idp.field_crypto import normalise, personal_data
from idp.models_base import UTCDateTime, new_uuid, utcnow
from idp.sealed_columns import MaybeSealedText, Personal, SealedJSON, SealedText


class IdentityKind:
    PASSWORD = "password"  # a password credential; `value` is a random credential id
    PHONE = "phone"  # E.164
    EMAIL = "email"  # lower-cased
    WECHAT_OPENID = "wechat_openid"  # `namespace` is the appid
    WECHAT_UNIONID = "wechat_unionid"

    ALL = (PASSWORD, PHONE, EMAIL, WECHAT_OPENID, WECHAT_UNIONID)
    LOGIN_METHODS = (PASSWORD, WECHAT_OPENID, WECHAT_UNIONID)
    # Encrypted at rest and found by blind index (idp/field_crypto.py). Openids stay plain:
    # an openid means something only to the app it was issued for, and the WeChat calls and
    # support lookups use it as it is; credential ids are random.
    PERSONAL = (PHONE, EMAIL, WECHAT_UNIONID)


class AccountStatus:
    ACTIVE = "active"
    DISABLED = "disabled"
    MERGED = "merged"  # folded into another account; its sub is now an alias
    DELETED = "deleted"  # erased at the user's request: a tombstone, its sub never reused


class Account(Model):
    __tablename__ = "account"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.ACTIVE)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # The channel that created the account: website, website_wechat, miniprogram, admin.
    created_via: Mapped[str] = mapped_column(String(32), default="website")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # OIDC `updated_at`: when a served claim last changed.
    profile_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Access tokens issued before this instant are dead (merge, disable, "sign out everywhere").
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    merged_into_id: Mapped[str | None] = mapped_column(
        ForeignKey("account.id"), nullable=True, index=True
    )
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Account deletion (注销): set when the user asks; erased by `idp worker` once it is due.
    deletion_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deletion_due_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True, index=True
    )

    identities: Mapped[list[Identity]] = relationship(back_populates="account")
    claims: Mapped[list[ProfileClaim]] = relationship(back_populates="account")

    @property
    def is_active(self) -> bool:
        return self.status == AccountStatus.ACTIVE


class Identity(Model):
    """One way of recognising a person: a password, a phone, an email, a WeChat id."""

    __tablename__ = "identity"
    __table_args__ = (
        # A verified identity belongs to exactly one account; unverified phones and emails may
        # repeat (they prove nothing, and the identity report lists them as suggestions).
        Index(
            "uq_identity_verified",
            "kind",
            "namespace",
            "value",
            unique=True,
            sqlite_where=text("verified"),
            postgresql_where=text("verified"),
        ),
        Index("ix_identity_lookup", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    namespace: Mapped[str] = mapped_column(String(64), default="")  # WeChat appid for openids
    # What lookups and the uniqueness rule compare: the value itself for credentials and
    # openids; for personal kinds the blind index, the value being in `sealed_value`. A row
    # written before encryption holds its plain value here until `idp data encrypt`.
    lookup_key: Mapped[str] = mapped_column("value", String(255))
    sealed_value: Mapped[str | None] = mapped_column(
        "value_sealed", SealedText("identity.value"), nullable=True
    )
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_by: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the proof
    secret_hash: Mapped[str | None] = mapped_column(Text, nullable=True)  # password credentials
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __init__(self, **fields: Any):
        value = fields.pop("value", None)
        super().__init__(**fields)
        if value is not None:
            self.value = value  # after `kind`, which decides how it is stored

    @hybrid_property
    def value(self) -> str:
        """The plain value (E.164 phone, lower-cased email, WeChat id, credential id)."""
        return self.sealed_value if self.sealed_value is not None else self.lookup_key

    @value.inplace.expression
    @classmethod
    def _value_expression(cls) -> ColumnElement[str]:
        # A query comparing `Identity.value` would miss every encrypted row: refuse it loudly.
        raise AttributeError("Identity.value is not a column: use Identity.value_is(value, kind)")

    @value.inplace.setter
    def _value_setter(self, plain: str) -> None:
        if self.kind in IdentityKind.PERSONAL:
            self.sealed_value = plain
            self.lookup_key = ""  # the blind index, taken when the row is written (below)
        else:
            self.sealed_value = None
            self.lookup_key = plain

    @classmethod
    def value_is(cls, value: str, *kinds: str) -> ColumnElement[bool]:
        """Identities of one of `kinds` holding `value`: one indexed equality per kind (an IN of
        the blind index under each key version, and the plain value of rows not yet encrypted)."""
        return or_(*(
            and_(cls.kind == kind, cls.lookup_key.in_(lookup_keys(kind, value)))
            for kind in kinds
        ))

    account: Mapped[Account] = relationship(back_populates="identities")


PERSONAL_CLAIMS = frozenset({"address", "birthdate"})


def lookup_keys(kind: str, value: str) -> list[str]:
    if kind not in IdentityKind.PERSONAL:
        return [value]
    index = personal_data().index
    return [*index.every_key(kind, value), normalise(kind, value)]




@event.listens_for(Identity, "before_insert")
@event.listens_for(Identity, "before_update")
def _take_blind_index(_mapper: Any, _connection: Any, identity: Identity) -> None:
    """Under the current index key, whenever the row is written: a new value, or a rewrite by
    `idp keys rotate-data`."""
    if identity.kind in IdentityKind.PERSONAL and identity.sealed_value is not None:
        identity.lookup_key = personal_data().index.key(identity.kind, identity.sealed_value)


class ProfileClaim(Model):
    """A profile claim value as one source knows it; the served value is chosen in `claims.py`."""

    __tablename__ = "profile_claim"
    __table_args__ = (
        Index("uq_profile_claim_source", "account_id", "name", "source", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # user, website, wechat
    # Encrypted for PERSONAL_CLAIMS; names stay plain: the admin searches them by prefix and
    # substring, which no blind index can answer, and a name alone identifies nobody.
    value: Mapped[str] = mapped_column(MaybeSealedText("profile_claim.value"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="claims")

    def __init__(self, **fields: Any):
        value = fields.pop("value", None)
        super().__init__(**fields)
        if value is not None:
            self.value = value  # after `name`, which decides whether it is sealed

    @validates("value")
    def _seal_personal(self, _key: str, value: str | None) -> str | None:
        if value is not None and self.name in PERSONAL_CLAIMS:
            return Personal(value)
        return value


# The admin's name search (`admin/search.py`): a prefix match on this index everywhere
# (text_pattern_ops lets PostgreSQL use it for LIKE 'prefix%' whatever the collation) ...
NAME_CLAIMS = text("name IN ('name', 'nickname')")
Index(
    "ix_profile_claim_name_prefix",
    func.lower(ProfileClaim.value).label("lower_value"),
    postgresql_ops={"lower_value": "text_pattern_ops"},
    sqlite_where=NAME_CLAIMS,
    postgresql_where=NAME_CLAIMS,
)
# ... and, on PostgreSQL, a substring match of three characters or more on a trigram index.
Index(
    "ix_profile_claim_name_trigram",
    func.lower(ProfileClaim.value).label("lower_value"),
    postgresql_using="gin",
    postgresql_ops={"lower_value": "gin_trgm_ops"},
    postgresql_where=NAME_CLAIMS,
).ddl_if(dialect="postgresql")
event.listen(
    ProfileClaim.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)


class AccountAlias(Model):
    """The `sub` of a merged-away account, still resolvable to the survivor."""

    __tablename__ = "account_alias"

    alias_sub: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    merge_id: Mapped[int | None] = mapped_column(ForeignKey("merge_record.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MergeRecord(Model):
    """Enough of a merge to undo it."""

    __tablename__ = "merge_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    loser_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(80))
    # Identity values and claims, enough to undo: encrypted whole.
    snapshot: Mapped[dict[str, Any]] = mapped_column(SealedJSON("merge_record.snapshot"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# Keys of audit details that may hold an identity value (a phone, an email, a WeChat id):
# encrypted at rest, and erased with the account (`deletion.py`).
PERSONAL_DETAIL_KEYS = frozenset({"value", "old", "new", "phone", "email", "note", "values"})
SEALED_DETAIL_KEYS = PERSONAL_DETAIL_KEYS | {"proof"}  # a merge's proof names the phone


class AuditEvent(Model):
    """Append-only: who did what to which account, why, and with which proof."""

    __tablename__ = "audit_event"
    # An account's trail, newest first, is a backward walk of this index.
    __table_args__ = (Index("ix_audit_event_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(48), index=True)
    account_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # user, admin, rule, system
    actor_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(
        SealedJSON("audit_event.details", SEALED_DETAIL_KEYS), default=dict
    )
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ReconciliationRun(Model):
    """One run of the reconciliation report (`maintenance/reconciliation.py`), with its findings."""

    __tablename__ = "reconciliation_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    trigger: Mapped[str] = mapped_column(String(16))  # worker, cli, admin
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # by finding reason


class ReconciliationFinding(Model):
    """Accounts that the rules did not merge but an admin may want to look at."""

    __tablename__ = "reconciliation_finding"
    __table_args__ = (
        Index("ix_reconciliation_finding_page", "run_id", "id"),
        Index("ix_reconciliation_finding_value", "run_id", "reason", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("reconciliation_run.id", ondelete="CASCADE")
    )
    reason: Mapped[str] = mapped_column(String(40))
    value: Mapped[str | None] = mapped_column(String(255), nullable=True)
    account_ids: Mapped[list[str]] = mapped_column(JSON)
    verified_on: Mapped[list[str]] = mapped_column(JSON, default=list)


class ClaimDeclarationRecord(Model):
    """An operator-defined claim declared in the admin UI (`catalogue.py`; the others come from
    `IDP_CUSTOM_CLAIMS`). Kept for ever: values written under the name stay meaningful."""

    __tablename__ = "claim_declaration"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(32))
    writers: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    # The consent page's text for a scope of its own (empty: the generic "See your …").
    scope_description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginSession(Model):
    """The server side of the IdP session cookie: logout and merges end it here."""

    __tablename__ = "login_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # also the OIDC `sid`
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    amr: Mapped[str] = mapped_column(String(64), default="pwd")  # space-separated
    channel: Mapped[str] = mapped_column(String(32), default="website")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Both indexed for retention (idp/maintenance/retention.py).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    # Shown in the account centre's session list (truncated, never used to decide anything).
    user_agent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The first factor is proved but the account's second factor is still to come: such a
    # session signs nobody in (`current_session` ignores it).
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False)
