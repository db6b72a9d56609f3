"""Health, readiness and /metrics (CONTRACT §4)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp import create_app
from idp.observability import metrics
from tests.conftest import base_config, login
from tests.production.conftest import closed_port


def sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_liveness_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["database"] == "ok"


@pytest.mark.parametrize(
    "unreachable",
    [
        lambda tmp: f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere",
        lambda tmp: f"sqlite:///{tmp / 'no' / 'such' / 'dir' / 'idp.sqlite3'}",
    ],
    ids=["postgresql", "sqlite"],
)
def test_readiness_fails_when_the_database_is_unreachable(tmp_path: Any, unreachable: Any) -> None:
    app = create_app(base_config(tmp_path, unreachable(tmp_path)))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # alive: restarting would not help
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


# --- who may read /metrics ----------------------------------------------------------------


def test_metrics_from_loopback(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "idp_http_requests_total" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "environ, headers",
    [
        ({"REMOTE_ADDR": "203.0.113.7"}, {}),
        ({}, {"X-Forwarded-For": "203.0.113.7"}),  # a proxy on this host: not local
        ({"REMOTE_ADDR": "203.0.113.7"}, {"Authorization": "Bearer wrong"}),
    ],
)
def test_metrics_are_not_public_by_default(
    client: FlaskClient, environ: dict[str, str], headers: dict[str, str]
) -> None:
    response = client.get("/metrics", environ_base=environ, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"] == "access_denied"


def test_metrics_with_the_metrics_token(app: Flask, client: FlaskClient) -> None:
    app.config["IDP_METRICS_TOKEN"] = "scrape-me"
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    headers = {"Authorization": "Bearer scrape-me"}
    assert client.get("/metrics", environ_base=remote, headers=headers).status_code == 200


def test_metrics_made_public(app: Flask, client: FlaskClient) -> None:
    app.config["IDP_METRICS_PUBLIC"] = "true"
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 200


# --- what is counted ----------------------------------------------------------------------


def test_requests_are_counted_by_endpoint_name_not_path(client: FlaskClient) -> None:
    jwks = sample("idp_http_requests_total", endpoint="oidc.jwks", method="GET", status="200")
    unmatched = sample("idp_http_requests_total", endpoint="unmatched", method="GET", status="404")
    timed = sample("idp_http_request_duration_seconds_count", endpoint="oidc.jwks", method="GET")
    client.get("/oauth/jwks")
    client.get("/no/such/page/123")
    assert (
        sample("idp_http_requests_total", endpoint="oidc.jwks", method="GET", status="200")
        == jwks + 1
    )
    assert (
        sample("idp_http_requests_total", endpoint="unmatched", method="GET", status="404")
        == unmatched + 1
    )
    assert (
        sample("idp_http_request_duration_seconds_count", endpoint="oidc.jwks", method="GET")
        == timed + 1
    )


def test_tokens_are_counted_by_grant(client: FlaskClient, make_client: Any) -> None:
    rp, secret = make_client(grant_types=["client_credentials"], scope="")
    before = sample("idp_tokens_issued_total", grant_type="client_credentials")
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(rp.client_id, secret)
    )
    assert response.status_code == 200, response.get_json()
    assert sample("idp_tokens_issued_total", grant_type="client_credentials") == before + 1


def test_logins_are_counted_by_channel(client: FlaskClient, user: Any) -> None:
    before = sample("idp_logins_total", channel="website_password")
    assert login(client, "+8613800138000").status_code == 302
    assert sample("idp_logins_total", channel="website_password") == before + 1
    login(client, "+8613800138000", password="wrong password")
    assert sample("idp_logins_total", channel="website_password") == before + 1


def test_merges_are_counted_when_they_commit(app: Flask, make_user: Any) -> None:
    from idp.identity.audit import Actor
    from idp.identity.merge import merge_accounts
    from idp.identity.rules import MergeRule, Proof

    survivor, loser = make_user(), make_user()
    before = sample("idp_account_merges_total", rule=MergeRule.ADMIN_DECISION)
    merge_accounts(
        survivor, loser, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("same person"),
        actor=Actor.admin(survivor.id),
    )  # fmt: skip
    assert sample("idp_account_merges_total", rule=MergeRule.ADMIN_DECISION) == before + 1


def test_wechat_calls_are_counted_by_errcode(app: Flask) -> None:
    before = sample("idp_wechat_calls_total", path="/sns/jscode2session", errcode="40163")
    observer = app.extensions["idp_wechat_on_call"]  # what the WeChat login hands the client
    observer("/sns/jscode2session", 40163, 0.01)
    metrics.wechat_call_observer("/sns/jscode2session", None, 3.0)
    assert (
        sample("idp_wechat_calls_total", path="/sns/jscode2session", errcode="40163") == before + 1
    )
    assert sample("idp_wechat_calls_total", path="/sns/jscode2session", errcode="none") >= 1
