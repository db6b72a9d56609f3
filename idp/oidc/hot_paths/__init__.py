"""The protocol's hot endpoints, served without Flask's per-request machinery.

JWKS, discovery, userinfo, introspection and the token endpoint answer machines, not people: no
session, locale, CSRF, template context or compression applies to them, and Flask's request
context, hooks and response objects cost several times the work itself (bench/README.md, "The
request pipeline").
`HotPathDispatcher` sits in front of the Flask app (`install`): a request for one of these paths
is answered by a plain function that takes a parsed `HotRequest` and returns status, headers and
body, calling the same domain functions as the rest of the IdP; every other request goes to
Flask untouched. The routes exist once: here, not also as Flask views.

One page is served here in its common case only: the authorization request of a signed-in
browser that gets its code at once (`authorize.py`); every other authorization request goes to
its Flask view, which keeps the pages, errors and redirects a person sees.

What the pipeline keeps, done cheaply (`dispatcher.py`): the request id, the NUL guard, the
metrics and access log line, the security headers and `request_id` in every error body.
"""

from __future__ import annotations

from flask import Flask

from idp.oidc.hot_paths.authorize import PAGES
from idp.oidc.hot_paths.dispatcher import HotPathDispatcher, Routes
from idp.oidc.hot_paths.read_endpoints import ROUTES as READ_ROUTES
from idp.oidc.hot_paths.token_endpoint import token

ROUTES: Routes = {**READ_ROUTES, "/oauth/token": ("oidc.token", {"POST": token})}


def install(app: Flask) -> None:
    """Put the dispatcher in front of the app's WSGI callable (inside any proxy fix-up added
    later, which wraps it in turn)."""
    app.wsgi_app = HotPathDispatcher(  # type: ignore[method-assign]
        app, app.wsgi_app, ROUTES, PAGES)
