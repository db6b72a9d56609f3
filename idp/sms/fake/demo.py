"""The demo's SMS provider: the fake Alibaba Cloud SMS, with one account and approved templates,
so `make run` exercises the real adapter, signatures included. The fake prints each message it
accepts to the console, where the developer reads the code."""

from __future__ import annotations

from idp.sms.fake.server import FakeSmsControl
from idp.sms.purposes import Purpose

KEY_ID = "LTAI-demo-key-id"
KEY_SECRET = "demo-only-secret-not-for-production"  # noqa: S105 - the fake's, on loopback
SIGN_NAME = "演示网站"
TEMPLATES = {purpose: f"SMS_DEMO_{purpose.name}" for purpose in Purpose}
INTL_TEMPLATES = {purpose: f"SMS_DEMO_INTL_{purpose.name}" for purpose in Purpose}


def demo_environment(base_url: str) -> dict[str, str]:
    return {
        "IDP_SMS_PROVIDER": "aliyun",
        "IDP_SMS_API_BASE": base_url,
        "IDP_SMS_KEY_ID": KEY_ID,
        "IDP_SMS_KEY_SECRET": KEY_SECRET,
        "IDP_SMS_SIGN_NAME": SIGN_NAME,
        **{f"IDP_SMS_TEMPLATE_{purpose.name}": code for purpose, code in TEMPLATES.items()},
        **{f"IDP_SMS_TEMPLATE_{purpose.name}_INTL": code
           for purpose, code in INTL_TEMPLATES.items()},
    }


def register_demo_account(control: FakeSmsControl) -> None:
    templates = [
        *({"id": t, "region": "mainland", "variables": ["code"]} for t in TEMPLATES.values()),
        *({"id": t, "region": "international", "variables": ["code"]}
          for t in INTL_TEMPLATES.values()),
    ]
    control.add_account("aliyun", KEY_ID, KEY_SECRET, sign_names=[SIGN_NAME], templates=templates)
