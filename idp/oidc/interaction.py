"""What the consent and logout pages carry from the RP's request into their form, and what a
submitted form may contain.

The pages repost the RP's request with the user's answer. Only the parameters the protocol
defines are carried: anything else in the RP's URL (a `decision`, above all) would ride along
in the form and could answer for the user. A repeated parameter is refused (RFC 6749 §3.1),
so no reader can pick a different copy than the one the user saw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from werkzeug.datastructures import MultiDict

# OIDC Core 1.0 §3.1.2.1 (with RFC 6749 §4.1.1) and PKCE (RFC 7636 §4.3).
AUTHORIZATION_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "response_mode",
    "nonce",
    "display",
    "prompt",
    "max_age",
    "ui_locales",
    "claims_locales",
    "id_token_hint",
    "login_hint",
    "acr_values",
    "claims",
    "code_challenge",
    "code_challenge_method",
)

# OIDC RP-Initiated Logout 1.0 §2.
LOGOUT_PARAMETERS = (
    "id_token_hint",
    "logout_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
)

CONSENT_DECISIONS = frozenset({"allow", "deny"})
LOGOUT_DECISIONS = frozenset({"logout", "stay"})


def carried_parameters(args: MultiDict[str, str], names: Iterable[str]) -> list[tuple[str, str]]:
    """The protocol parameters of the request, in the order given, for hidden inputs."""
    return [(name, args[name]) for name in names if name in args]


def repeated_parameter(values: MultiDict[str, str], names: Iterable[str]) -> str | None:
    """The first protocol parameter (or `decision`) that appears more than once, if any. The
    request's parameters are counted in one pass (a dozen `getlist`s on Flask's combined query
    and form cost more than the rest of the check)."""
    counts = Counter(key for key, _ in values.items(multi=True))
    if not counts or max(counts.values()) < 2:
        return None
    for name in (*names, "decision"):
        if counts[name] > 1:
            return name
    return None


def decision_of(form: MultiDict[str, str], choices: frozenset[str]) -> str | None:
    """The user's one answer; None when there is none, several, or an unknown one."""
    answers = form.getlist("decision")
    if len(answers) != 1 or answers[0] not in choices:
        return None
    return answers[0]
