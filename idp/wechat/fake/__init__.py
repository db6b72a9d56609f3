"""A fake WeChat server for tests and the demo: same paths, fields and errors as the real one."""

from idp.wechat.fake.app import create_fake_wechat_app
from idp.wechat.fake.control_client import FakeIdentity, FakeWeChatControl, IssuedJsCode
from idp.wechat.fake.server import FakeWeChatServer, run, serve_in_thread
from idp.wechat.fake.state import FakeApp

__all__ = [
    "FakeApp",
    "FakeIdentity",
    "FakeWeChatControl",
    "FakeWeChatServer",
    "IssuedJsCode",
    "create_fake_wechat_app",
    "run",
    "serve_in_thread",
]
