"""A faithful fake of Alibaba Cloud SMS, Tencent Cloud SMS and Tencent Captcha, for tests and the
demo (`idp fake-sms`). See idp/sms/fake/README.md."""

from idp.sms.fake.server import FakeSmsControl, FakeSmsServer, run, serve_in_thread
from idp.sms.fake.state import FakeSmsAccount, FakeSmsState

__all__ = [
    "FakeSmsAccount",
    "FakeSmsControl",
    "FakeSmsServer",
    "FakeSmsState",
    "run",
    "serve_in_thread",
]
