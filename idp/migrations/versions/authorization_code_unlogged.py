"""authorization_code: UNLOGGED on PostgreSQL

A code lives a minute; its row's insert (the authorization endpoint) and claim (the token
endpoint) no longer write WAL, and the insert's commit waits for no disk flush. A database crash
empties the table (codes in flight then fail to redeem: the browser signs in again); a standby
holds no codes. See `idp.oidc.models.AuthorizationCode`. SQLite: nothing changes.

`SET UNLOGGED` rewrites the table under an exclusive lock: the table holds only the codes of
the retention window, so this is quick.

Revision ID: f1c0de5e7a11
Revises: e3b8f1a6c2d9
Create Date: 2026-12-07 18:45:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f1c0de5e7a11'
down_revision = 'e3b8f1a6c2d9'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE authorization_code SET UNLOGGED")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE authorization_code SET LOGGED")
