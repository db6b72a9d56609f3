"""The fake SMS providers served on loopback, with one account per provider registered."""

from __future__ import annotations

from typing import Any

from idp.sms.fake import FakeSmsServer
from idp.sms.purposes import Purpose

ALIYUN_KEY = ("LTAI5tFakeKeyId0001", "aliyun-secret-0001")
TENCENT_KEY = ("AKIDfakeSecretId0001", "tencent-secret-0001")
CAPTCHA_KEY = ("AKIDfakeCaptcha0001", "captcha-secret-0001")
SIGN_NAME = "示例网"
TENCENT_APP_ID = "1400000001"
CAPTCHA_APP_ID = "190000001"
CAPTCHA_APP_SECRET = "captcha-app-secret-key"
ALIYUN_TEMPLATES = {p: f"SMS_10000{i}" for i, p in enumerate(Purpose)}
TENCENT_TEMPLATES = {p: f"20000{i}" for i, p in enumerate(Purpose)}
# The 国际/港澳台 templates (Hong Kong, Macau and other numbers).
ALIYUN_INTL_TEMPLATES = {p: f"SMS_20000{i}" for i, p in enumerate(Purpose)}
TENCENT_INTL_TEMPLATES = {p: f"30000{i}" for i, p in enumerate(Purpose)}


def approved(mainland: dict[Purpose, str], international: dict[Purpose, str]) -> list[Any]:
    """As the provider's console holds them: one variable, the code (README's templates)."""
    return [
        *({"id": t, "region": "mainland", "variables": ["code"]} for t in mainland.values()),
        *({"id": t, "region": "international", "variables": ["code"]}
          for t in international.values()),
    ]


def register_accounts(fake: FakeSmsServer) -> None:
    fake.control.add_account("aliyun", *ALIYUN_KEY, sign_names=[SIGN_NAME],
                             templates=approved(ALIYUN_TEMPLATES, ALIYUN_INTL_TEMPLATES))
    fake.control.add_account("tencent", *TENCENT_KEY, sign_names=[SIGN_NAME],
                             templates=approved(TENCENT_TEMPLATES, TENCENT_INTL_TEMPLATES),
                             app_id=TENCENT_APP_ID)
    fake.control.add_account("captcha", *CAPTCHA_KEY, app_id=CAPTCHA_APP_ID,
                             app_secret_key=CAPTCHA_APP_SECRET)


def provider_config(provider: str, base_url: str) -> dict[str, Any]:
    """The IDP_* settings that point the IdP at the fake, for `provider`."""
    key_id, secret = ALIYUN_KEY if provider == "aliyun" else TENCENT_KEY
    templates = ALIYUN_TEMPLATES if provider == "aliyun" else TENCENT_TEMPLATES
    international = ALIYUN_INTL_TEMPLATES if provider == "aliyun" else TENCENT_INTL_TEMPLATES
    config: dict[str, Any] = {
        "IDP_SMS_PROVIDER": provider,
        "IDP_SMS_API_BASE": base_url,
        "IDP_SMS_KEY_ID": key_id,
        "IDP_SMS_KEY_SECRET": secret,
        "IDP_SMS_SIGN_NAME": SIGN_NAME,
        "IDP_SMS_TIMEOUT": 2,
        **{f"IDP_SMS_TEMPLATE_{p.name}": t for p, t in templates.items()},
        **{f"IDP_SMS_TEMPLATE_{p.name}_INTL": t for p, t in international.items()},
    }
    if provider == "tencent":
        config["IDP_SMS_APP_ID"] = TENCENT_APP_ID
    return config


def captcha_config(base_url: str) -> dict[str, Any]:
    return {
        "IDP_CAPTCHA_PROVIDER": "tencent",
        "IDP_CAPTCHA_API_BASE": base_url,
        "IDP_CAPTCHA_APP_ID": CAPTCHA_APP_ID,
        "IDP_CAPTCHA_APP_SECRET_KEY": CAPTCHA_APP_SECRET,
        "IDP_CAPTCHA_KEY_ID": CAPTCHA_KEY[0],
        "IDP_CAPTCHA_KEY_SECRET": CAPTCHA_KEY[1],
    }
