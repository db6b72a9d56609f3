"""Configuration: defaults here, `IDP_*` environment variables over them, a test dict over both.

Read once by `create_app`, never at import time.
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Templates, static files and translations: beside the package in a checkout (and an editable
# install); under <prefix>/share/idp when installed from a wheel (pyproject's data-files).
IN_CHECKOUT = (PROJECT_ROOT / "templates").is_dir()
RESOURCE_ROOT = PROJECT_ROOT if IN_CHECKOUT else Path(sys.prefix) / "share" / "idp"

ENVIRONMENT_NAMES = (
    "IDP_ISSUER",
    "IDP_DATABASE_URL",
    "IDP_REDIS_URL",
    "IDP_SECRET_KEY",
    "IDP_ENCRYPTION_KEY",
    # Personal data at rest (idp/field_crypto.py): versioned keys, the cipher.
    "IDP_DATA_KEYS",
    "IDP_BLIND_INDEX_KEYS",
    "IDP_DATA_CIPHER",
    "IDP_WECHAT_API_BASE",
    "IDP_WECHAT_OPEN_BASE",
    "IDP_INSTANCE_PATH",
    "IDP_LOG_LEVEL",
    "IDP_TOKEN_RATE_LIMIT",
    "IDP_CLIENT_AUTH_FAILURE_LIMIT",
    "IDP_PHONE_BINDING_RATE_LIMIT",
    "IDP_EVENT_DELIVERY",
    "IDP_WECHAT_OA_AUTO_START",
    "IDP_WECHAT_SCAN_APPID",
    "IDP_WECHAT_SCAN_PAGE",
    "IDP_WECHAT_SCAN_ENV_VERSION",
    "IDP_WECHAT_SCAN_CHECK_PATH",
    "IDP_WECHAT_SCAN_LONG_POLL_SECONDS",
    "IDP_WECHAT_SCAN_LONG_POLLS",
    "IDP_EVENT_POLL_SECONDS",
    "IDP_EVENT_LEASE_SECONDS",
    "IDP_EVENT_RETRY_CEILING_DAYS",
    "IDP_EVENT_RETRY_MAX_SECONDS",
    "IDP_AMQP_URL",
    "IDP_AMQP_EXCHANGE",
    "IDP_AMQP_BODY",
    "IDP_OUTBOUND_ALLOWED_NETWORKS",
    "IDP_API_RATE_LIMIT",
    "IDP_API_MAX_BODY_BYTES",
    # Operations (docs/DEPLOYMENT.md).
    "IDP_KEY_CACHE_SECONDS",
    "IDP_ARGON2_TIME_COST",
    "IDP_ARGON2_MEMORY_COST",
    "IDP_ARGON2_PARALLELISM",
    "IDP_PROXY_FIX",
    "IDP_LOG_JSON",
    "IDP_METRICS_PUBLIC",
    "IDP_METRICS_TOKEN",
    # Scheduled maintenance (idp/maintenance): retention and reconciliation.
    "IDP_RETENTION_SESSION_DAYS",
    "IDP_RETENTION_LOGIN_EVENT_DAYS",
    "IDP_RETENTION_DELIVERY_DAYS",
    "IDP_RETENTION_AUDIT_DAYS",
    "IDP_RETENTION_INTERVAL_SECONDS",
    "IDP_RECONCILIATION_TIME",
    # Protocol limits (issue 10 item 5, issue 17 item 1).
    "IDP_CLIENT_ASSERTION_MAX_LIFETIME",
    "IDP_REFRESH_REUSE_GRACE_SECONDS",
    "IDP_JWKS_MAX_AGE",
    "IDP_KEY_SIGN_MARGIN_SECONDS",
    "IDP_DELETION_GRACE_DAYS",
    "IDP_REAUTH_SECONDS",
    "IDP_ADMIN_SEPARATION",
    "IDP_ADMIN_FOUR_EYES",
    "IDP_AUDIT_KEY",
    "IDP_ADMIN_IDLE_MINUTES",
    "IDP_ADMIN_MAX_HOURS",
    "IDP_AUDIT_KEY_FILE",
    "IDP_ADMIN_APPROVAL_HOURS",
    "IDP_WEBAUTHN_RP_ID",
    # Profile claims: the conflict rule and operator-defined claims (idp/identity/catalogue.py).
    "IDP_CLAIM_PRIORITY",
    "IDP_CUSTOM_CLAIMS",
)

DEFAULTS: dict[str, Any] = {
    "IDP_ISSUER": "http://127.0.0.1:5000",
    "IDP_DATABASE_URL": None,  # sqlite file under instance/ when unset
    "IDP_REDIS_URL": None,
    "IDP_SECRET_KEY": None,  # generated once into instance/
    "IDP_ENCRYPTION_KEY": None,  # generated once into instance/
    # Phones, emails, unionids, addresses, birthdates: `version:secret,…`, the first current;
    # generated once into instance/ (version 1) when unset.
    "IDP_DATA_KEYS": None,
    "IDP_BLIND_INDEX_KEYS": None,
    "IDP_DATA_CIPHER": "aes-256-gcm",  # or sm4-gcm
    "IDP_WECHAT_API_BASE": "https://api.weixin.qq.com",
    "IDP_WECHAT_OPEN_BASE": "https://open.weixin.qq.com",
    # In a checkout: <repo>/instance; installed from a wheel: ./instance (set it in production).
    "IDP_INSTANCE_PATH": str((PROJECT_ROOT if IN_CHECKOUT else Path.cwd()) / "instance"),
    "IDP_LOG_LEVEL": "INFO",
    # Lifetimes, in seconds.
    "IDP_AUTHORIZATION_CODE_TTL": 60,
    "IDP_ACCESS_TOKEN_TTL": 3600,
    "IDP_ID_TOKEN_TTL": 3600,
    "IDP_REFRESH_TOKEN_TTL": 30 * 24 * 3600,
    "IDP_SESSION_TTL": 7 * 24 * 3600,
    "IDP_SMS_CODE_TTL": 300,
    # How long a process trusts its cached view of the signing keys before asking the database.
    "IDP_KEY_CACHE_SECONDS": 5,
    # Per client, shared by every process through Redis when IDP_REDIS_URL is set.
    "IDP_TOKEN_RATE_LIMIT": "200/second",
    # Per client: failed authentications at introspection and revocation before a lock-out.
    "IDP_CLIENT_AUTH_FAILURE_LIMIT": "10/minute",
    "IDP_PHONE_BINDING_RATE_LIMIT": "10/minute",
    # Password and SMS throttles (idp/security/throttle.py); only tests switch them off.
    "IDP_THROTTLE_ENABLED": True,
    # "embedded": each IdP process delivers security events from a thread; "external": `idp worker`.
    "IDP_EVENT_DELIVERY": "embedded",
    # Inside WeChat's browser, begin the silent Official Account sign-in as the login page opens.
    "IDP_WECHAT_OA_AUTO_START": False,
    # Scan-to-sign-in: the mini-program whose code the login page shows (default: the oldest
    # registered), the page it opens, and wxacode.getUnlimited's env_version / check_path.
    "IDP_WECHAT_SCAN_APPID": None,
    "IDP_WECHAT_SCAN_PAGE": "pages/scan/scan",
    "IDP_WECHAT_SCAN_ENV_VERSION": "release",
    "IDP_WECHAT_SCAN_CHECK_PATH": True,
    # A waiting page's long-poll holds a worker thread this long at most, and only this many at
    # once per process (gunicorn gthread: 4 threads); beyond it, polls answer at once.
    "IDP_WECHAT_SCAN_LONG_POLL_SECONDS": 20,
    "IDP_WECHAT_SCAN_LONG_POLLS": 2,
    # SMS and captcha settings: idp/sms/settings.py (DEFAULTS, ENVIRONMENT_NAMES).
    # RabbitMQ (docs/DEPLOYMENT.md): when set, account events are also published there.
    "IDP_AMQP_URL": None,
    "IDP_AMQP_EXCHANGE": "idp.events",
    "IDP_AMQP_BODY": "set",  # "set": the signed SET; "claims": its claims as JSON
    # Networks that events and back-channel logout URIs may point at although not public
    # (loopback, private, link-local), e.g. "10.1.2.0/24 127.0.0.1"; none by default.
    "IDP_OUTBOUND_ALLOWED_NETWORKS": "",
    # The management API (/api/v1): per client (in Redis when set), and the largest body.
    "IDP_API_RATE_LIMIT": "20/second;600/minute",
    "IDP_API_MAX_BODY_BYTES": 16 * 1024,
    "IDP_ARGON2_TIME_COST": 3,
    "IDP_ARGON2_MEMORY_COST": 65536,
    "IDP_ARGON2_PARALLELISM": 4,
    # How many TLS-terminating proxies stand in front (0: none, X-Forwarded-* are ignored).
    "IDP_PROXY_FIX": 0,
    # JSON log lines on stderr; None means "unless testing".
    "IDP_LOG_JSON": None,
    # /metrics: loopback only, unless public or asked with `Authorization: Bearer <token>`.
    "IDP_METRICS_PUBLIC": False,
    "IDP_METRICS_TOKEN": None,
    # Scheduled maintenance, run by `idp worker` (idp/maintenance/schedule.py).
    "IDP_SCHEDULE_POLL_SECONDS": 30,
    "IDP_RETENTION_INTERVAL_SECONDS": 3600,
    "IDP_RETENTION_BATCH": 1000,  # rows per delete transaction
    "IDP_RETENTION_SECONDS": 60,  # time budget of one purge round
    "IDP_RETENTION_SESSION_DAYS": 30,  # after a session ended or expired
    "IDP_RETENTION_LOGIN_EVENT_DAYS": 90,  # the dashboard charts the last 14
    "IDP_RETENTION_DELIVERY_DAYS": 7,  # delivered events; pending and dead ones stay
    "IDP_RETENTION_AUDIT_DAYS": None,  # unset: the audit trail is kept for ever
    "IDP_RECONCILIATION_TIME": "03:30",  # UTC, daily
    "IDP_USAGE_ROLLUP_INTERVAL_SECONDS": 600,
    "IDP_DELETION_INTERVAL_SECONDS": 300,  # how often due account deletions are executed
    # private_key_jwt: the longest an assertion may live, exp - iat and exp - now (RFC 7523 §3).
    "IDP_CLIENT_ASSERTION_MAX_LIFETIME": 300,
    # A refresh token already rotated is answered again, with the same successor, for this long
    # (a lost response is retried); after it, a reuse revokes the family (RFC 9700 §4.14.2).
    "IDP_REFRESH_REUSE_GRACE_SECONDS": 30,
    # The JWKS's Cache-Control max-age. A new signing key signs only once every copy of the JWKS
    # without it has expired: IDP_KEY_CACHE_SECONDS + IDP_JWKS_MAX_AGE + the margin after
    # `idp keys rotate` (docs/DEPLOYMENT.md, "Key rotation").
    "IDP_JWKS_MAX_AGE": 60,
    "IDP_KEY_SIGN_MARGIN_SECONDS": 5,
    # Account centre: days between asking for deletion and its erasure (PIPL 注销); how recent a
    # sign-in must be for sensitive changes; the WebAuthn RP ID (default: the issuer's host).
    "IDP_DELETION_GRACE_DAYS": 15,
    "IDP_REAUTH_SECONDS": 300,
    # Admin roles: "relaxed" lets one person hold several; "strict" keeps security and auditor
    # each alone (idp/staff/roles.py says why the default is relaxed).
    "IDP_ADMIN_SEPARATION": "relaxed",
    # Four-eyes (idp/admin/four_eyes.py): which manual actions wait for a second admin, and for
    # how long a proposal can be approved.
    "IDP_ADMIN_FOUR_EYES": "merge undo move",
    "IDP_ADMIN_APPROVAL_HOURS": 24,
    # The audit chain's MAC key, never stored in the database (idp/staff/audit_chain.py); when
    # neither is set, generated once into instance/audit_key.
    "IDP_AUDIT_KEY": None,
    # Admin sessions (idp/admin/access.py): ended when idle this long, or older than this.
    "IDP_ADMIN_IDLE_MINUTES": 15,
    "IDP_ADMIN_MAX_HOURS": 8,
    "IDP_AUDIT_KEY_FILE": None,
    "IDP_WEBAUTHN_RP_ID": None,
    # JSON {"*": [sources by priority], "<claim>": [...]}; unset: user>admin>api>website>wechat
    "IDP_CLAIM_PRIORITY": None,
    # JSON list of {"name", "type", "scope", "writers", "description"} (README: data dictionary).
    "IDP_CUSTOM_CLAIMS": None,
}


# Any setting read from the environment may be given as the path of a file holding its value
# instead (`IDP_SECRET_KEY_FILE=/run/secrets/idp/secret-key`): a Kubernetes Secret or a compose
# secret mounted as a file, so that secrets stay out of `env`, process listings and image layers.
FILE_SUFFIX = "_FILE"


def setting_from_file(name: str, path: str) -> str:
    """The value of `name` read from the file `NAME_FILE` names, surrounding whitespace removed.

    Both `NAME` and `NAME_FILE` set is refused (which one wins would be a guess); so is a file
    that cannot be read or is empty. The message names the variable, never the content."""
    variable = f"{name}{FILE_SUFFIX}"
    if os.environ.get(name):
        raise ConfigError(f"{name} and {variable} are both set: set one of them")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigError(f"{variable}: {path} cannot be read ({reason})") from None
    if not value:
        raise ConfigError(f"{variable}: {path} is empty")
    return value


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    from idp.sms import settings as sms_settings

    config = {**DEFAULTS, **sms_settings.DEFAULTS}
    for name in (*ENVIRONMENT_NAMES, *sms_settings.ENVIRONMENT_NAMES):
        path = "" if name.endswith(FILE_SUFFIX) else os.environ.get(f"{name}{FILE_SUFFIX}")
        if path:
            config[name] = setting_from_file(name, path)
        elif os.environ.get(name):
            config[name] = os.environ[name]
    config.update(overrides or {})

    instance = Path(config["IDP_INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    if not config["IDP_DATABASE_URL"]:
        config["IDP_DATABASE_URL"] = f"sqlite:///{instance / 'idp.sqlite3'}"
    if not config["IDP_SECRET_KEY"]:
        config["IDP_SECRET_KEY"] = _instance_secret(instance / "secret_key")
    if not config["IDP_ENCRYPTION_KEY"]:
        config["IDP_ENCRYPTION_KEY"] = _instance_secret(instance / "encryption_key")
    for name, file_name in (("IDP_DATA_KEYS", "data_keys"),
                            ("IDP_BLIND_INDEX_KEYS", "blind_index_keys")):
        if not config[name]:
            config[name] = _instance_secret(instance / file_name, prefix="1:")
    config["IDP_ISSUER"] = validate_issuer(config["IDP_ISSUER"])
    _validate_events(config)
    return config


def _validate_events(config: dict[str, Any]) -> None:
    from limits import parse_many

    for name in ("IDP_API_RATE_LIMIT", "IDP_CLIENT_AUTH_FAILURE_LIMIT"):
        try:
            parse_many(str(config.get(name) or "20/second"))
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from error
    for name in ("IDP_EVENT_RETRY_CEILING_DAYS", "IDP_EVENT_RETRY_MAX_SECONDS"):
        if config.get(name) is not None and not _positive_number(config[name]):
            raise ConfigError(f"{name} must be a positive number, got {config[name]!r}")
    if str(config.get("IDP_AMQP_BODY") or "set") not in ("set", "claims"):
        raise ConfigError("IDP_AMQP_BODY must be 'set' or 'claims'")
    allowed = config.get("IDP_OUTBOUND_ALLOWED_NETWORKS") or ""
    items = allowed.replace(",", " ").split() if isinstance(allowed, str) else list(allowed)
    for item in items:
        try:
            ipaddress.ip_network(str(item).strip(), strict=False)
        except ValueError as error:
            raise ConfigError(
                f"IDP_OUTBOUND_ALLOWED_NETWORKS: {item!r} is not an address or network"
            ) from error


def _positive_number(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and 0 < number < 10**6


def validate_issuer(issuer: str) -> str:
    """OIDC Discovery §2: https, except that we allow http on loopback for development."""
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or not parts.hostname:
        raise ConfigError(f"IDP_ISSUER must be a plain URL, got {issuer!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        raise ConfigError("IDP_ISSUER may use http only on a loopback host; use https")
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"IDP_ISSUER must be http(s), got {issuer!r}")
    return issuer.rstrip("/")


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (the issuer's host: http and the log SMS provider are
    allowed only there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _instance_secret(path: Path, prefix: str = "") -> str:
    """A random secret generated on first start and kept in instance/ (git-ignored)."""
    if path.exists():
        return path.read_text().strip()
    value = prefix + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
