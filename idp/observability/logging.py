"""Structured logs: one JSON object per line, the request id on every line, secrets redacted.

Redaction is defense in depth: the code must not log a secret in the first place (the tests
search every captured line for the real values), but a query string, a header or an exception
message that slips through is scrubbed here before it reaches any output.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring as _encode_string  # type: ignore[attr-defined]
from typing import Any

from flask import Flask, g, has_app_context, has_request_context

REDACTED = "[redacted]"

# Names whose values are credentials, wherever they appear as `name=value` or `"name": "value"`.
SECRET_NAMES = (
    "code",
    "js_code",
    "access_token",
    "refresh_token",
    "id_token",
    "id_token_hint",
    "subject_token",
    "mfa_token",
    "otp",
    "recovery_code",
    "client_secret",
    "client_assertion",
    "code_verifier",
    "secret",
    "password",
    "new_password",
    "session_key",
    "sms_code",
    "token",
    "csrf_token",
    "encryptedData",
    "encrypted_data",
    "iv",
)
_NAMES = "|".join(sorted((re.escape(name) for name in SECRET_NAMES), key=len, reverse=True))
_PAIR = re.compile(rf"(?i)\b({_NAMES})(=|%3D)([^&\s\"'<>,;]+)")
_JSON_PAIR = re.compile(rf"(?i)([\"']({_NAMES})[\"']\s*:\s*)([\"'])(.*?)\3")
_AUTHORIZATION = re.compile(r"(?i)\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")

# A record made of known-safe parts only (the hot paths' access line): not scrubbed.
VERBATIM = "idp_verbatim"
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "request_id", VERBATIM}
)


def redact(text: str) -> str:
    text = _JWT.sub(REDACTED, text)
    text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _JSON_PAIR.sub(lambda m: f"{m.group(1)}{m.group(3)}{REDACTED}{m.group(3)}", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if str(key).lower() in SECRET_NAMES else _redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """Scrubs the message, the exception text and every `extra` field of a record.

    Attach it to handlers (a logger's filters do not see records propagated from its children).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.__dict__.get(VERBATIM):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record still gets logged, unformatted
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRIBUTES:
                record.__dict__[name] = _redact_value(value)
        return True


def current_request_id() -> str | None:
    if has_request_context() or has_app_context():
        return g.get("request_id")
    return None


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id, then the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time_text(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and name not in entry:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _time_text(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class _MillisecondText:
    """`_time_text` of now, made once per millisecond from its second's text, made once per
    second: at thousands of access lines a second most lines share their millisecond, and the
    datetime formatting costs ~3-10 µs of CPU in a request. Each pair is replaced whole, so
    threads racing read a consistent one."""

    def __init__(self) -> None:
        self.current: tuple[int, str] = (-1, "")  # (millisecond, its text)
        self.second: tuple[int, str] = (-1, "")  # (second, its text up to the fraction)

    def now(self) -> str:
        millisecond = int(time.time() * 1000)
        current = self.current
        if current[0] == millisecond:
            return current[1]
        second, fraction = divmod(millisecond, 1000)
        known = self.second
        if known[0] != second:
            known = self.second = (second, _time_text(second).rpartition(".")[0] + ".")
        text = f"{known[1]}{fraction:03d}+00:00"
        self.current = (millisecond, text)
        return text


_NOW_TEXT = _MillisecondText()


def _flat_json(entry: dict[str, Any]) -> str:
    """`json.dumps(entry, default=str, ensure_ascii=False)` for a dict whose values are
    strings, ints, floats, bools and None (a flat access line), assembled from the C string
    encoder that `json.dumps` itself uses: ~1 µs instead of ~6. Anything else: `json.dumps`."""
    parts = []
    for key, value in entry.items():
        kind = value.__class__
        if kind is str:
            text = _encode_string(value)
        elif value is None:
            text = "null"
        elif kind is bool:
            text = "true" if value else "false"
        elif kind is int or (kind is float and math.isfinite(value)):
            text = repr(value)
        else:
            return json.dumps(entry, default=str, ensure_ascii=False)
        parts.append(f"{_encode_string(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def sole_json_handler(logger: logging.Logger) -> StderrHandler | None:
    """The handler that alone would write `logger`'s INFO records, when it is this module's JSON
    line on stderr with no filter but the redaction (the servers' set-up and the app's own,
    `server_log_config`, `configure_logging`); else None: other handlers are listening."""
    if not logger.isEnabledFor(logging.INFO):
        return None
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None  # type: ignore[assignment]
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (type(handler) is not StderrHandler or type(handler.formatter) is not JsonFormatter
            or handler.level > logging.INFO
            or any(type(each) is not RedactingFilter for each in handler.filters)):
        return None
    return handler


def write_verbatim(handler: StderrHandler, logger: str, message: str, request_id: str | None,
                   fields: dict[str, Any]) -> None:
    """The line `handler` would write for an INFO record of `logger` made of known-safe parts
    only (`VERBATIM`: nothing to redact), written as its `emit` writes, without building the
    record: the hot paths' access line (~17 µs of CPU a request less, bench/README.md)."""
    entry: dict[str, Any] = {
        "time": _NOW_TEXT.now(), "level": "INFO", "logger": logger, "message": message,
        "request_id": request_id, **fields,
    }
    line = _flat_json(entry) + handler.terminator
    handler.acquire()
    try:
        stream = handler.stream
        stream.write(line)
        stream.flush()
    except Exception:  # noqa: BLE001 - as logging's own emit: report, never raise
        handler.handleError(logging.makeLogRecord({"msg": message, "name": logger}))
    finally:
        handler.release()


def info_verbatim(logger: logging.Logger, message: str, fields: dict[str, Any] | None = None,
                  request_id: str | None = None) -> None:
    """An INFO line made of known-safe parts only (`VERBATIM`: nothing to redact — a route's
    own path, names, numbers, the peer's address): written straight by the JSON handler when
    that alone listens (`write_verbatim`, a few µs), else as a record through `logging` (~15–30
    µs). `request_id`: the request's, by default the current one."""
    if request_id is None:
        request_id = current_request_id()
    handler = sole_json_handler(logger)
    if handler is not None:
        write_verbatim(handler, logger.name, message, request_id, fields or {})
    elif logger.isEnabledFor(logging.INFO):
        record = logging.LogRecord(logger.name, logging.INFO, __file__, 0, message, None, None)
        record.__dict__.update(fields or {}, request_id=request_id)
        setattr(record, VERBATIM, True)
        logger.handle(record)


def json_handler(stream_handler: logging.Handler | None = None) -> logging.Handler:
    handler = stream_handler or StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler._idp_json = True  # type: ignore[attr-defined]
    return handler


def server_log_config(server_loggers: dict[str, Any]) -> dict[str, Any]:
    """A `logging.config.dictConfig` for an HTTP server's master and workers (granian, gunicorn):
    JSON lines on stderr, redacted, like the app's own logs (`IDP_LOG_LEVEL`); `server_loggers`
    are the server's own loggers and their levels."""
    level = os.environ.get("IDP_LOG_LEVEL", "INFO").upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "filters": {"redact": {"()": f"{__name__}.RedactingFilter"}},
        "handlers": {
            "json": {
                "class": f"{__name__}.StderrHandler",
                "formatter": "json",
                "filters": ["redact"],
            },
        },
        "root": {"level": level, "handlers": ["json"]},
        "loggers": server_loggers,
    }


# A server's access log is off: idp.access logs each request with its request id, without its
# query string.
ACCESS_LOG_OFF: dict[str, Any] = {"level": "CRITICAL", "handlers": [], "propagate": False}


def configure_logging(app: Flask) -> None:
    """JSON lines on stderr from the root logger, once per process.

    `IDP_LOG_JSON` unset means "JSON unless testing": the test suite keeps pytest's own capture
    (caplog) and turns JSON on where it tests it. False leaves logging as the host set it up.
    """
    wanted = _flag(app.config.get("IDP_LOG_JSON"))
    if wanted is None:
        wanted = not app.testing
    root = logging.getLogger()
    level = str(app.config.get("IDP_LOG_LEVEL") or "INFO").upper()
    if not wanted:
        return
    root.setLevel(level)
    for handler in root.handlers:
        if getattr(handler, "_idp_json", False):
            return
        if isinstance(handler.formatter, JsonFormatter):  # put there by gunicorn's logconfig
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
            handler._idp_json = True  # type: ignore[attr-defined]
            return
    root.addHandler(json_handler())


def _flag(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    return bool(value)
