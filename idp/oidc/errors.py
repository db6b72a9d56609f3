"""OAuth error responses that Authlib does not define."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Error


class TemporarilyUnavailableError(OAuth2Error):
    """RFC 6749 §4.1.2.1's `temporarily_unavailable`, answered at the token endpoint as an HTTP
    503 with `Retry-After` (RFC 9110 §10.2.3), so that clients back off instead of hammering."""

    error = "temporarily_unavailable"
    status_code = 503

    def __init__(self, description: str | None = None, retry_after: int = 5) -> None:
        super().__init__(description=description)
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        return [*headers, ("Retry-After", str(self.retry_after))]


class ServerError(OAuth2Error):
    """RFC 6749 §4.1.2.1's `server_error`: our fault (or our configuration's), not the client's."""

    error = "server_error"
    status_code = 500


class InvalidTargetError(OAuth2Error):
    """RFC 8693 §2.2.2: the requested `audience` or `resource` is not one we issue tokens for."""

    error = "invalid_target"


class ClientAuthenticationFailed(InvalidClientError):  # type: ignore[misc]
    """RFC 6749 §5.2 `invalid_client`, challenged only in the scheme the client used.

    - The client sent HTTP Basic credentials (`client_secret_basic`), or no credentials at all
      where Basic is accepted: 401 with a Basic challenge (RFC 7617 §2: `realm` included).
    - Any other way (`client_secret_post`, `private_key_jwt`, `none`, another scheme): 400 and
      no challenge. A 401 must carry one (RFC 9110 §15.5.2), and a Basic challenge to a client
      that did not use Basic is a wrong answer: openid-client v6 throws
      `WWWAuthenticateChallengeError` instead of reading the OAuth error.
    The description is never empty."""

    def __init__(self, description: str | None, challenge_realm: str | None) -> None:
        super().__init__(
            description=description or "Client authentication failed.",
            status_code=401 if challenge_realm is not None else 400,
        )
        self.challenge_realm = challenge_realm

    def get_headers(self) -> list[tuple[str, str]]:
        # OAuth2Error's headers, not InvalidClientError's (a Basic challenge on every 401).
        headers: list[tuple[str, str]] = OAuth2Error.get_headers(self)
        if self.challenge_realm is None:
            return headers
        parameters = ", ".join(
            f'{name}="{_quoted(value)}"'
            for name, value in (("realm", self.challenge_realm), ("error", self.error),
                                ("error_description", self.get_error_description()))
        )
        return [*headers, ("WWW-Authenticate", f"Basic {parameters}")]


def _quoted(value: str) -> str:
    """The inside of an RFC 9110 §5.6.4 quoted-string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
