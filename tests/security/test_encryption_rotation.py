"""Secrets at rest: AES-GCM under a versioned key, and `idp keys rotate-encryption`."""

from typing import Any

import pytest

from idp import create_app
from idp.crypto import DecryptionError, SecretBox
from idp.extensions import db


def test_ciphertext_is_bound_to_its_key_and_context() -> None:
    box = SecretBox("key-one")
    token = box.encrypt("s3cret", context="row-1")
    assert "s3cret" not in token
    assert box.decrypt(token, context="row-1") == "s3cret"
    with pytest.raises(DecryptionError):
        box.decrypt(token, context="row-2")  # a ciphertext copied to another row is refused
    with pytest.raises(DecryptionError):
        SecretBox("key-two").decrypt(token, context="row-1")
    assert SecretBox("key-two,key-one").decrypt(token, context="row-1") == "s3cret"


def test_rotate_encryption_then_drop_the_old_key(app: Any, app_config: dict, client: Any) -> None:
    from idp.accounts.seed import create_password_user
    from idp.identity.models import Account
    from idp.operations.encryption import rotate_encryption
    from idp.second_factor.admin_totp import enrolled_secret
    from idp.wechat.apps import app_secret, create_wechat_app
    from idp.wechat.models import WeChatApp

    client.get("/oauth/jwks")  # creates the signing keys under the old key
    create_wechat_app("miniprogram", "wxrotate", "app-secret-1234")
    admin = create_password_user("+8613800138009", "correct horse battery", admin=True)
    admin.totp_secret_encrypted = app.extensions["idp_secret_box"].encrypt(
        "JBSWY3DPEHPK3PXP", context=f"admin-totp:{admin.id}"
    )
    db.session.commit()
    admin_id = admin.id
    jwks_before = client.get("/oauth/jwks").get_json()

    rotated = create_app({**app_config, "IDP_ENCRYPTION_KEY": "new-key,test-encryption-key"})
    with rotated.app_context():
        counts = rotate_encryption(rotated.extensions["idp_secret_box"])
        assert counts["signing_key"] == 2 and counts["wechat_app"] == 1
        assert counts["account"] == 1
        assert rotate_encryption(rotated.extensions["idp_secret_box"])["signing_key"] == 0
        db.session.remove()
        db.engine.dispose()

    only_new = create_app({**app_config, "IDP_ENCRYPTION_KEY": "new-key"})
    with only_new.app_context():
        assert app_secret(db.session.get(WeChatApp, "wxrotate")) == "app-secret-1234"
        assert enrolled_secret(db.session.get(Account, admin_id)) == "JBSWY3DPEHPK3PXP"
        browser = only_new.test_client()
        assert browser.get("/oauth/jwks").get_json() == jwks_before
        db.session.remove()
        db.engine.dispose()
