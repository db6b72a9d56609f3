"""The second step of a mini-program sign-in that needs a second factor: another RFC 8693 token
exchange, whose `subject_token` is the `mfa_token` of the `mfa_required` answer
(`subject_token_type=urn:idp:params:oauth:token-type:mfa_token`), with `otp` (a TOTP code,
RFC 6238) or `recovery_code`.

- Success: the token response of the first step's scope, `amr` gains `otp` and `mfa` (RFC 8176
  §2), so the ID token's `acr` is the MFA ACR (OIDC Core §2), and refresh keeps both.
- A wrong code: `invalid_grant` (RFC 6749 §5.2) with `attempts_left`; the mfa_token dies after
  `MAX_ATTEMPTS` (`idp.second_factor.mfa_tokens`). Attempts are also counted per account, with
  the website's second-factor step (`idp.second_factor.factors.attempts_by_account`): past it, 429.
- A TOTP code is accepted once across the IdP (the replay cache the website uses); a recovery
  code is spent.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc6749.requests import OAuth2Request
from flask import Flask

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.oidc.errors import TemporarilyUnavailableError
from idp.oidc.grants import active_account
from idp.oidc.models import Client
from idp.oidc.server import server_of
from idp.scopes import scope_set
from idp.second_factor import factors, mfa_tokens, totp
from idp.second_factor.models import MfaChallenge
from idp.second_factor.recovery_codes import use_recovery_code
from idp.security.throttle import Throttled
from idp.wechat_login.mfa import FACTOR_OTP, FACTOR_RECOVERY_CODE, MFA_TOKEN_TYPE
from idp.wechat_login.token_exchange import ExchangeGrant, WeChatIdToken

SECOND_FACTOR_AMR = ["otp", "mfa"]
MAX_RECOVERY_CODE_LENGTH = 32


class WrongCodeError(InvalidGrantError):  # type: ignore[misc]
    """RFC 6749 §5.2 `invalid_grant`, plus how many codes the mfa_token still takes (an extra
    member, which §5.2 allows): 0 means start again from wx.login()."""

    def __init__(self, attempts_left: int) -> None:
        super().__init__("The code is not right.")
        self.attempts_left = attempts_left

    def get_body(self) -> list[tuple[str, Any]]:
        body: list[tuple[str, Any]] = super().get_body()
        return [*body, ("attempts_left", self.attempts_left)]


class TooManyAttemptsError(TemporarilyUnavailableError):
    """The account's second-factor attempts are used up for now (429 with Retry-After, as every
    rate limit of this IdP answers)."""

    status_code = 429


class MfaTokenExchangeGrant(ExchangeGrant):
    @classmethod
    def check_token_endpoint(cls, request: OAuth2Request) -> bool:
        return bool(
            super().check_token_endpoint(request)
            and request.payload.data.get("subject_token_type") == MFA_TOKEN_TYPE
        )

    def validate_token_request(self) -> None:
        """RFC 8693 §2.1 with this IdP's `mfa_token` type; the code's shape is checked here, so
        that a malformed one costs no attempt."""
        self.validate_mini_program_request()
        data = self.request.payload.data
        token = data.get("subject_token")
        if not token or len(token) > mfa_tokens.MAX_TOKEN_LENGTH or not token.isprintable():
            raise InvalidRequestError("'subject_token' must be the mfa_token of mfa_required.")
        otp, recovery_code = data.get("otp"), data.get("recovery_code")
        if bool(otp) == bool(recovery_code):
            raise InvalidRequestError("Send exactly one of 'otp' and 'recovery_code'.")
        if otp and not totp.is_code(otp):
            raise InvalidRequestError("'otp' must be the 6 digits of the authenticator app.")
        if recovery_code and (
            len(recovery_code) > MAX_RECOVERY_CODE_LENGTH or not recovery_code.isprintable()
        ):
            raise InvalidRequestError("'recovery_code' must be one of the account's codes.")

    @hooked  # type: ignore[misc]
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: Client = self.request.client
        data = self.request.payload.data
        challenge = mfa_tokens.take_attempt(data["subject_token"], client.client_id)
        if challenge is None:
            raise InvalidGrantError(
                "The mfa_token is unknown, expired, used, out of attempts or not this client's."
            )
        account = active_account(challenge.account_id)
        if account is None:
            raise InvalidGrantError("The account cannot sign in any more.")
        scope = _granted_scope(challenge, self.request.payload.scope)
        factor = self._check_code(account, data.get("otp"), data.get("recovery_code"))
        if factor is None:
            raise WrongCodeError(mfa_tokens.attempts_left(challenge))
        if not mfa_tokens.consume(challenge):
            raise InvalidGrantError("The mfa_token was used by another request.")
        audit.record("session.second_factor", Actor.user(account.id), account.id, reason=factor,
                     channel="miniprogram", client_id=client.client_id)
        response = self.token_response(account, scope, [*challenge.amr, *SECOND_FACTOR_AMR])
        db.session.commit()
        return response

    @staticmethod
    def _check_code(account: Account, otp: str | None, recovery_code: str | None) -> str | None:
        """The factor that the code proves, or None; counts against the account's throttle."""
        try:
            if otp:
                return FACTOR_OTP if factors.check_totp(account, otp) else None
            if recovery_code and use_recovery_code(account, recovery_code):
                return FACTOR_RECOVERY_CODE
        except Throttled as refused:
            raise TooManyAttemptsError(
                "Too many second-factor attempts; try again later.", refused.retry_after
            ) from None
        return None


def _granted_scope(challenge: MfaChallenge, requested: str | None) -> str:
    """The first step's scope; a narrower one may be asked (as on refresh, RFC 6749 §6)."""
    if not requested:
        return challenge.scope
    if not scope_set(requested) <= scope_set(challenge.scope):
        raise InvalidScopeError("The scope may only narrow what the first step asked for.")
    return requested


def register_grant(app: Flask) -> None:
    server_of(app).register_grant(MfaTokenExchangeGrant, [WeChatIdToken()])
