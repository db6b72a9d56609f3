"""Password strength with zxcvbn (Dropbox's estimator, Python port): a password must score at
least 3 of 4 ("safely unguessable", under 10^10 guesses is refused) counting the account's own
phone, email and name as known words. Its feedback is English; each sentence is a msgid of the
translation catalog, so the zh-CN page shows it in Chinese."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _

MINIMUM_SCORE = 3
# zxcvbn grows slow with length and refuses more than 72 characters; the start is enough.
LONGEST_CHECKED = 72  # zxcvbn refuses longer input (ValueError)


@dataclass
class Strength:
    score: int
    acceptable: bool
    messages: list[str] = field(default_factory=list)


def estimate(password: str, known_words: list[str]) -> Strength:
    if len(password) < 8:
        return Strength(0, False, [_("Use at least 8 characters.")])
    from zxcvbn import zxcvbn  # on first use, not at start-up (issue 24)

    result = zxcvbn(password[:LONGEST_CHECKED], user_inputs=[w for w in known_words if w])
    score = int(result["score"])
    feedback = result.get("feedback") or {}
    messages = [_(feedback["warning"])] if feedback.get("warning") else []
    messages += [_(text) for text in feedback.get("suggestions") or []]
    if score < MINIMUM_SCORE and not messages:
        messages.append(_("Add another word or two. Uncommon words are better."))
    return Strength(score, score >= MINIMUM_SCORE, messages)
