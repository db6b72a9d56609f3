"""A back-end service registered with management scopes, and its client-credentials token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

# Every scope that allows operations, as a service that sees no personal data holds them.
MASKED_SCOPES = "idp:accounts.read idp:accounts.write idp:merges idp:sessions idp:events.read"
# Phones and emails unmasked in the answers (issue 27 item 3): the tests that compare them hold it.
PERSONAL_DATA = "idp:accounts.personal_data"
ALL_SCOPES = f"{MASKED_SCOPES} {PERSONAL_DATA}"
# Registered for the service, asked for only by the tests that vouch for a phone.
VOUCH = "idp:phones.vouch"


@dataclass
class Service:
    """Calls /api/v1 with a bearer token, as a back-end service would."""

    browser: FlaskClient
    client_id: str
    secret: str
    token: str = ""

    def get_token(self, scope: str = ALL_SCOPES) -> str:
        response = self.browser.post(
            "/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
            auth=(self.client_id, self.secret),
        )
        assert response.status_code == 200, response.get_json()
        return str(response.get_json()["access_token"])

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.browser.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)


@pytest.fixture
def service(client: FlaskClient, make_client: Any) -> Service:
    registered, secret = make_client(
        name="Orders", grant_types=["client_credentials"], scope=f"{ALL_SCOPES} {VOUCH}"
    )
    backend = Service(client, registered.client_id, secret)
    backend.token = backend.get_token()
    return backend
