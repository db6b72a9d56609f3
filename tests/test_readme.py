"""The README a first-time user follows (issue 10 item 21): what it points at exists, and what it
says about development SMS codes and the `idp` command matches the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from idp.sms.purposes import Purpose
from idp.sms.senders import LogSender

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_document_the_readme_cites_is_in_the_repository() -> None:
    cited = set(re.findall(r"\b([A-Z][A-Z_]+(?:\.md)?) §\d", README))
    assert cited == set(), f"sections of documents not in the repository: {cited}"
    for path in re.findall(r"\]\((?!https?:)([^)#]+)", README):
        assert (ROOT / path).exists(), path


def test_the_readme_shows_where_development_sms_codes_appear(
    capsys: pytest.CaptureFixture[str],
) -> None:
    LogSender(echo=True).send("+8613800138000", Purpose.LOGIN, "123456", 5, locale="en")
    printed = capsys.readouterr().err.strip()
    prefix = printed.split(":", 1)[0]  # "[sms, development only] to +8613800138000"
    assert f"`{prefix}:" in README, printed
    # `make run` sends through the fake provider, which prints what it accepted.
    from idp.sms.fake import app as fake

    source = Path(fake.__file__).read_text(encoding="utf-8")
    assert 'print(f"[fake sms] {message.provider} to {message.phone}: code {message.code}' in source
    assert "`[fake sms] aliyun to +8613800138000: code 123456" in README


def test_the_readme_says_where_the_idp_command_lives() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^VENV\s*\?=\s*\.venv$", makefile, re.M)
    first_command = re.search(r"^(?:echo .*\| )?idp ", README, re.M)
    assert first_command, "the README shows no idp command"
    # Said before the first example that uses it, not only in the reference at the end.
    assert 0 <= README.find("`.venv/bin/idp") < first_command.start()


def sms_template_rows() -> list[tuple[str, str, str]]:
    """(purpose, mainland text, international text) of the README's Aliyun template table."""
    section = README.split("**Templates to submit for approval.**", 1)[1].split("Tencent Cloud:")[0]
    rows = re.findall(r"^\| (\w+) \| (.+?) \| (.+?) \|$", section, flags=re.MULTILINE)
    return [row for row in rows if row[0] != "purpose"]


def test_the_readme_s_aliyun_templates_pass_the_verification_code_rules__issue23_10() -> None:
    """Alibaba Cloud's 验证码 templates: one variable (the code), one of 验证码/注册码/校验码/
    动态码 in a mainland text, no 【】 or link; each purpose has a mainland and an international
    template, and the settings the README shows send exactly the templates' variables."""
    from idp.sms.settings import SmsTemplate

    rows = sms_template_rows()
    assert [row[0] for row in rows] == [p.value for p in Purpose]
    for _purpose, mainland, international in rows:
        for text in (mainland, international):
            assert re.findall(r"\$\{(\w+)\}", text) == ["code"], text
            assert not re.search(r"[【】\[\]]|https?:", text), text
        assert re.search("验证码|注册码|校验码|动态码", mainland), mainland
        assert "code" in international.lower(), international  # Tencent: international needs it
    aliyun = re.search(r"`IDP_SMS_TEMPLATE_LOGIN=(SMS_\d+)`", README)
    assert aliyun and SmsTemplate.parse("x", aliyun.group(1)).variables == ("code",)


def test_the_readme_s_tencent_example_declares_what_its_text_holds__issue23_10() -> None:
    from idp.sms.settings import SmsTemplate

    section = README.split("Tencent Cloud: variables are", 1)[1].split("Upgrading from", 1)[0]
    text = re.search(r"\"(您的登录验证码为[^\"]+)\"", section)
    setting = re.search(r"`IDP_SMS_TEMPLATE_LOGIN=(\d+:[a-z,]+)`", section)
    assert text and setting
    positions = re.findall(r"\{(\d)\}", text.group(1))
    template = SmsTemplate.parse("x", setting.group(1))
    assert positions == [str(n + 1) for n in range(len(template.variables))]
    assert "BUSINESS_LIMIT_CONTROL" in README and "today\" (`isv.BUSINESS" not in README
