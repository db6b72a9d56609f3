"""The token holder (`idp.oidc.grants.TokenHolder`): the ID token of the scope the holder was
read for takes the claims read then (OIDC Core §2, §5.4); another scope reads them again, and
an account that may no longer hold tokens is refused (RFC 6749 §5.2 invalid_grant)."""

from typing import Any

import pytest
from authlib.oauth2.rfc6749 import InvalidGrantError

from idp.extensions import db
from idp.identity.models import Account, AccountStatus
from idp.oidc.grants import TokenHolder, id_token_claims, token_holder


def test_the_id_token_of_the_same_scope_takes_the_claims_read_for_the_holder__oidc_core_2(
    app: Any, make_user: Any, make_client: Any
) -> None:
    account = make_user()
    client, _ = make_client()
    holder = token_holder(account.id, "openid profile", client)
    assert isinstance(holder, TokenHolder) and holder.claims["sub"] == account.id
    held = TokenHolder(account.id, "openid profile", {**holder.claims, "held": True})
    assert id_token_claims(held, "openid profile", client)["held"] is True
    # Another scope: read again, not the held claims.
    other = id_token_claims(held, "openid", client)
    assert other["sub"] == account.id and "held" not in other


def test_an_account_that_may_no_longer_hold_tokens_is_refused__rfc6749_5_2(
    app: Any, make_user: Any, make_client: Any
) -> None:
    account = make_user()
    client, _ = make_client()
    holder = token_holder(account.id, "openid profile", client)
    assert holder is not None
    row = db.session.get(Account, account.id)
    row.status = AccountStatus.DISABLED
    db.session.commit()
    assert token_holder(account.id, "openid profile", client) is None
    with pytest.raises(InvalidGrantError):
        id_token_claims(holder, "openid", client)  # another scope: read again, and refused
