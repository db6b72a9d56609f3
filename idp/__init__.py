"""The identity provider: `create_app()` builds it from `IDP_*` settings."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent / "migrations")

# Importing `idp` (or any module under it) loads no dependency: what the app needs is imported
# by `create_app`, so a process that only imports a module of the package (granian's master
# process, `idp.operations.granian_main`) does not pay for Flask, SQLAlchemy and every domain.


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app, from `IDP_*` settings (`idp.config`) with `config` over them.

    The first call in a process imports the app's modules (~1,300 with the libraries): that
    makes objects that live as long as the process, not garbage, yet Python's collector ran
    ~300 times over the growing heap meanwhile (~0.1 s of the ~0.8 s, 2026-12-06). It is paused
    while the app is built, and runs again as before afterwards."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build_app(config)
    finally:
        if collecting:
            gc.enable()


def _build_app(config: dict[str, Any] | None) -> Flask:
    from datetime import timedelta

    from flask_babel import Babel

    from idp import field_crypto
    from idp.config import RESOURCE_ROOT, load_config
    from idp.crypto import SecretBox
    from idp.extensions import csrf, db, limiter, migrations_on_first_use
    from idp.flask_app import IdentityProviderApp
    from idp.oidc.keys import KeyRing, sign_after_seconds

    settings = load_config(config)
    app = IdentityProviderApp(
        __name__,
        instance_path=settings["IDP_INSTANCE_PATH"],
        template_folder=str(RESOURCE_ROOT / "templates"),
        static_folder=str(RESOURCE_ROOT / "static"),
    )
    app.config.update(settings)
    app.config.update(
        SECRET_KEY=settings["IDP_SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=settings["IDP_DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings["IDP_DATABASE_URL"]),
        SESSION_COOKIE_NAME="idp_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["IDP_ISSUER"].startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=int(settings["IDP_SESSION_TTL"])),
        # The cookie is signed again only when its content changes (a sign-in, a form's CSRF
        # token…), not on every request: the session's lifetime is its row's, fixed at sign-in
        # (`expires_at`, `IDP_SESSION_TTL` as this), which a sliding cookie never extended; it
        # cost every signed-in page an HMAC and a Set-Cookie.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        RATELIMIT_STORAGE_URI=settings["IDP_REDIS_URL"] or "memory://",
        # X-RateLimit-* headers cost two extra Redis round trips per request (bench/README.md);
        # a refused request still gets Retry-After (idp/errors.py).
        RATELIMIT_HEADERS_ENABLED=False,
        # Redis down: limits keep working per process (in memory) rather than failing requests,
        # and switch back once Redis answers again (docs/DEPLOYMENT.md, "When Redis is down").
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=bool(settings["IDP_REDIS_URL"]),
        RATELIMIT_STORAGE_OPTIONS=(
            {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
            if settings["IDP_REDIS_URL"]
            else {}
        ),
        BABEL_TRANSLATION_DIRECTORIES=str(RESOURCE_ROOT / "translations"),
    )
    app.config.update({k: v for k, v in (config or {}).items() if not k.startswith("IDP_")})

    from idp.security.session_cookie import CachedSignerSessionInterface

    app.session_interface = CachedSignerSessionInterface()
    db.init_app(app)
    migrations_on_first_use(app, MIGRATIONS_DIRECTORY)
    csrf.init_app(app)
    limiter.init_app(app)
    _limit_in_decorators_only(app)
    Babel(app, locale_selector=_select_locale)

    box = SecretBox(settings["IDP_ENCRYPTION_KEY"])
    app.extensions["idp_secret_box"] = box
    app.extensions[field_crypto.EXTENSION] = field_crypto.PersonalData.from_config(settings)
    app.extensions["idp_keyring"] = KeyRing(
        box, float(settings["IDP_KEY_CACHE_SECONDS"]), sign_after=sign_after_seconds(settings)
    )
    app.extensions["idp_redis"] = _redis(settings["IDP_REDIS_URL"])
    from idp import caching

    caching.init_app(app)

    _register_models()
    from idp.staff import audit_chain

    audit_chain.init_app(app)  # seals every audit record (issue 27 item 4)
    _register_domains(app)
    _register_request_hooks(app)
    from idp.oidc import hot_paths

    hot_paths.install(app)
    _trust_proxy(app, int(settings["IDP_PROXY_FIX"] or 0))
    return app


def _trust_proxy(app: Flask, hops: int) -> None:
    """Behind `hops` TLS-terminating proxies the client address and scheme come from their
    X-Forwarded-For / X-Forwarded-Proto (docs/DEPLOYMENT.md); the host stays the Host header."""
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _limit_in_decorators_only(app: Flask) -> None:
    """Every rate limit of the IdP is a `@limiter.limit` on its view (token endpoint, phone
    binding), which checks inline. Flask-Limiter's before_request hook only adds default,
    application and meta limits, of which there are none, yet it cost ~0.1-0.3 ms on every
    request (the largest hook on /oauth/jwks, bench/README.md): it goes unless one is set."""
    if any(app.config.get(name) for name in
           ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")):  # fmt: skip
        return
    from idp.extensions import limiter

    hooks = app.before_request_funcs.get(None, [])
    app.before_request_funcs[None] = [h for h in hooks if h != limiter._check_request_limit]


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Several threads of one process share the file; WAL is set on connect (see below).
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    # Liveness is checked at checkout without a round trip (`idp.pool_liveness`).
    return {"pool_size": 10, "max_overflow": 20}


def _redis(url: str | None) -> Any:
    if not url:
        return None
    import redis

    from idp.extensions import redis_options

    return redis.Redis.from_url(url, **redis_options())


def _register_models() -> None:
    # Import every domain's models so that metadata (and Alembic) sees all tables.
    import idp.accounts.models  # noqa: F401
    import idp.events.models  # noqa: F401
    import idp.identity.models  # noqa: F401
    import idp.maintenance.models  # noqa: F401
    import idp.oidc.models  # noqa: F401
    import idp.second_factor.models  # noqa: F401
    import idp.staff.models  # noqa: F401
    import idp.usage.models  # noqa: F401
    import idp.wechat.models  # noqa: F401


def _register_domains(app: Flask) -> None:
    from idp import errors, health, observability
    from idp.accounts import erasure, profile, sms_codes, sms_views, views  # noqa: F401 - their routes join accounts_bp
    from idp.accounts.blueprint import bp as accounts_bp
    from idp.events import listeners
    from idp.identity import catalogue
    from idp.oidc import credentials, server
    from idp.oidc import views as oidc_views
    from idp.wechat_login import views as wechat_login_views

    errors.init_app(app)
    catalogue.init_app(app)
    sms_codes.init_app(app)
    server.init_app(app)
    credentials.init_app(app)  # the protocol's part when the engine ends credentials
    erasure.init_app(app)  # the account domain's part of erasing an account
    listeners.init_app(app)  # the event outbox hears of what the engine does
    app.register_blueprint(oidc_views.bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(health.bp)
    from idp import admin, api, i18n, ui, usage

    usage.init_app(app)
    observability.init_app(app)  # after usage: both observe WeChat calls, the later chains
    app.register_blueprint(i18n.bp)
    ui.init_app(app)
    admin.init_app(app)
    api.init_app(app)
    wechat_login_views.init_app(app)
    from idp import account_centre

    account_centre.init_app(app)
    from idp.cli import register_commands
    from idp.maintenance import worker

    worker.init_app(app)  # embedded event delivery, from the first request on (not in tests)
    register_commands(app)
    _engine_events(app)


def _engine_events(app: Flask) -> None:
    """PostgreSQL: the pool's liveness check; SQLite: the pragmas of every connection."""
    from sqlalchemy import event

    from idp import pool_liveness
    from idp.extensions import db

    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "postgresql":
            pool_liveness.check_on_checkout(engine)
        if engine.dialect.name != "sqlite":
            return

        @event.listens_for(engine, "connect")
        def _on_connect(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()


def _select_locale() -> str:
    """A switch (cookie), then `ui_locales` (OIDC Core §3.1.2.1), then Accept-Language."""
    from flask import request

    requested = (
        request.cookies.get("idp_locale")
        or _ui_locales()
        or request.cookies.get("idp_ui_locale")  # an earlier ui_locales (idp/i18n.py)
        or ""
    )
    for candidate in requested.replace("-", "_").split():
        if candidate.startswith("zh"):
            return "zh_CN"
        if candidate.startswith("en"):
            return "en"
    best = request.accept_languages.best_match(["en", "zh-CN", "zh"])
    return "zh_CN" if best and best.startswith("zh") else "en"


def _ui_locales() -> str:
    # The error page of a body refused as too large (413) or malformed asks for the locale too:
    # reading the form again would raise again, inside the error handler.
    from flask import request
    from werkzeug.exceptions import HTTPException

    try:
        return request.values.get("ui_locales") or ""
    except HTTPException:
        return request.args.get("ui_locales") or ""


def _register_request_hooks(app: Flask) -> None:
    from flask import g, request

    from idp.observability.request_id import request_id_from
    from idp.security.headers import security_headers as common_headers

    def assign_request_id() -> None:
        g.request_id = request_id_from(request.environ, int(app.config.get("IDP_PROXY_FIX") or 0))

    # First of all hooks: a request refused early (the rate limiter's 429) has an id too.
    app.before_request_funcs.setdefault(None, []).insert(0, assign_request_id)
    from idp import input_guard

    input_guard.init_app(app)  # second hook: NUL and over-deep JSON refused before any view

    @app.after_request
    def security_headers(response: Any) -> Any:
        headers = response.headers
        headers["X-Request-Id"] = g.get("request_id", "")
        present = {name.lower() for name in headers.keys()}  # one pass, not one per header
        for name, value in common_headers(app.config["IDP_ISSUER"]):
            if name.lower() not in present:
                headers.add(name, value)
        if response.mimetype == "text/html":
            # Any page may show a signed-in person's data, a consent or a CSRF token: never kept
            # by a cache, so Back after signing out asks the server again.
            headers.setdefault("Cache-Control", "no-store")
        if request.path.startswith(("/oauth/token", "/oauth/userinfo", "/oauth/introspect")):
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response
