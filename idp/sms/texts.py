"""The message of each purpose, in the two languages of the site. The development sender renders
these. A real provider sends its approved template instead (README, "SMS providers"): Alibaba
Cloud's verification templates take the code alone (`${code}`, the validity written out), and
the variables each template declares are configured (`IDP_SMS_TEMPLATE_*`, idp/sms/settings.py)."""

from __future__ import annotations

from idp.sms.purposes import Purpose

TEXTS: dict[str, dict[Purpose, str]] = {
    "zh": {
        Purpose.LOGIN: "您的登录验证码为 {code}，{minutes} 分钟内有效。"
        "如非本人操作，请忽略本短信。",
        Purpose.REGISTER: "您的注册验证码为 {code}，{minutes} 分钟内有效。"
        "如非本人操作，请忽略本短信。",
        Purpose.RESET: "您正在重置密码，验证码为 {code}，{minutes} 分钟内有效。"
        "请勿将验证码告诉他人。",
        Purpose.BIND_PHONE: "您正在绑定手机号，验证码为 {code}，{minutes} 分钟内有效。",
        Purpose.CHANGE_PHONE: "您正在更换手机号，验证码为 {code}，{minutes} 分钟内有效。",
    },
    "en": {
        Purpose.LOGIN: "Your sign-in code is {code}. It expires in {minutes} minutes. "
        "If you did not ask for it, ignore this message.",
        Purpose.REGISTER: "Your registration code is {code}. It expires in {minutes} minutes. "
        "If you did not ask for it, ignore this message.",
        Purpose.RESET: "Your password reset code is {code}. It expires in {minutes} minutes. "
        "Never tell it to anyone.",
        Purpose.BIND_PHONE: "Your code to add this phone is {code}. "
        "It expires in {minutes} minutes.",
        Purpose.CHANGE_PHONE: "Your code to change your phone number is {code}. "
        "It expires in {minutes} minutes.",
    },
}


def render_text(purpose: Purpose, code: str, minutes: int, locale: str = "zh_CN") -> str:
    language = "zh" if locale.lower().startswith("zh") else "en"
    return TEXTS[language][purpose].format(code=code, minutes=minutes)
