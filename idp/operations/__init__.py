"""Running the IdP in production: the HTTP server (granian, or gunicorn) and backups."""
