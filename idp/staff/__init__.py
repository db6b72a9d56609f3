"""Who administers the IdP: the four admin roles (support, identity, security, auditor), who
holds which, and what each may do.

Kept apart from `idp.admin` (the web UI) so the command line, the management API and the UI read
one policy; nothing here imports a view.
"""
