"""Metrics and structured logs: how an operator sees the IdP from outside."""

from __future__ import annotations

from flask import Flask

from idp.observability import logging as structured_logging
from idp.observability import metrics


def init_app(app: Flask) -> None:
    structured_logging.configure_logging(app)
    metrics.init_app(app)
