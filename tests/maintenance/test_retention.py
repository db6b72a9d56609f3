"""Retention (idp/maintenance/retention.py): what no longer serves is purged, in batches,
within a time budget; what still protects something (a rotated refresh token before its
expiry, a merge's audit trail) stays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from idp.accounts.models import LoginEvent, SmsCode
from idp.events.models import DeliveryStatus, EventDelivery
from idp.extensions import db
from idp.identity.models import AuditEvent, LoginSession
from idp.maintenance.retention import purge_expired
from idp.models_base import utcnow
from idp.oidc.models import AuthorizationCode, RefreshToken, RevokedAccessToken, UsedNonce
from idp.second_factor.models import MfaChallenge

DAY = timedelta(days=1)


def _refresh(account_id: str, client_id: str, name: str, expires_in: timedelta,
             rotated: bool = False) -> None:
    now = utcnow()
    db.session.add(RefreshToken(
        token_digest=name, family=f"family-{name}", client_id=client_id, account_id=account_id,
        scope="openid", auth_time=0, issued_at=now - 40 * DAY, expires_at=now + expires_in,
        rotated_at=now - 2 * DAY if rotated else None,
    ))


def _count(model: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_expired_refresh_tokens_go_rotated_live_ones_stay__rfc9700_4_14_2(
    make_user: Any, make_client: Any
) -> None:
    user = make_user(phone="+8613800138000")
    client, _ = make_client()
    _refresh(user.id, client.client_id, "expired", -2 * DAY)
    _refresh(user.id, client.client_id, "expired-within-grace", -DAY / 2)
    # Rotated but not expired: presenting it again must still be detected as reuse.
    _refresh(user.id, client.client_id, "rotated-live", 10 * DAY, rotated=True)
    db.session.commit()

    report = purge_expired()

    assert report.deleted["refresh_token"] == 1 and report.complete
    assert set(db.session.scalars(sa.select(RefreshToken.token_digest))) == {
        "expired-within-grace", "rotated-live"}


def test_codes_sessions_logins_nonces_and_delivered_events_are_purged(
    make_user: Any, make_client: Any, app: Any
) -> None:
    user = make_user(phone="+8613800138000")
    client, _ = make_client()
    now = utcnow()
    db.session.add_all([
        AuthorizationCode(code_digest="old", client_id=client.client_id, account_id=user.id,
                          redirect_uri="https://rp.example/cb", scope="openid", auth_time=0,
                          expires_at=now - 2 * DAY, used_at=now - 2 * DAY),
        AuthorizationCode(code_digest="new", client_id=client.client_id, account_id=user.id,
                          redirect_uri="https://rp.example/cb", scope="openid", auth_time=0,
                          expires_at=now + timedelta(seconds=60)),
        LoginSession(id="ended-long-ago", account_id=user.id, expires_at=now + DAY,
                     ended_at=now - 31 * DAY),
        LoginSession(id="expired-long-ago", account_id=user.id, expires_at=now - 31 * DAY),
        LoginSession(id="ended-yesterday", account_id=user.id, expires_at=now + DAY,
                     ended_at=now - DAY),
        LoginEvent(account_id=user.id, channel="website_password", created_at=now - 91 * DAY),
        LoginEvent(account_id=user.id, channel="website_password", created_at=now - 13 * DAY),
        SmsCode(phone="+8613800138000", purpose="reset", code_digest="x",
                expires_at=now - 2 * DAY),
        RevokedAccessToken(jti="gone", expires_at=now - 2 * DAY),
        RevokedAccessToken(jti="still-listed", expires_at=now + DAY),
        UsedNonce(key="old", expires_at=now - 2 * DAY),
        MfaChallenge(token_digest="old", client_id=client.client_id, account_id=user.id,
                     scope="openid", amr=["wechat"], expires_at=now - 2 * DAY),
        MfaChallenge(token_digest="live", client_id=client.client_id, account_id=user.id,
                     scope="openid", amr=["wechat"], expires_at=now + timedelta(minutes=5)),
        EventDelivery(client_id=client.client_id, event_type="account-merged", payload="{}",
                      status=DeliveryStatus.DELIVERED, delivered_at=now - 8 * DAY),
        EventDelivery(client_id=client.client_id, event_type="account-merged", payload="{}",
                      status=DeliveryStatus.DEAD, created_at=now - 60 * DAY),
        EventDelivery(client_id=client.client_id, event_type="account-merged", payload="{}",
                      status=DeliveryStatus.PENDING, next_attempt_at=now - 30 * DAY),
    ])
    db.session.commit()

    report = purge_expired()

    assert {name: count for name, count in report.deleted.items() if count} == {
        "authorization_code": 1, "login_session": 2, "login_event": 1, "event_delivery": 1,
        "sms_code": 1, "revoked_access_token": 1, "used_nonce": 1, "mfa_challenge": 1,
    }
    assert set(db.session.scalars(sa.select(MfaChallenge.token_digest))) == {"live"}
    assert set(db.session.scalars(sa.select(LoginSession.id))) == {"ended-yesterday"}
    assert sorted(db.session.scalars(sa.select(EventDelivery.status))) == ["dead", "pending"]


def test_audit_beyond_retention_is_purged_except_what_a_merge_left(
    app: Any, make_user: Any
) -> None:
    user = make_user(phone="+8613800138000")
    old = utcnow() - 400 * DAY
    for action in ("password.reset", "account.merge", "account.merged_away", "account.unmerge",
                   "admin.suggestion_dismiss"):
        db.session.add(AuditEvent(action=action, account_id=user.id, actor_type="system",
                                  created_at=old, details={}))
    db.session.commit()
    kept_before = _count(AuditEvent)

    assert "audit_event" not in purge_expired().deleted  # unset: kept for ever
    app.config["IDP_RETENTION_AUDIT_DAYS"] = 365
    assert purge_expired().deleted["audit_event"] == 1

    assert _count(AuditEvent) == kept_before - 1
    assert "password.reset" not in set(db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.created_at < utcnow() - 365 * DAY)))


def test_purges_run_in_batches_and_stop_at_the_time_budget(
    app: Any, make_user: Any, make_client: Any
) -> None:
    user = make_user(phone="+8613800138000")
    client, _ = make_client()
    for number in range(7):
        _refresh(user.id, client.client_id, f"expired-{number}", -3 * DAY)
    db.session.commit()
    app.config["IDP_RETENTION_BATCH"] = 3

    app.config["IDP_RETENTION_SECONDS"] = 0
    stopped = purge_expired()
    assert not stopped.complete and _count(RefreshToken) == 7

    app.config["IDP_RETENTION_SECONDS"] = 60
    done = purge_expired()
    assert done.complete and done.deleted["refresh_token"] == 7 and _count(RefreshToken) == 0
    assert "refresh_token=7" in done.summary()
