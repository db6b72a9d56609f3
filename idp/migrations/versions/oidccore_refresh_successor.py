"""refresh token: the encrypted answer of its rotation, for the reuse grace window

Revision ID: dab9e99148ea
Revises: 458101de4942
Create Date: 2026-11-30 08:50:00.000000

"""
from alembic import op
import sqlalchemy as sa

import idp.models_base


# revision identifiers, used by Alembic.
revision = 'dab9e99148ea'
down_revision = '458101de4942'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('successor_response_encrypted', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_column('successor_response_encrypted')
