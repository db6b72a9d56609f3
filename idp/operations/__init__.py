"""Running the IdP in production: the gunicorn configuration and backups."""
