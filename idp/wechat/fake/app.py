"""The fake WeChat as a Flask app: the WeChat endpoints, the QR page and the control API."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, request

from idp.wechat.fake import api, control
from idp.wechat.fake.state import Failure, FakeApp, FakeState


def create_fake_wechat_app(apps: Iterable[FakeApp] = (), state: FakeState | None = None) -> Flask:
    app = Flask(__name__)
    fake_state = state or FakeState()
    for fake_app in apps:
        fake_state.register_app(fake_app)
    app.extensions["fake_wechat"] = fake_state
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    app.before_request(_record_and_maybe_fail)
    return app


def _record_and_maybe_fail() -> Response | None:
    """Log every WeChat call, then play the failure armed for its path, if any."""
    if request.path.startswith(control.CONTROL_PREFIX):
        return None
    state = api.fake_state()
    state.record_call(_call_record(state.now()))
    failure = state.take_failure(request.path)
    if failure is None:
        return None
    if failure.delay:
        time.sleep(failure.delay)
    return _failure_response(failure)


def _failure_response(failure: Failure) -> Response | None:
    if failure.errcode is not None:
        return api.wechat_error(failure.errcode)
    if failure.body is not None:
        return Response(failure.body, status=failure.status, content_type=failure.content_type)
    return None  # a delay only: answer normally, late


def _call_record(at: float) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "query": _redacted(request.args.to_dict()),
        "body": _redacted(_body_as_logged()),
        "time": at,
    }


def _body_as_logged() -> Any:
    if request.is_json:
        body = request.get_json(silent=True)
        if body is not None:
            return body
    if request.form:
        return request.form.to_dict()
    return request.get_data(as_text=True)[:500] or None


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "REDACTED" if key == "secret" else item for key, item in value.items()}
    return value
