"""The demo stack served over real HTTP on loopback: the IdP, the demo website (relying party)
and the fake WeChat, each on an ephemeral port in a thread of the test process."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from idp import create_app
from idp.demo.rp import create_demo_rp
from idp.demo.run import PreparedDemo, prepare_demo, relying_party_settings
from idp.extensions import db
from idp.wechat.fake import FakeWeChatServer
from tests.conftest import base_config

TIMEOUT = 15


class LateApp:
    """A WSGI app set after the server is bound, so the app can be built knowing its own URL."""

    def __init__(self) -> None:
        self.app: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


class Served:
    def __init__(self) -> None:
        self.late = LateApp()
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self.late, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self, app: Any) -> None:
        self.late.app = app
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=5)
        self.server.server_close()


@dataclass
class DemoStack:
    idp: Flask
    idp_url: str
    rp_url: str
    fake: FakeWeChatServer
    prepared: PreparedDemo


@pytest.fixture
def quiet_logging() -> Iterator[None]:
    """Alembic's env.py reconfigures logging for the whole process; put it back afterwards so
    other tests' log captures are not affected."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved = {
        name: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, logger in logging.Logger.manager.loggerDict.items():
        if not isinstance(logger, logging.Logger):
            continue
        if name in saved:
            logger.level, handlers, logger.propagate, logger.disabled = saved[name]
            logger.handlers[:] = handlers
        else:
            logger.handlers.clear()
            logger.setLevel(logging.NOTSET)


@pytest.fixture
def demo_stack(
    tmp_path: Any, quiet_logging: None, fake_wechat: FakeWeChatServer
) -> Iterator[DemoStack]:
    idp_served, rp_served = Served(), Served()
    fake = fake_wechat
    config = base_config(tmp_path, f"sqlite:///{tmp_path / 'idp.sqlite3'}")
    config.update(
        IDP_ISSUER=idp_served.url,
        IDP_WECHAT_API_BASE=fake.base_url,
        IDP_WECHAT_OPEN_BASE=fake.base_url,
    )
    app: Flask | None = None
    try:
        app = create_app(config)
        # The real start-up path: Alembic upgrade, keys, seed.
        prepared = prepare_demo(app, rp_served.url)
        for wechat_app in prepared.wechat_apps:
            fake.control.register_app(wechat_app.appid, wechat_app.secret, kind=wechat_app.kind)
        rp = create_demo_rp(relying_party_settings(app, prepared.seed, fake.base_url))
        idp_served.start(app)
        rp_served.start(rp)
        yield DemoStack(app, idp_served.url, rp_served.url, fake, prepared)
    finally:
        rp_served.stop()
        idp_served.stop()
        if app is not None:
            with app.app_context():
                db.engine.dispose()


# --- a browser made of a requests.Session ------------------------------------------------------


class Browser:
    """Follows redirects one hop at a time, so a test can see (and assert on) every hop."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.hops: list[str] = []

    def get(self, url: str) -> requests.Response:
        return self._follow(self.session.get(url, allow_redirects=False, timeout=TIMEOUT))

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        response = self.session.post(url, data=data, allow_redirects=False, timeout=TIMEOUT)
        return self._follow(response)

    def submit(self, page: requests.Response, action: str, **fields: str) -> requests.Response:
        """Posts the form of `page` whose action ends with `action`, hidden fields included."""
        form = form_fields(page.text, action)
        form.update(fields)
        return self.post(urljoin(page.url, form.pop("__action__")), form)

    def forget_cookie(self, name: str) -> None:
        for cookie in [c for c in self.session.cookies if c.name == name]:
            self.session.cookies.clear(cookie.domain, cookie.path, cookie.name)

    def _follow(self, response: requests.Response) -> requests.Response:
        self.hops = [response.url]
        for _ in range(15):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = urljoin(response.url, response.headers["Location"])
            self.hops.append(location)
            response = self.session.get(location, allow_redirects=False, timeout=TIMEOUT)
        raise AssertionError(f"redirect loop: {self.hops}")


def form_fields(html: str, action: str) -> dict[str, str]:
    for match in re.finditer(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', html, re.S):
        target = unescape(match.group(1))
        if target.split("?")[0].endswith(action):
            fields = {"__action__": target}
            for tag in re.finditer(r"<input[^>]*>", match.group(2)):
                name = re.search(r'name="([^"]+)"', tag.group(0))
                value = re.search(r'value="([^"]*)"', tag.group(0))
                if name:
                    fields[name.group(1)] = unescape(value.group(1)) if value else ""
            return fields
    raise AssertionError(f"no form posting to {action!r} in page")


@pytest.fixture
def browser() -> Iterator[Browser]:
    user_agent = Browser()
    yield user_agent
    user_agent.session.close()
