"""token cut-off for `idp tokens revoke-all`

Revision ID: 458101de4942
Revises: c41f7a2e9b3d
Create Date: 2026-11-30 09:00:00

"""
from alembic import op
import sqlalchemy as sa

import idp.models_base


# revision identifiers, used by Alembic.
revision = '458101de4942'
down_revision = 'c41f7a2e9b3d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('token_cutoff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('not_before', idp.models_base.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('created_at', idp.models_base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_token_cutoff'))
    )
    with op.batch_alter_table('token_cutoff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_cutoff_not_before'), ['not_before'], unique=False)


def downgrade():
    with op.batch_alter_table('token_cutoff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_cutoff_not_before'))
    op.drop_table('token_cutoff')
