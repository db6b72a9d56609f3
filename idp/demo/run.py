"""`idp dev` (what `make run` starts): the IdP, the fake WeChat and the demo website, on loopback.

1. point the IdP at the fake WeChat (before the app is built: config is read at start-up);
2. migrate the SQLite database, make sure signing keys exist, seed the demo (first start only);
3. serve the fake WeChat on :5001 and the demo website on :5002 in daemon threads;
4. serve the IdP on :5000 in the foreground until Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from idp.demo.rp import RelyingPartySettings, create_demo_rp
from idp.demo.seed import DEFAULT_RP_URL, DemoSeed, DemoWeChatApp, demo_wechat_apps, seed_demo
from idp.sms.fake import FakeSmsServer
from idp.wechat.fake import FakeApp, FakeWeChatServer, serve_in_thread

HOST = "127.0.0.1"
FAKE_WECHAT_PORT = 5001
RP_PORT = 5002
FAKE_SMS_PORT = 5003
FAKE_WECHAT_URL = f"http://{HOST}:{FAKE_WECHAT_PORT}"
FAKE_SMS_URL = f"http://{HOST}:{FAKE_SMS_PORT}"


class DemoError(RuntimeError):
    """The demo cannot start (a port is taken, …); the message says what to do."""


@dataclass(frozen=True)
class PreparedDemo:
    seed: DemoSeed
    wechat_apps: list[DemoWeChatApp]


def run_demo(app: Flask | None = None, port: int = 5000) -> None:
    """Without `app`, builds one pointed at the fake WeChat (the usual case: `idp dev`)."""
    app = app or create_demo_app(port)
    prepared = prepare_demo(app)
    fake = start_fake_wechat(prepared.wechat_apps, FAKE_WECHAT_PORT)
    fake_sms = start_fake_sms() if app.config.get("IDP_SMS_API_BASE") == FAKE_SMS_URL else None
    rp_server = serve_in_background(
        create_demo_rp(relying_party_settings(app, prepared.seed, fake.base_url)),
        RP_PORT,
        "demo-website",
    )
    idp_server = _make_server(app, port, "idp")
    print_banner(app.config["IDP_ISSUER"], fake.base_url, prepared.seed,
                 admin_ui="admin" in app.blueprints,
                 fake_sms_url=fake_sms.base_url if fake_sms else None)
    try:
        idp_server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        idp_server.server_close()
        rp_server.shutdown()
        fake.shutdown()
        if fake_sms is not None:
            fake_sms.shutdown()


def create_demo_app(port: int) -> Flask:
    from idp import create_app

    # The demo's WeChat apps exist only in the fake: every WeChat call of the IdP goes there.
    os.environ["IDP_WECHAT_API_BASE"] = FAKE_WECHAT_URL
    os.environ["IDP_WECHAT_OPEN_BASE"] = FAKE_WECHAT_URL
    os.environ.setdefault("IDP_ISSUER", f"http://{HOST}:{port}")
    if not os.environ.get("IDP_SMS_PROVIDER"):
        # Codes go through the real Aliyun adapter to the fake, which prints them.
        from idp.sms.fake.demo import demo_environment

        os.environ.update(demo_environment(FAKE_SMS_URL))
    return create_app()


def start_fake_sms() -> FakeSmsServer:
    from idp.sms.fake import serve_in_thread as serve_fake_sms
    from idp.sms.fake.demo import register_demo_account

    try:
        server = serve_fake_sms(HOST, FAKE_SMS_PORT, echo=True)
    except OSError as error:
        raise DemoError(f"cannot serve the fake SMS on {HOST}:{FAKE_SMS_PORT}: {error}") from None
    register_demo_account(server.control)
    return server


def prepare_demo(app: Flask, rp_url: str = DEFAULT_RP_URL) -> PreparedDemo:
    """Migrate, make sure signing keys exist, seed. Safe to run at every start."""
    from flask_migrate import upgrade

    from idp import MIGRATIONS_DIRECTORY
    from idp.oidc.keys import ensure_keys

    with app.app_context():
        upgrade(directory=MIGRATIONS_DIRECTORY)
        _enable_loggers()
        ensure_keys(app.extensions["idp_secret_box"])
        seed = seed_demo(app.instance_path, rp_url)
        return PreparedDemo(seed=seed, wechat_apps=demo_wechat_apps())


def _enable_loggers() -> None:
    """Alembic's env.py runs `logging.config.fileConfig`, which disables every logger that
    existed before it (the IdP's own among them); the demo process goes on serving, so turn
    them back on."""
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False


def start_fake_wechat(apps: list[DemoWeChatApp], port: int = FAKE_WECHAT_PORT) -> FakeWeChatServer:
    """The fake keeps its state in memory: the demo's apps are registered again at every start."""
    fake_apps = [FakeApp(appid=a.appid, secret=a.secret, kind=a.kind) for a in apps]
    try:
        return serve_in_thread(HOST, port, apps=fake_apps)
    except OSError as error:
        raise DemoError(f"cannot serve the fake WeChat on {HOST}:{port}: {error}") from None


def relying_party_settings(
    app: Flask, seed: DemoSeed, fake_wechat_url: str
) -> RelyingPartySettings:
    credentials = seed.credentials
    return RelyingPartySettings(
        issuer=app.config["IDP_ISSUER"],
        client_id=credentials.website_client_id,
        client_secret=credentials.website_client_secret,
        url=credentials.rp_url,
        secret_key=credentials.rp_secret_key,
        fake_wechat_url=fake_wechat_url,
        miniprogram_client_id=credentials.miniprogram_client_id,
        miniprogram_appid=credentials.miniprogram_appid,
    )


class BackgroundServer:
    def __init__(self, server: BaseWSGIServer, name: str) -> None:
        import threading

        self.server = server
        self.url = f"http://{server.host}:{server.server_port}"
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def serve_in_background(app: Flask, port: int, name: str) -> BackgroundServer:
    return BackgroundServer(_make_server(app, port, name), name)


def _make_server(app: Flask, port: int, name: str) -> BaseWSGIServer:
    try:
        return make_server(HOST, port, app, threaded=True, request_handler=_handler_named(name))
    except OSError as error:
        raise DemoError(f"cannot serve {name} on {HOST}:{port}: {error}") from None


def _handler_named(name: str) -> type[WSGIRequestHandler]:
    class PathOnlyHandler(WSGIRequestHandler):
        """Access log with the path only: query strings carry codes and tokens."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            path = urlsplit(self.path).path
            self.log("info", '%s "%s %s" %s', name, self.command, path, code)

    return PathOnlyHandler


def print_banner(
    issuer: str,
    fake_wechat_url: str,
    seed: DemoSeed,
    out: TextIO | None = None,
    admin_ui: bool = True,
    fake_sms_url: str | None = None,
) -> None:
    out = out or sys.stdout
    rp_url = seed.credentials.rp_url
    admin = f"    (admin: {issuer}/admin/)" if admin_ui else ""
    lines = [
        "",
        f"  IdP            {issuer}{admin}",
        f"  Demo website   {rp_url}    (simulated mini-program: {rp_url}/miniprogram)",
        # The fake is an API with no page of its own: the banner links what answers a browser.
        f"  Fake WeChat    API at {fake_wechat_url}    (calls it answered: "
        f"{fake_wechat_url}/__fake__/calls)",
        "",
    ]
    if fake_sms_url:
        lines.insert(-1, f"  Fake SMS       {fake_sms_url}    (codes: the '[fake sms]' lines)")
    if seed.admin_password:
        lines += [
            "  Admin login — shown this once only, write it down:",
            f"    phone     {seed.admin_phone}",
            f"    password  {seed.admin_password}",
            "",
        ]
    else:
        lines.append(f"  Admin login: {seed.admin_phone} (password printed at the first start)\n")
    lines.append("  Ctrl-C stops them all.\n")
    print("\n".join(lines), file=out, flush=True)
