"""OAuth error responses that Authlib does not define."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error


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
