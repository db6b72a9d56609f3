"""When the mini-program's token exchange asks for a second factor, and which ones it offers.

The rule is the website's (`idp.accounts.sessions.start_session`): an account with a second factor
is asked for it after the first, whatever the client. A client may also require one
(`Client.require_mfa`, or `acr_values` naming the MFA ACR on the token request: `idp.oidc.step_up`).

Only factors a mini-program can show are offered: a TOTP code (`otp`) and a recovery code
(`recovery_code`). Passkeys are not available in a mini-program's web-less runtime. An account
whose only factors are passkeys (and no recovery code left) cannot give its second factor here:
the exchange answers `unmet_authentication_requirements` rather than let WeChat alone in.

`mfa_required` is an extension error (RFC 6749 §5.2, §8.5) answered with 403, as Auth0's MFA API
does: the request was valid and the client authenticated, but the server refuses to issue tokens
until one more proof (RFC 9110 §15.5.4). The body adds `mfa_token` and `factors`.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error

from idp.identity.models import Account
from idp.oidc.models import Client
from idp.oidc.step_up import UnmetAuthenticationRequirements, mfa_required
from idp.second_factor.factors import factors_of, has_second_factor
from idp.second_factor.mfa_tokens import issue_mfa_token
from idp.second_factor.models import SecondFactorKind
from idp.second_factor.recovery_codes import remaining_recovery_codes

MFA_TOKEN_TYPE = "urn:idp:params:oauth:token-type:mfa_token"
FACTOR_OTP = "otp"
FACTOR_RECOVERY_CODE = "recovery_code"


class MfaRequiredError(OAuth2Error):
    error = "mfa_required"
    status_code = 403

    def __init__(self, mfa_token: str, usable: list[str]) -> None:
        super().__init__(
            description="A second factor is required: send the mfa_token with a code "
            f"(subject_token_type {MFA_TOKEN_TYPE}).",
        )
        self.mfa_token = mfa_token
        self.factors = usable
        # What else the answer reports (a phone binding: what was bound, before the factor).
        self.extra: dict[str, Any] = {}

    def get_body(self) -> list[tuple[str, Any]]:
        body: list[tuple[str, Any]] = super().get_body()
        return [*body, ("mfa_token", self.mfa_token), ("factors", self.factors),
                *self.extra.items()]


def usable_factors(account: Account) -> list[str]:
    """The account's factors a mini-program can use, in the order a user would reach for them."""
    kinds = {factor.kind for factor in factors_of(account)}
    usable = [FACTOR_OTP] if SecondFactorKind.TOTP in kinds else []
    if kinds and remaining_recovery_codes(account):
        usable.append(FACTOR_RECOVERY_CODE)
    return usable


def demand_second_factor(
    client: Client, account: Account, scope: str, amr: list[str], acr_values: str | None,
    has_factor: bool | None = None,
) -> None:
    """Returns when the exchange may issue tokens on the first factor alone; otherwise raises
    MfaRequiredError (with a fresh mfa_token) or
    UnmetAuthenticationRequirements. `has_factor`: `has_second_factor(account)` when the
    caller read it already (`holds_second_factor`)."""
    required = mfa_required(bool(client.require_mfa), acr_values)
    if has_factor is None:
        has_factor = has_second_factor(account)
    if not required and not has_factor:
        return
    usable = usable_factors(account)
    if usable:
        token = issue_mfa_token(client.client_id, account.id, scope, amr)
        raise MfaRequiredError(token, usable)
    if required and not has_factor:
        raise UnmetAuthenticationRequirements()
    raise UnmetAuthenticationRequirements(
        "The account's second factor cannot be used in a mini-program: add an authenticator "
        "app or new recovery codes in the account centre."
    )
