"""WSGI entry point: `gunicorn wsgi:app` (what `idp serve` runs)."""

from idp import create_app

app = create_app()
