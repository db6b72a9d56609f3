"""refresh_token: no answer kept; a lost refresh answer is rebuilt

A rotation kept its whole answer (ID token included) encrypted on the rotated row, for the
client whose response was lost. The successor is now the rotated token's keyed tag and the
answer's tokens take their issue time and `jti` from the successor's row, so the answer is
rebuilt the same instead (`idp.oidc.refresh_grant`): the column and the answers in it go. A
response lost in the last IDP_REFRESH_REUSE_GRACE_SECONDS before this upgrade cannot be given
again: its retry is a reuse (the family is revoked and the user signs in again).

Revision ID: e3b8f1a6c2d9
Revises: d7e2a9c4f1b3
Create Date: 2026-12-07 04:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e3b8f1a6c2d9'
down_revision = 'd7e2a9c4f1b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_column('successor_response_encrypted')


def downgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('successor_response_encrypted', sa.Text(), nullable=True))
