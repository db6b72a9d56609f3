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
