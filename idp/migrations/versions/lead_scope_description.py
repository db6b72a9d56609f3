"""the consent text of an operator scope declared in the admin UI

Revision ID: 9c4e2b7a5d18
Revises: 7b2e4c9d1a36
Create Date: 2026-11-30 13:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c4e2b7a5d18'
down_revision = '7b2e4c9d1a36'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('claim_declaration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope_description', sa.Text(), nullable=False,
                                      server_default=''))


def downgrade():
    with op.batch_alter_table('claim_declaration', schema=None) as batch_op:
        batch_op.drop_column('scope_description')
