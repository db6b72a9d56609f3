"""The response headers every answer of the IdP carries: one list, for the Flask pipeline
(`idp/__init__.py`) and the hot endpoints (`idp/oidc/hot_paths`)."""

from __future__ import annotations

from functools import lru_cache

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:;"
    " form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'"
)


@lru_cache(maxsize=8)
def security_headers(issuer: str) -> tuple[tuple[str, str], ...]:
    """By issuer: HSTS only on an https one (read per request: tests change it live)."""
    headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        # Same-origin, not no-referrer: Flask-WTF checks the Referer of https form posts, and
        # URLs (with their state and codes) still never reach another origin.
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
    ]
    if issuer.startswith("https://"):
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return tuple(headers)
