"""Structured logs: JSON lines with the request id, and no secret in any of them."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp import create_app
from idp.observability.logging import (
    _NOW_TEXT,
    REDACTED,
    JsonFormatter,
    RedactingFilter,
    _flat_json,
    _time_text,
    json_handler,
    redact,
)
from tests.conftest import CodeFlow, base_config, csrf_token, login
from tests.wechat_login.conftest import (  # noqa: F401 - fixtures
    MINI_SECRET,
    control,
    exchange,
    mini_client,
    wechat_apps,
)


@pytest.fixture
def app_config(app_config: dict[str, Any], fake_wechat: Any) -> dict[str, Any]:  # noqa: F811
    return {
        **app_config,
        "IDP_WECHAT_API_BASE": fake_wechat.base_url,
        "IDP_WECHAT_OPEN_BASE": fake_wechat.base_url,
        "IDP_WECHAT_TIMEOUT": (1.0, 1.5),
    }


class Captured:
    """Every record, as the production handler writes it and as the code logged it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.raw: list[str] = []

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


class RawHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "werkzeug":
            return  # the fake WeChat's own request log, another server than the IdP
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        standard = logging.makeLogRecord({}).__dict__
        extras = {k: v for k, v in record.__dict__.items() if k not in standard}
        self.sink.append(f"{record.name}: {text} {extras!r}")


@pytest.fixture
def captured() -> Iterator[Captured]:
    capture = Captured()
    formatted = json_handler(logging.StreamHandler(capture.stream))
    raw = RawHandler(capture.raw)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.handlers.insert(0, raw)  # first: it sees records before any filter scrubs them
    root.addHandler(formatted)
    yield capture
    root.removeHandler(formatted)
    root.removeHandler(raw)
    root.setLevel(level)


# --- the format ---------------------------------------------------------------------------------


def test_every_line_is_json_with_the_request_id(client: FlaskClient, captured: Captured) -> None:
    client.application.config["IDP_PROXY_FIX"] = 1  # the proxy's X-Request-Id is trusted
    response = client.get("/oauth/jwks", headers={"X-Request-Id": "req-0123456789"})
    assert response.headers["X-Request-Id"] == "req-0123456789"
    lines = [json.loads(line) for line in captured.lines()]
    access = [line for line in lines if line["logger"] == "idp.access"]
    assert access, lines
    assert access[-1]["request_id"] == "req-0123456789"
    assert access[-1]["endpoint"] == "oidc.jwks"
    assert access[-1]["status"] == 200
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys()


def test_lines_outside_a_request_have_a_null_request_id(captured: Captured) -> None:
    logging.getLogger("idp.test").warning("hello %s", "world", extra={"appid": "wx1"})
    (line,) = [json.loads(line) for line in captured.lines()]
    assert line["message"] == "hello world"
    assert line["request_id"] is None
    assert line["appid"] == "wx1"


def test_error_responses_carry_the_request_id(client: FlaskClient) -> None:
    response = client.get("/oauth/no-such-endpoint")
    assert response.status_code == 404
    assert response.get_json()["request_id"] == response.headers["X-Request-Id"]


def test_a_rate_limited_answer_has_a_request_id_too(tmp_path: Any) -> None:
    config = {
        **base_config(tmp_path, f"sqlite:///{tmp_path / 'rl.sqlite3'}"),
        "RATELIMIT_ENABLED": True,
        "IDP_TOKEN_RATE_LIMIT": "1/minute",
    }
    client = create_app(config).test_client()
    form = {"client_id": "x", "grant_type": "client_credentials"}
    client.post("/oauth/token", data=form)
    refused = client.post("/oauth/token", data=form)
    assert refused.status_code == 429
    assert refused.get_json()["request_id"] == refused.headers["X-Request-Id"] != ""


def test_create_app_installs_one_json_handler(tmp_path: Any) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    # An app an earlier test of this process made may have left its handler: start without it.
    start = [h for h in before if not isinstance(h.formatter, JsonFormatter)]
    root.handlers[:] = start
    try:
        config = {**base_config(tmp_path, f"sqlite:///{tmp_path / 'j.sqlite3'}"),
                  "IDP_LOG_JSON": "true"}  # fmt: skip
        create_app(config)
        create_app(config)
        added = [h for h in root.handlers if h not in start]
        assert len(added) == 1
        assert isinstance(added[0].formatter, JsonFormatter)
        assert any(isinstance(f, RedactingFilter) for f in added[0].filters)
    finally:
        root.handlers[:] = before
        root.setLevel(level)


@pytest.mark.parametrize("path, endpoint", [("/oauth/jwks", "oidc.jwks"),  # a hot path
                                            ("/login", "accounts.login")])  # Flask's pipeline
def test_the_access_line_written_directly_is_the_handlers_line(
    client: FlaskClient, capsys: pytest.CaptureFixture[str], path: str, endpoint: str
) -> None:
    """The hot paths write their access line straight when the JSON handler on stderr alone
    listens (`write_verbatim`); the line is the one that handler makes of the record, which
    it gets whenever anything else listens too."""
    client.application.config["IDP_PROXY_FIX"] = 1  # the proxy's X-Request-Id is trusted
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    root.handlers[:] = [json_handler()]  # the servers' set-up: one JSON handler on stderr
    root.setLevel(logging.INFO)
    try:
        client.get(path, headers={"X-Request-Id": "req-direct-0001"})
        direct = capsys.readouterr().err.splitlines()
        root.addHandler(logging.NullHandler())  # another listener: the record path
        client.get(path, headers={"X-Request-Id": "req-direct-0001"})
        through_logging = capsys.readouterr().err.splitlines()
    finally:
        root.handlers[:] = before
        root.setLevel(level)
    direct = [line for line in direct if '"idp.access"' in line]
    through_logging = [line for line in through_logging if '"idp.access"' in line]
    assert len(direct) == len(through_logging) == 1
    first, second = json.loads(direct[0]), json.loads(through_logging[0])
    for line in (first, second):
        del line["time"], line["duration_ms"]
    assert first == second
    assert list(first) == list(second)  # the same order of keys
    assert first["logger"] == "idp.access" and first["endpoint"] == endpoint
    assert first["request_id"] == "req-direct-0001"


@pytest.mark.parametrize("value", [
    "plain", "引号\"与\\反斜杠", "control \x01\n\t\u2028", "emoji 😀", "", None, True, False,
    0, -7, 2**70, 0.1, 1e-7, 1e300, float("nan"), float("inf"), ["a", 1], {"nested": 1},
    b"bytes", object,
])
def test_the_direct_access_line_is_byte_for_byte_what_json_dumps_writes(value: Any) -> None:
    """`write_verbatim`'s JSON is assembled from the C string encoder for flat values; any
    value it does not know (and a non-finite float) goes to `json.dumps` itself."""
    entry = {"time": "2026-12-07T01:00:00.000+00:00", "message": "GET /oauth/jwks 200",
             "key \"quoted\"": value, "status": 200}
    assert _flat_json(entry) == json.dumps(entry, default=str, ensure_ascii=False)


def test_the_time_text_is_remade_each_millisecond() -> None:
    import time

    first = _NOW_TEXT.now()
    assert first == _time_text(_NOW_TEXT.current[0] / 1000)
    time.sleep(0.002)
    later, now = _NOW_TEXT.now(), time.time()
    assert later > first and later == _time_text(_NOW_TEXT.current[0] / 1000)
    assert 0 <= now * 1000 - _NOW_TEXT.current[0] < 50  # this millisecond's, not a stale one
    time.sleep(1.001)  # into another second: its text is made anew, not the last one's reused
    assert _NOW_TEXT.now() == _time_text(_NOW_TEXT.current[0] / 1000)


@pytest.mark.parametrize(
    "text, secret",
    [
        ("GET /login/wechat/callback?code=0a1b2c3d&state=xyz", "0a1b2c3d"),
        ("POST body grant_type=refresh_token&refresh_token=r3fr3sh&scope=x", "r3fr3sh"),
        ("/sns/jscode2session?appid=wx1&secret=s3cr3t&js_code=j5c0de", "s3cr3t"),
        ("/sns/jscode2session?appid=wx1&secret=s3cr3t&js_code=j5c0de", "j5c0de"),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ('{"session_key": "c2Vzc2lvbg==", "openid": "o1"}', "c2Vzc2lvbg=="),
        ("{'password': 'hunter2hunter2'}", "hunter2hunter2"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here", "eyJzdWIiOiIxIn0"),
        ("access_token%3Dab12cd34", "ab12cd34"),
    ],
)
def test_redaction(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_redaction_keeps_what_is_not_secret() -> None:
    text = "code_challenge=abc&state=xyz&errcode=40029&client_id=c1"
    assert redact(text) == text


def test_the_filter_scrubs_arguments_extras_and_exceptions(captured: Captured) -> None:
    log = logging.getLogger("idp.test")
    log.info("calling %s", "/x?access_token=leak1", extra={"query": "secret=leak2"})
    try:
        raise ValueError("password=leak3")
    except ValueError:
        log.exception("failed")
    output = "\n".join(captured.lines())
    for leak in ("leak1", "leak2", "leak3"):
        assert leak not in output


# --- no secret anywhere ---------------------------------------------------------------------


def test_no_secret_reaches_any_log_line(
    app: Flask,
    client: FlaskClient,
    make_user: Any,
    make_client: Any,
    mini_client: Any,  # noqa: F811
    control: Any,  # noqa: F811
    captured: Captured,
) -> None:
    secrets: set[str] = {MINI_SECRET, "test-encryption-key", "test-secret-key"}
    password = "a password worth stealing"
    secrets.add(password)
    make_user(phone="+8613800138111", password=password)

    # Password login, then the code flow and a refresh.
    assert login(client, "+8613800138111", password=password).status_code == 302
    site, client_secret = make_client(
        redirect_uris=["https://rp.example/callback"],
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile phone offline_access",
    )
    secrets.add(client_secret)
    flow = CodeFlow(client, site, client_secret)
    secrets.add(flow.verifier)
    code = flow.code(scope="openid profile offline_access", prompt="consent")
    secrets.add(code)
    tokens = flow.exchange(code).get_json()
    secrets.update(tokens[name] for name in ("access_token", "id_token", "refresh_token"))
    client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    refreshed = flow.refresh(tokens["refresh_token"]).get_json()
    secrets.update(refreshed[name] for name in ("access_token", "refresh_token"))
    flow.refresh(tokens["refresh_token"])  # a repeat within the grace window: the same answer
    newest = flow.refresh(refreshed["refresh_token"]).get_json()
    secrets.update(newest[name] for name in ("access_token", "refresh_token"))
    flow.refresh(tokens["refresh_token"])  # now a reuse: logged as such, without the token
    flow.exchange(code)  # a replayed code, likewise

    # SMS registration.
    browser = app.test_client()
    page = browser.get("/register")
    form = {"phone": "139 1234 5678", "csrf_token": csrf_token(page.get_data(as_text=True))}
    browser.post("/register", data=form)
    sms_code = app.extensions["idp_sms"].last_code("+8613912345678")
    assert sms_code
    second_password = "another password to hide"
    secrets.add(second_password)
    confirm = browser.get("/register/confirm?phone=%2B8613912345678")
    done = browser.post(
        "/register/confirm",
        data={"phone": "+8613912345678", "code": sms_code, "password": second_password,
              "accept_terms": "y", "csrf_token": csrf_token(confirm.get_data(as_text=True))},
    )  # fmt: skip
    assert done.status_code == 302

    # The mini-program login (token exchange), a good code then a spent one.
    issued = control.issue_js_code(mini_client.wechat_appid, user="log-test-user")
    secrets.update({issued.code, issued.session_key})
    answer = exchange(client, mini_client, issued.code)
    assert answer.status_code == 200, answer.get_json()
    secrets.update(answer.get_json()[name] for name in ("access_token", "refresh_token"))
    assert exchange(client, mini_client, issued.code).status_code == 400

    lines = captured.lines()
    assert len(lines) > 10  # DEBUG: plenty was logged
    found = _leaks(lines, secrets, sms_code)
    assert not found, f"secrets in formatted log lines: {found}"
    # Our own code logs no secret even before redaction; third-party DEBUG lines may (Authlib's
    # "Issue token {...}" does), which is what the redacting filter is there for.
    ours = [line for line in captured.raw if line.startswith("idp")]
    raw_found = _leaks(ours, secrets, sms_code)
    assert not raw_found, f"secrets logged by the IdP's code: {raw_found}"


def _leaks(lines: list[str], secrets: set[str], sms_code: str) -> list[str]:
    leaks = []
    for line in lines:
        for secret in secrets:
            if secret and secret in line:
                leaks.append(f"{secret[:6]}… in {line[:200]}")
        if re.search(rf"(?<!\d){sms_code}(?!\d)", line):
            leaks.append(f"the SMS code in {line[:200]}")
    return leaks
