"""Shared fixtures: an app on a real database (SQLite always, PostgreSQL when it answers),
factories for users and clients, and an OIDC relying-party helper for the test client."""

from __future__ import annotations

import atexit
import base64
import contextvars
import gc
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp import create_app
from idp.extensions import db
from idp.sms import fake as sms_fake
from idp.wechat import fake as wechat_fake
from tests import signing_keys
from tests.compiled_templates import share_compiled_templates
from tests.url_builders import share_url_builders

share_url_builders()
share_compiled_templates()
signing_keys.reuse_signing_keys()

# --- the garbage collector ------------------------------------------------------------------------
#
# Every test builds an app (Flask, its URL map, an SQLAlchemy engine, sessions…): cyclic garbage
# that only a full (generation 2) collection frees, and a full collection walks the whole heap.
# Python's default runs one every 10 generation-1 collections (about every 7 tests here), and
# those took 1.0–2.5 s of the 11–14 s of CPU of tests/oidc/test_{authorize,token,refresh}.py
# (-n 0, 2026-12-06). A full collection at most every 100 (the first two thresholds stay), and
# what collection imported frozen out of the walk: 0.14–0.3 s, 9.7–10 s of CPU, peak RSS 165 ->
# 228 MB per process.
gc.set_threshold(*gc.get_threshold()[:2], 100)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()  # modules, fixtures and test items live as long as the worker

SERVER_URL = os.environ.get(
    "IDP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ISSUER = "http://127.0.0.1:5000"
PASSWORD = "correct horse battery"


def _postgres_reason() -> str | None:
    try:
        engine = sa.create_engine(SERVER_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001
        return f"PostgreSQL not reachable at IDP_TEST_DATABASE_URL ({type(error).__name__})"
    return None


def create_database(name: str, template: str | None = None) -> str:
    """A fresh database on the test server (a copy of `template` if given); returns its URL."""
    url = sa.engine.make_url(SERVER_URL)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    copy_of = f' TEMPLATE "{template}"' if template else ""
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"{copy_of}'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    name = sa.engine.make_url(database_url).database
    engine = sa.create_engine(sa.engine.make_url(SERVER_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _private_database() -> str:
    """A database of this test run's own, so concurrent runs on one server never collide.

    Its commits do not wait for the disk (a test database need not survive a power cut; the
    server stays consistent): thousands of tests commit several times each."""
    url = create_database(f"idp_test_{os.getpid()}")
    name = sa.engine.make_url(url).database
    engine = sa.create_engine(sa.engine.make_url(SERVER_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    engine.dispose()
    atexit.register(drop_database, url)
    return url


POSTGRES_SKIP_REASON = _postgres_reason()
POSTGRES_URL = SERVER_URL if POSTGRES_SKIP_REASON else _private_database()
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            POSTGRES_SKIP_REASON is not None, reason=POSTGRES_SKIP_REASON or ""
        ),
    ),
]


def base_config(tmp_path: Any, database_url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "IDP_ISSUER": ISSUER,
        "IDP_DATABASE_URL": database_url,
        "IDP_INSTANCE_PATH": str(tmp_path / "instance"),
        "IDP_SECRET_KEY": "test-secret-key",
        "IDP_ENCRYPTION_KEY": "test-encryption-key",
        # Shared by every process of a deployment, as the encryption key is (issue 28).
        "IDP_DATA_KEYS": "1:test-data-key",
        "IDP_BLIND_INDEX_KEYS": "1:test-blind-index-key",
        "IDP_KEY_CACHE_SECONDS": 0,
        # With no key cache and no JWKS caching a rotated key signs at once; the rotation rule
        # itself is tested with real windows in tests/oidc/test_key_rotation.py.
        "IDP_JWKS_MAX_AGE": 0,
        "IDP_KEY_SIGN_MARGIN_SECONDS": 0,
        # argon2 stays argon2id, only cheaper, so the suite runs in minutes.
        "IDP_ARGON2_TIME_COST": 1,
        "IDP_ARGON2_MEMORY_COST": 1024,
        "IDP_ARGON2_PARALLELISM": 1,
        # Tests sign in many times from one address; tests/security turn these back on.
        "RATELIMIT_ENABLED": False,
        "IDP_THROTTLE_ENABLED": False,
        # The fakes (event receivers, back-channel logout) listen on loopback.
        "IDP_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1",
    }


def _reset_postgres(app: Flask) -> None:
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        db.create_all()


# --- the schema, built once per worker ---------------------------------------------------------
#
# Building the schema (create_all: 32 tables and their indexes) took most of a database test's
# time. Each worker builds it once: on SQLite into a template file that each test copies, on
# PostgreSQL into the worker's private database, emptied between tests. Measured on the shared
# 2-core machine (2026-12-06, busy): deleting the rows of the tables a test wrote and restarting
# the sequences 0.02–0.06 s; TRUNCATE … RESTART IDENTITY CASCADE of the 32 tables 0.9–1.6 s (of
# only the written ones, cascading: 0.6 s); CREATE DATABASE … TEMPLATE 0.23–0.49 s; the old
# DROP SCHEMA + create_all 0.3–0.4 s. On SQLite create_all took 0.08–0.12 s, a copy 0.3 ms.

# Every relation of the public schema with its columns and their types: a test that changed the
# schema (the migration tests drop it) gets the schema rebuilt rather than emptied.
_SCHEMA_FINGERPRINT = sa.text(
    "SELECT md5(string_agg(c.relname::text || ':' || c.relkind::text || ':'"
    " || coalesce(a.attname::text, '') || ':' || coalesce(a.atttypid::text, ''), ','"
    " ORDER BY c.relname, a.attnum))"
    " FROM pg_class c LEFT JOIN pg_attribute a"
    " ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    " WHERE c.relnamespace = 'public'::regnamespace"
)
_RESTART_SEQUENCES = sa.text(
    "SELECT setval(oid, 1, false) FROM pg_class"
    " WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace"
)


class PostgresSchema:
    """The worker's private PostgreSQL database with the models' schema and no rows."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.fingerprint: str | None = None

    def _rebuild(self, tmp_path: Any) -> None:
        application = create_app(base_config(tmp_path, POSTGRES_URL))
        _reset_postgres(application)
        with application.app_context():
            db.engine.dispose()
        with self.engine.connect() as connection:
            self.fingerprint = connection.execute(_SCHEMA_FINGERPRINT).scalar()

    def empty(self, tmp_path: Any) -> None:
        """Deletes the rows the last test left (children first) and restarts the sequences, as
        on a new schema; rebuilds the schema if it is not the models' any more."""
        tables = db.metadata.sorted_tables
        if self.fingerprint is None or not tables:
            self._rebuild(tmp_path)
            return
        with self.engine.begin() as connection:
            if connection.execute(_SCHEMA_FINGERPRINT).scalar() != self.fingerprint:
                connection.rollback()
                self._rebuild(tmp_path)
                return
            written = set(connection.execute(sa.union_all(*(
                sa.select(sa.literal(table.name)).where(sa.exists().select_from(table))
                for table in tables
            ))).scalars())
            for table in reversed(tables):
                if table.name in written:
                    connection.execute(sa.delete(table))
            connection.execute(_RESTART_SEQUENCES)


# --- SQL compiled once per worker ---------------------------------------------------------------
#
# Each test's app makes its own engine, and SQLAlchemy keeps compiled statements per engine,
# keyed by the engine's dialect: every test compiled again each statement it ran, as a process
# does only once. Engines of one worker with the same dialect and options share the first one's
# dialect (once it has connected and read the server's version) and compiled-statement cache.
_SHARED_COMPILATION: dict[tuple[str, ...], tuple[Any, Any]] = {}
_engine_of_flask_sqlalchemy = db._make_engine


def _make_engine_sharing_compiled_sql(
    bind_key: str | None, options: dict[str, Any], app: Flask
) -> sa.engine.Engine:
    engine = _engine_of_flask_sqlalchemy(bind_key, options, app)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _commit_without_waiting_for_the_disk)
    key = (engine.url.drivername, *sorted(f"{k}={v!r}" for k, v in options.items() if k != "url"))
    shared = _SHARED_COMPILATION.get(key)
    if shared is None or shared[0].server_version_info is None:
        _SHARED_COMPILATION[key] = (engine.dialect, engine._compiled_cache)
    else:
        engine.dialect, engine._compiled_cache = shared
    return engine


def _commit_without_waiting_for_the_disk(connection: Any, _record: Any) -> None:
    """A test's SQLite file need not survive a power cut: no fsync per commit (the app's own
    pragmas, WAL and foreign keys, stay)."""
    connection.execute("PRAGMA synchronous=OFF")


db._make_engine = _make_engine_sharing_compiled_sql  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("schema")
    path = directory / "template.sqlite3"
    application = create_app(base_config(directory, f"sqlite:///{path}"))
    with application.app_context():
        db.create_all()
        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema(sqlite_template: Path) -> Iterator[PostgresSchema]:
    """Made after an app was (the SQLite template's): the models' tables are all known."""
    schema = PostgresSchema(POSTGRES_URL)
    yield schema
    schema.engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> str:
    """A database with the models' schema and no rows: a copy of the worker's SQLite template,
    or the worker's PostgreSQL database emptied."""
    if backend == "sqlite":
        path = tmp_path / "idp.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    request.getfixturevalue("postgres_schema").empty(tmp_path)
    return POSTGRES_URL


@pytest.fixture
def app_config(tmp_path: Any, database_url: str) -> dict[str, Any]:
    return base_config(tmp_path, database_url)


class IsolatedClient(FlaskClient):
    """Each request runs in its own context, as in production: the test's app context (and its
    `g` and database session) is not shared with the request. The test's session is committed
    before and after, so each side sees the other's writes."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        db.session.commit()
        try:
            return contextvars.Context().run(super().open, *args, **kwargs)
        finally:
            db.session.commit()


@pytest.fixture
def app(app_config: dict[str, Any], backend: str, database_url: str) -> Iterator[Flask]:
    application = create_app(app_config)
    application.test_client_class = IsolatedClient
    if app_config["IDP_DATABASE_URL"] != database_url:  # not the prepared database
        if backend == "postgresql":
            _reset_postgres(application)
        else:
            with application.app_context():
                db.create_all()
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- the fake upstreams: real HTTP on loopback, one server of each per worker ------------------
#
# Stopping a server waits for its poll loop (up to half a second), so the servers live as long as
# the worker; a test gets them reset. Module-scoped fixtures that must keep their registrations
# for a whole module use the `…_server` fixtures and reset them themselves.


@pytest.fixture(scope="session")
def fake_sms_server() -> Iterator[sms_fake.FakeSmsServer]:
    server = sms_fake.serve_in_thread()
    yield server
    server.shutdown()


@pytest.fixture
def fake_sms(fake_sms_server: sms_fake.FakeSmsServer) -> sms_fake.FakeSmsServer:
    """The fake SMS providers (Aliyun, Tencent, Tencent Captcha), reset, with the test accounts
    of tests/sms/conftest.py registered."""
    from tests.sms.conftest import register_accounts

    fake_sms_server.control.reset()
    register_accounts(fake_sms_server)
    return fake_sms_server


@pytest.fixture(scope="session")
def fake_wechat_server() -> Iterator[wechat_fake.FakeWeChatServer]:
    server = wechat_fake.serve_in_thread()
    yield server
    server.shutdown()


@pytest.fixture
def fake_wechat(fake_wechat_server: wechat_fake.FakeWeChatServer) -> wechat_fake.FakeWeChatServer:
    """The fake WeChat, reset: no apps, users, codes or armed failures (each directory's
    `control` fixture registers its apps)."""
    fake_wechat_server.control.reset()
    return fake_wechat_server


# --- how the suite is spread over pytest-xdist's workers -----------------------------------------


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: a worker per core plus one, at most four (tests/redis_db.py). A third of a
    two-worker run on two cores was waiting (servers and clusters starting, browsers,
    PostgreSQL): 9:50 with two workers, 7:24 with three, same machine, same hour."""
    return min(4, (os.cpu_count() or 1) + 1)

#
# `--dist loadfile` keeps a module on one worker (its module-scoped servers, browsers and image
# start once). xdist would hand out the modules with the most tests first; a module that waits
# on what it starts (buildah, Chromium, npm, a server in a subprocess) or runs Hypothesis against
# the database has few tests but long ones, and handed out last it ended the run alone on one
# worker while the others had finished. These go first, the longest first; the rest follow with
# the most tests first (pyproject.toml: `--no-loadscope-reorder` keeps this order).
SCHEDULED_FIRST = (
    "container/test_image.py",
    "security/test_hostile_input.py",
    "api/test_claims_api.py",
    "production/test_database_restart.py",
    "production/test_two_processes.py",
    "production/test_server_resilience.py",
    "production/test_sms_two_processes.py",
    "production/test_scan_two_processes.py",
    "production/test_shared_state.py",
    "production/test_throttles_without_redis.py",
    "production/test_load.py",
    "accessibility/test_pages.py",
    "oidc/test_readme_node.py",
    "oidc/test_gateway.py",
    "sdk/test_miniprogram_sdk.py",
    "account_centre/test_browser.py",
    "admin/test_browser.py",
    "demo/test_wechat_browser.py",
    "admin/test_four_eyes_browser.py",
    "account_centre/test_browser_reauth.py",
    "account_centre/test_browser_official_account.py",
    "accounts/test_back_after_logout.py",
    "demo/test_sms_browser.py",
    "demo/test_narrow_screen_browser.py",
    "container/test_manifests.py",
    "api/test_readme_example.py",
    "events/test_amqp.py",
    "events/test_watching.py",
    "wechat/test_access_token.py",
    "oidc/test_dependencies.py",
    "test_caching.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    modules: dict[Path, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.path, []).append(item)
    first = {tests / name: index for index, name in enumerate(SCHEDULED_FIRST)}

    def order(path: Path) -> tuple[int, int]:
        if path in first:
            return (0, first[path])
        return (1, -len(modules[path]))

    items[:] = [item for path in sorted(modules, key=order) for item in modules[path]]


# --- factories ---------------------------------------------------------------------------------


@pytest.fixture
def make_user(app: Flask) -> Any:
    from idp.accounts.seed import create_password_user

    counter = iter(range(10_000))

    def factory(phone: str | None = None, password: str = PASSWORD, **kwargs: Any) -> Any:
        number = phone or f"+86138{next(counter) + 10000000:08d}"
        return create_password_user(number, password, **kwargs)

    return factory


@pytest.fixture
def make_client(app: Flask) -> Any:
    from idp.oidc.clients import create_client

    def factory(**kwargs: Any) -> tuple[Any, str | None]:
        kwargs.setdefault("name", "Test site")
        if (
            not kwargs.get("public")
            and "grant_types" not in kwargs
            and "redirect_uris" not in kwargs
        ):
            kwargs["redirect_uris"] = ["https://rp.example/callback"]
        return create_client(**kwargs)

    return factory


# --- the browser side of the code flow -----------------------------------------------------------


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no CSRF token in page"
    return match.group(1)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def statements_of(app: Flask, act: Any) -> list[str]:
    """The SQL the app sends to the database while `act()` runs, in order."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        act()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    return statements


def login(
    browser: FlaskClient, identifier: str, password: str = PASSWORD, next_url: str = ""
) -> Any:
    page = browser.get("/login")
    return browser.post(
        "/login",
        data={
            "identifier": identifier,
            "password": password,
            "next": next_url,
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        },
    )


class CodeFlow:
    """Drives the authorization endpoint like a browser would, for one client."""

    def __init__(
        self,
        browser: FlaskClient,
        client: Any,
        secret: str | None,
        redirect_uri: str = "https://rp.example/callback",
    ):
        self.browser = browser
        self.client = client
        self.secret = secret
        self.redirect_uri = redirect_uri
        self.verifier, self.challenge = pkce_pair()

    def authorize_params(self, **extra: Any) -> dict[str, Any]:
        params = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile phone",
            "state": "st-" + secrets.token_hex(4),
            "nonce": "n-" + secrets.token_hex(4),
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, consent: str | None = "allow", **extra: Any) -> Any:
        params = self.authorize_params(**extra)
        response = self.browser.get("/oauth/authorize", query_string=params)
        if response.status_code == 200 and consent and b'name="decision"' in response.data:
            form = dict(params)
            form["decision"] = consent
            form["csrf_token"] = csrf_token(response.get_data(as_text=True))
            response = self.browser.post("/oauth/authorize", data=form)
        return response

    def code(self, **extra: Any) -> str:
        response = self.authorize(**extra)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        params = query_of(response.headers["Location"])
        assert "code" in params, params
        return params["code"]

    def token_auth(self) -> dict[str, Any]:
        if self.secret is None:
            return {"data": {"client_id": self.client.client_id}}
        return {"auth": (self.client.client_id, self.secret), "data": {}}

    def exchange(self, code: str, **extra: Any) -> Any:
        auth = self.token_auth()
        data = {
            **auth["data"],
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.verifier,
        }
        data.update(extra)
        data = {k: v for k, v in data.items() if v is not None}
        return self.browser.post("/oauth/token", data=data, auth=auth.get("auth"))

    def refresh(self, refresh_token: str, **extra: Any) -> Any:
        auth = self.token_auth()
        data = {
            **auth["data"],
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            **extra,
        }
        return self.browser.post("/oauth/token", data=data, auth=auth.get("auth"))

    def tokens(self, **extra: Any) -> dict[str, Any]:
        response = self.exchange(self.code(**extra))
        assert response.status_code == 200, response.get_json()
        return response.get_json()


@pytest.fixture
def user(make_user: Any) -> Any:
    return make_user(phone="+8613800138000", name="Alice", email="alice@example.com")


@pytest.fixture
def website(make_client: Any) -> tuple[Any, str]:
    return make_client(
        name="Website",
        redirect_uris=["https://rp.example/callback"],
        post_logout_redirect_uris=["https://rp.example/bye"],
    )


@pytest.fixture
def flow(client: FlaskClient, website: tuple[Any, str], user: Any) -> CodeFlow:
    login(client, "+8613800138000")
    return CodeFlow(client, website[0], website[1])


@pytest.fixture
def backchannel_receiver() -> Iterator[Any]:
    """A relying party's back-channel logout URI on loopback (tests/signed_in_device.py)."""
    from tests.signed_in_device import serve_backchannel_receiver

    yield from serve_backchannel_receiver()
