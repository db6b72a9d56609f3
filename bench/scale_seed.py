"""A large deployment's shape, seeded by SQL on PostgreSQL in minutes (no ORM object per row).

Per 1,000,000 accounts, like the deployment measured in issue 18: ~3.1M identities (phones,
passwords, mini-program and website openids, unionids, emails), 1.95M profile claims, 2M
refresh tokens, 3M audit rows, 50k merges, 100k outbox rows, 300k login events and 200k login
sessions, spread over two years. Every WeChat app is bound to one Open Platform account, so
WeChat identities come with a unionid, except 0.1% from before the binding. Deterministic:
account `i` has the sub `md5('account' || i)` as a UUID, the phone `+86136` + i (zero-padded),
the openid `o-mini-` + i.

Used by `bench/scale.py` (1k and 1M) and by tests/maintenance/test_plans.py (a few thousand,
for EXPLAIN).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection

MINI_APPID = "wx-scale-mini"
WEB_APPID = "wx-scale-web"
CLIENT_ID = "scale-client"

# Each statement reads :n (the number of accounts). Ratios follow the measured deployment.
STATEMENTS: list[tuple[str, str]] = [
    ("clients and apps", """
        INSERT INTO oauth_client (client_id, name, client_secret_digest,
                                  token_endpoint_auth_method, redirect_uris,
                                  post_logout_redirect_uris, grant_types, scope,
                                  id_token_signed_response_alg, is_first_party, require_mfa,
                                  created_at)
        VALUES (:client, 'Scale client', NULL, 'none', '[]', '[]', '[]', 'openid', 'RS256',
                false, false, now());
        INSERT INTO wechat_app (appid, kind, name, secret_encrypted, secret_hint, created_at)
        VALUES (:mini, 'miniprogram', 'Scale mini-program', 'x', '', now()),
               (:web, 'website', 'Scale website', 'x', '', now());
    """),
    ("accounts", """
        INSERT INTO account (id, status, is_admin, created_via, created_at, profile_updated_at)
        SELECT md5('account' || i)::uuid::text,
               CASE WHEN i % 100 < 3 THEN 'merged' WHEN i % 100 < 5 THEN 'disabled'
                    ELSE 'active' END,
               false,
               (ARRAY['website', 'miniprogram', 'website_wechat'])[1 + i % 3],
               now() - make_interval(secs => (i::bigint * 7919) % (730 * 86400)),
               now()
        FROM generate_series(1, :n) AS i;
    """),
    ("identities", """
        INSERT INTO identity (account_id, kind, namespace, value, verified, verified_by,
                              secret_hash, created_at)
        SELECT md5('account' || i)::uuid::text, 'phone', '', '+86136' || lpad(i::text, 8, '0'),
               i % 20 <> 0, CASE WHEN i % 20 <> 0 THEN 'sms' END, NULL, now()
        FROM generate_series(1, :n) AS i WHERE i % 10 <> 9                  -- 0.90 per account
        UNION ALL
        SELECT md5('account' || i)::uuid::text, 'password', '', md5('pw' || i), false, NULL,
               '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', now()
        FROM generate_series(1, :n) AS i WHERE i % 2 = 0                    -- 0.50
        UNION ALL
        SELECT md5('account' || i)::uuid::text, 'wechat_openid', :mini, 'o-mini-' || i, true,
               'wechat_login', NULL, now()
        FROM generate_series(1, :n) AS i WHERE i % 5 <> 0                   -- 0.80
        UNION ALL
        -- The mini-program and the website app are bound to one Open Platform account, so
        -- their logins carry the unionid, and a few accounts from before the binding have none
        -- (the report's "unionid on one side only").
        SELECT md5('account' || i)::uuid::text, 'wechat_unionid', '', 'u-' || i, true,
               'wechat_login', NULL, now()
        FROM generate_series(1, :n) AS i
        WHERE (i % 5 <> 0 OR i % 10 = 0) AND i % 1000 <> 3                 -- 0.90
        UNION ALL
        SELECT md5('account' || i)::uuid::text, 'wechat_openid', :web, 'o-web-' || i, true,
               'wechat_login', NULL, now()
        FROM generate_series(1, :n) AS i WHERE i % 10 < 1                   -- 0.10
        UNION ALL
        SELECT md5('account' || i)::uuid::text, 'email', '', 'user' || i || '@example.com',
               i % 3 = 0, CASE WHEN i % 3 = 0 THEN 'admin' END, NULL, now()
        FROM generate_series(1, :n) AS i WHERE i % 20 = 1                   -- 0.05
        UNION ALL
        -- Typed-in phones another account holds: the report's shared unverified phones.
        SELECT md5('account' || i)::uuid::text, 'phone', '',
               '+86136' || lpad((i + 1)::text, 8, '0'), false, NULL, NULL, now()
        FROM generate_series(1, :n) AS i WHERE i % 1000 = 7;   -- both accounts active
    """),
    ("profile claims", """
        INSERT INTO profile_claim (account_id, name, source, value, updated_at)
        SELECT md5('account' || i)::uuid::text, 'name', 'user',
               (ARRAY['Wang', 'Li', 'Zhang', 'Liu', 'Chen', 'Alice', 'Bob'])[1 + i % 7]
               || ' ' || i, now()
        FROM generate_series(1, :n) AS i WHERE i % 5 < 3                    -- 0.60
        UNION ALL
        SELECT md5('account' || i)::uuid::text, 'nickname', 'wechat', '用户' || i, now()
        FROM generate_series(1, :n) AS i WHERE i % 5 <> 0                   -- 0.80
        UNION ALL
        SELECT md5('account' || i)::uuid::text, 'picture', 'wechat',
               'https://thirdwx.qlogo.cn/mmopen/' || md5('p' || i) || '/132', now()
        FROM generate_series(1, :n) AS i WHERE i % 20 < 11;                 -- 0.55
    """),
    ("refresh tokens", """
        INSERT INTO refresh_token (token_digest, family, client_id, account_id, scope, auth_time,
                                   amr, issued_at, expires_at, rotated_at)
        SELECT md5('rt' || i || '-' || k), md5('family' || i), :client,
               md5('account' || i)::uuid::text, 'openid profile', 0, '["pwd"]',
               now() - make_interval(days => (i + k) % 60),
               now() + make_interval(days => 30 - (i + k) % 60),
               CASE WHEN k = 1 THEN now() - make_interval(days => (i + k) % 60) END
        FROM generate_series(1, :n) AS i, generate_series(1, 2) AS k;       -- 2.0
    """),
    ("audit", """
        INSERT INTO audit_event (created_at, action, account_id, actor_type, actor_id, details)
        SELECT now() - make_interval(secs => (i::bigint * 7919 + k * 3600) % (730 * 86400)),
               (ARRAY['account.create', 'identity.link', 'password.reset'])[k],
               md5('account' || i)::uuid::text, 'user', NULL, '{}'
        FROM generate_series(1, :n) AS i, generate_series(1, 3) AS k;       -- 3.0
    """),
    ("merges", """
        INSERT INTO merge_record (survivor_id, loser_id, rule, actor, snapshot, created_at)
        SELECT md5('account' || (i + 1))::uuid::text, md5('account' || i)::uuid::text,
               'same_verified_phone', 'rule', '{}',
               now() - make_interval(secs => (i::bigint * 7919) % (730 * 86400))
        FROM generate_series(1, :n - 1) AS i WHERE i % 20 = 0;              -- 0.05
        INSERT INTO account_alias (alias_sub, account_id, created_at)
        SELECT md5('account' || i)::uuid::text, md5('account' || (i + 1))::uuid::text, now()
        FROM generate_series(1, :n) AS i WHERE i % 100 < 3 AND i < :n;
    """),
    ("outbox", """
        INSERT INTO event_delivery (client_id, event_type, payload, status, attempts,
                                    next_attempt_at, created_at, delivered_at)
        SELECT :client, 'account-merged', '{}',
               CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'delivered' END, 1,
               -- Pending ones wait for a retry: the due query finds none.
               now() + make_interval(secs => 86400 + i % 3600),
               now() - make_interval(days => i % 30),
               CASE WHEN i % 100 <> 0 THEN now() - make_interval(days => i % 30) END
        FROM generate_series(1, :n) AS i WHERE i % 10 = 0;                  -- 0.10
    """),
    ("logins", """
        INSERT INTO login_event (account_id, channel, client_id, created_at)
        SELECT md5('account' || i)::uuid::text,
               (ARRAY['website_password', 'website_wechat', 'miniprogram'])[1 + i % 3], NULL,
               now() - make_interval(secs => (i::bigint * 7919) % (90 * 86400))
        FROM generate_series(1, :n) AS i WHERE i % 10 < 3;                  -- 0.30
        INSERT INTO login_session (id, account_id, auth_time, amr, channel, created_at,
                                   expires_at, ended_at, second_factor_pending)
        SELECT md5('session' || i), md5('account' || i)::uuid::text, now(), 'pwd', 'website',
               now() - make_interval(days => i % 60), now() + make_interval(days => 7 - i % 60),
               CASE WHEN i % 4 = 0 THEN now() - make_interval(days => i % 60) END, false
        FROM generate_series(1, :n) AS i WHERE i % 5 = 0;                   -- 0.20
    """),
]


def seed(connection: Connection, accounts: int,
         progress: Callable[[str, float], None] | None = None) -> None:
    """Fills an empty, migrated PostgreSQL database; commits, then VACUUM ANALYZEs."""
    parameters = {"n": accounts, "client": CLIENT_ID, "mini": MINI_APPID, "web": WEB_APPID}
    for name, sql in STATEMENTS:
        started = time.monotonic()
        for statement in (part for part in sql.split(";") if part.strip()):
            connection.execute(text(statement), _used(statement, parameters))
        connection.commit()
        if progress:
            progress(name, time.monotonic() - started)
    # As autovacuum leaves a table in steady state: statistics, and a visibility map that lets
    # an index answer on its own (index-only scans).
    connection.commit()
    connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _used(statement: str, parameters: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in parameters.items() if f":{name}" in statement}


def account_id(number: int) -> str:
    """The sub of seeded account `number` (as the SQL above makes it)."""
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(f"account{number}".encode()).hexdigest()))  # noqa: S324
