"""SMS and captcha settings, read from the app's config at start-up and checked there: a wrong
provider name, a missing template or credential stops the start with the setting's name.

Secrets come from the environment or from a file (`…_FILE`, e.g. a mounted Kubernetes secret);
they are kept in memory only, never logged and never written to the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idp.errors import ConfigError
from idp.sms.purposes import Purpose
from idp.sms.regions import Region, region_of, region_of_country_code

PROVIDERS = ("log", "aliyun", "tencent")
DEFAULT_API_BASES = {
    "aliyun": "https://dysmsapi.aliyuncs.com",
    "tencent": "https://sms.tencentcloudapi.com",
}
CAPTCHA_PROVIDERS = ("none", "tencent")
CAPTCHA_MODES = ("risk", "always")
DEFAULT_CAPTCHA_API_BASE = "https://captcha.tencentcloudapi.com"

# Every name here is read from the environment too (idp/config.py, ENVIRONMENT_NAMES).
ENVIRONMENT_NAMES = (
    "IDP_SMS_PROVIDER",
    "IDP_SMS_API_BASE",
    "IDP_SMS_KEY_ID",
    "IDP_SMS_KEY_SECRET",
    "IDP_SMS_KEY_SECRET_FILE",
    "IDP_SMS_SIGN_NAME",
    "IDP_SMS_APP_ID",
    "IDP_SMS_REGION",
    "IDP_SMS_TIMEOUT",
    *(f"IDP_SMS_TEMPLATE_{purpose.name}" for purpose in Purpose),
    *(f"IDP_SMS_TEMPLATE_{purpose.name}_INTL" for purpose in Purpose),
    "IDP_SMS_ALLOWED_COUNTRY_CODES",
    "IDP_SMS_HOURLY_BUDGET",
    "IDP_SMS_CODE_TTL",
    "IDP_CAPTCHA_PROVIDER",
    "IDP_CAPTCHA_MODE",
    "IDP_CAPTCHA_API_BASE",
    "IDP_CAPTCHA_APP_ID",
    "IDP_CAPTCHA_APP_SECRET_KEY",
    "IDP_CAPTCHA_APP_SECRET_KEY_FILE",
    "IDP_CAPTCHA_KEY_ID",
    "IDP_CAPTCHA_KEY_SECRET",
    "IDP_CAPTCHA_KEY_SECRET_FILE",
    "IDP_CAPTCHA_JS_URL",
    "IDP_TERMS_URL",
    "IDP_PRIVACY_URL",
    "IDP_TERMS_VERSION",
)

DEFAULTS: dict[str, Any] = {
    "IDP_SMS_PROVIDER": "log",
    "IDP_SMS_TIMEOUT": 5,
    "IDP_SMS_ALLOWED_COUNTRY_CODES": "86",
    # The spend circuit-breaker: codes sent per hour by the whole IdP, every phone together.
    "IDP_SMS_HOURLY_BUDGET": 1000,
    "IDP_CAPTCHA_PROVIDER": "none",
    "IDP_CAPTCHA_MODE": "risk",
    # The browser loads the challenge from here (the fake serves one too: /TJCaptcha.js).
    "IDP_CAPTCHA_JS_URL": "https://turing.captcha.qcloud.com/TJCaptcha.js",
    "IDP_TERMS_URL": "/terms",
    "IDP_PRIVACY_URL": "/privacy",
    "IDP_TERMS_VERSION": "2026-11-30",
}


# What a template's variables may stand for; a verification-code template at Alibaba Cloud
# allows one variable (the code), so `code` alone is the default.
TEMPLATE_VALUES = ("code", "minutes")
DEFAULT_TEMPLATE_VARIABLES = ("code",)


@dataclass(frozen=True)
class SmsTemplate:
    """An approved template and the variables it declares, in order: Aliyun sends them by
    name (`${code}`), Tencent by position (`{1}`, `{2}`)."""

    id: str
    variables: tuple[str, ...] = DEFAULT_TEMPLATE_VARIABLES

    @classmethod
    def parse(cls, name: str, value: str) -> SmsTemplate:
        """`SMS_154950909` (variables: code) or `SMS_154950909:code,minutes`."""
        template_id, _, listed = value.partition(":")
        variables = tuple(v.strip() for v in listed.split(",") if v.strip()) if listed else (
            DEFAULT_TEMPLATE_VARIABLES
        )
        if not template_id.strip() or any(v not in TEMPLATE_VALUES for v in variables) or (
            "code" not in variables or len(set(variables)) != len(variables)
        ):
            raise ConfigError(
                f"{name} must be a template id, optionally with its variables in order "
                f"(e.g. 'SMS_154950909' or '1234567:code,minutes'; variables among "
                f"{', '.join(TEMPLATE_VALUES)}, code included), got {value!r}"
            )
        return cls(template_id.strip(), variables)

    def values(self, code: str, minutes: int) -> list[tuple[str, str]]:
        """(variable, value) for each declared variable, in the template's order."""
        known = {"code": code, "minutes": str(minutes)}
        return [(variable, known[variable]) for variable in self.variables]


def template_setting(purpose: Purpose, region: Region) -> str:
    suffix = "_INTL" if region is Region.INTERNATIONAL else ""
    return f"IDP_SMS_TEMPLATE_{purpose.name}{suffix}"


@dataclass(frozen=True)
class SmsSettings:
    provider: str
    api_base: str = ""
    key_id: str = ""
    key_secret: str = field(default="", repr=False)
    sign_name: str = ""
    app_id: str = ""
    region: str = ""
    timeout_seconds: float = 5.0
    # Per purpose and region; international ones only when a non-mainland code is allowed.
    templates: dict[tuple[Purpose, Region], SmsTemplate] = field(default_factory=dict)

    def template_for(self, purpose: Purpose, phone: str) -> SmsTemplate:
        """The purpose's template for the number's region (mainland China or international)."""
        region = region_of(phone)
        template = self.templates.get((purpose, region))
        if template is None:
            # Cannot happen for an allowed number: from_config asked for it at start-up.
            raise ConfigError(f"{template_setting(purpose, region)} is not set")
        return template

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SmsSettings:
        provider = _choice(config, "IDP_SMS_PROVIDER", PROVIDERS)
        timeout = _number(config, "IDP_SMS_TIMEOUT", 5)
        if provider == "log":
            return cls(provider="log", timeout_seconds=timeout)
        required = ["IDP_SMS_KEY_ID", "IDP_SMS_SIGN_NAME"]
        if provider == "tencent":
            required.append("IDP_SMS_APP_ID")
        for name in required:
            if not str(config.get(name) or "").strip():
                raise ConfigError(f"{name} is required with IDP_SMS_PROVIDER={provider}")
        regions = {region_of_country_code(code) for code in allowed_country_codes(config)}
        templates: dict[tuple[Purpose, Region], SmsTemplate] = {}
        for region in (Region.MAINLAND, Region.INTERNATIONAL):
            for purpose in Purpose:
                name = template_setting(purpose, region)
                value = str(config.get(name) or "").strip()
                if not value and region in regions:
                    raise ConfigError(
                        f"{name} is required with IDP_SMS_PROVIDER={provider}: the provider's "
                        f"approved {region.value} template for the {purpose.value!r} message"
                        + (" (IDP_SMS_ALLOWED_COUNTRY_CODES has codes other than 86: Hong "
                           "Kong, Macau and other numbers need a 国际/港澳台 template)"
                           if region is Region.INTERNATIONAL else "")
                    )
                if value:
                    templates[(purpose, region)] = SmsTemplate.parse(name, value)
        return cls(
            provider=provider,
            api_base=str(config.get("IDP_SMS_API_BASE") or DEFAULT_API_BASES[provider]),
            key_id=str(config["IDP_SMS_KEY_ID"]).strip(),
            key_secret=read_secret(config, "IDP_SMS_KEY_SECRET"),
            sign_name=str(config["IDP_SMS_SIGN_NAME"]).strip(),
            app_id=str(config.get("IDP_SMS_APP_ID") or "").strip(),
            region=str(config.get("IDP_SMS_REGION") or "").strip(),
            timeout_seconds=timeout,
            templates=templates,
        )


@dataclass(frozen=True)
class CaptchaSettings:
    provider: str
    mode: str = "risk"
    api_base: str = DEFAULT_CAPTCHA_API_BASE
    app_id: int = 0
    app_secret_key: str = field(default="", repr=False)
    key_id: str = ""
    key_secret: str = field(default="", repr=False)
    timeout_seconds: float = 5.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CaptchaSettings:
        provider = _choice(config, "IDP_CAPTCHA_PROVIDER", CAPTCHA_PROVIDERS)
        mode = _choice(config, "IDP_CAPTCHA_MODE", CAPTCHA_MODES)
        if provider == "none":
            return cls(provider="none", mode=mode)
        app_id = str(config.get("IDP_CAPTCHA_APP_ID") or "").strip()
        if not app_id.isdigit():
            raise ConfigError("IDP_CAPTCHA_APP_ID (the CaptchaAppId, a number) is required")
        if not str(config.get("IDP_CAPTCHA_KEY_ID") or "").strip():
            raise ConfigError("IDP_CAPTCHA_KEY_ID is required with IDP_CAPTCHA_PROVIDER=tencent")
        return cls(
            provider=provider,
            mode=mode,
            api_base=str(config.get("IDP_CAPTCHA_API_BASE") or DEFAULT_CAPTCHA_API_BASE),
            app_id=int(app_id),
            app_secret_key=read_secret(config, "IDP_CAPTCHA_APP_SECRET_KEY"),
            key_id=str(config["IDP_CAPTCHA_KEY_ID"]).strip(),
            key_secret=read_secret(config, "IDP_CAPTCHA_KEY_SECRET"),
            timeout_seconds=_number(config, "IDP_SMS_TIMEOUT", 5),
        )


def allowed_country_codes(config: dict[str, Any]) -> frozenset[int]:
    raw = str(config.get("IDP_SMS_ALLOWED_COUNTRY_CODES") or "86")
    codes = [part.strip().lstrip("+") for part in raw.replace(";", ",").split(",")]
    if not codes or not all(code.isdigit() for code in codes):
        raise ConfigError(
            "IDP_SMS_ALLOWED_COUNTRY_CODES must be country calling codes like '86,852', "
            f"got {raw!r}"
        )
    return frozenset(int(code) for code in codes)


def read_secret(config: dict[str, Any], name: str) -> str:
    """`NAME` itself, or the content of the file named by `NAME_FILE`."""
    value = str(config.get(name) or "").strip()
    path = str(config.get(f"{name}_FILE") or "").strip()
    if not value and path:
        try:
            value = Path(path).read_text().strip()
        except OSError as error:
            raise ConfigError(f"{name}_FILE cannot be read: {error.strerror}") from None
    if not value:
        raise ConfigError(f"{name} (or {name}_FILE) is required")
    return value


def _choice(config: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    """The setting, one of `choices` (case and spaces aside); the first when it is unset."""
    value = str(config.get(name) or choices[0]).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _number(config: dict[str, Any], name: str, default: float) -> float:
    try:
        value = float(config.get(name) or default)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value
